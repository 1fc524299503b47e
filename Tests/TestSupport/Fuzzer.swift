import Foundation

/// A mutation fuzzer for the parsers of outside input (commands, useapi's
/// answers, Retry-After hints). Not coverage-guided: it mutates a seed corpus
/// with byte edits, splices and a dictionary of hostile tokens (absurd
/// numbers, surrogates, repeated keys, deep nesting), for a time budget.
///
/// A crash (a trap) ends the test process, so CI fails. Runs are
/// deterministic for a seed: `FUZZ_SEED=N` replays a run, and `FUZZ_TRACE=FILE`
/// writes each input to FILE before it runs, so the input of a crash is the
/// file's content; it then becomes a regression test.
/// `FUZZ_SECONDS` sets the budget per target (default 2; `make fuzz` uses more).
public struct Fuzzer {
    public let name: String
    public var corpus: [[UInt8]]
    public var dictionary: [[UInt8]]
    public let seconds: Double
    public let seed: UInt64
    private let tracePath: String?

    public init(name: String, corpus: [String], dictionary: [String] = Fuzzer.hostileTokens) {
        self.name = name
        self.corpus = corpus.map { Array($0.utf8) }
        self.dictionary = dictionary.map { Array($0.utf8) }
        let environment = ProcessInfo.processInfo.environment
        seconds = environment["FUZZ_SECONDS"].flatMap(Double.init).map { min(max($0, 0.1), 3_600) } ?? 2
        seed = environment["FUZZ_SEED"].flatMap { UInt64($0) } ?? 0x5EED_F00D
        tracePath = environment["FUZZ_TRACE"]
    }

    /// Tokens that broke or could break a parser of outside numbers and JSON.
    public static let hostileTokens = [
        "1e400", "-1e400", "1e16", "99999999999999999999", "-99999999999999999999", "9223372036854775807",
        "9223372036854775808", "-9223372036854775809", "0.0000000000000000000001", "1e-400", "NaN", "Infinity",
        "-0", "5.0", "5e0", "0x10", "\\ud800", "\\udc00", "\\ud83d\\ude00", "\\u0000", "\u{00}", "\u{FF}", "\u{7F}",
        "\"", "\\", "{", "}", "[", "]", ",", ":", "\"id\":\"x\",", "\"maxJobs\":", "\"retryAfter\":", "\"exp\":",
        "PT", "P", "S", "D", "H", "M", "T", "99999999999999999999S", ".", "-", "+", " ", "\t", "\r\n",
        String(repeating: "[", count: 200), String(repeating: "{\"a\":", count: 200), String(repeating: "9", count: 400),
        "Fri, 31 Dec 9999 23:59:59 GMT", "Thu, 01 Jan 1970 00:00:00 GMT", "9999-12-31T23:59:59Z", "0000-01-01T00:00:00Z",
    ]

    /// Runs `body` on mutated inputs until the budget is spent; returns the
    /// number of executions. `body` checks its own invariants (#expect).
    @discardableResult
    public func run(_ body: ([UInt8]) throws -> Void) rethrows -> Int {
        var random = SplitMix64(seed: seed)
        let deadline = Date().addingTimeInterval(seconds)
        var executions = 0
        var trace: FileHandle?
        if let tracePath {
            _ = FileManager.default.createFile(atPath: tracePath, contents: nil)
            trace = FileHandle(forWritingAtPath: tracePath)
        }
        for input in corpus {
            try execute(input, body, trace: trace)
            executions += 1
        }
        while executions % 256 != 0 || Date() < deadline {
            var input = corpus.isEmpty ? [] : corpus[Int(random.next() % UInt64(corpus.count))]
            for _ in 0..<(1 + Int(random.next() % 4)) {
                mutate(&input, &random)
            }
            try execute(input, body, trace: trace)
            executions += 1
        }
        print("fuzz \(name): \(executions) executions in \(seconds) s, 0 crashes (seed \(seed))")
        return executions
    }

    private func execute(_ input: [UInt8], _ body: ([UInt8]) throws -> Void, trace: FileHandle?) rethrows {
        if let trace {
            trace.truncateFile(atOffset: 0)
            trace.write(Data(input))
            trace.synchronizeFile()
        }
        try body(input)
    }

    private func mutate(_ input: inout [UInt8], _ random: inout SplitMix64) {
        func position(_ extra: Int = 0) -> Int { Int(random.next() % UInt64(input.count + extra)) }
        switch random.next() % 8 {
        case 0 where !input.isEmpty:
            input[position()] ^= UInt8(truncatingIfNeeded: 1 << (random.next() % 8))
        case 1:
            input.insert(UInt8(truncatingIfNeeded: random.next()), at: position(1))
        case 2 where !input.isEmpty:
            let start = position()
            let end = min(input.count, start + 1 + Int(random.next() % 16))
            input.removeSubrange(start..<end)
        case 3 where !input.isEmpty:
            let start = position()
            let end = min(input.count, start + 1 + Int(random.next() % 32))
            input.insert(contentsOf: input[start..<end], at: position(1))
        case 4, 5:
            let token = dictionary[Int(random.next() % UInt64(max(1, dictionary.count)))]
            input.insert(contentsOf: token, at: position(1))
        case 6 where !corpus.isEmpty:
            let other = corpus[Int(random.next() % UInt64(corpus.count))]
            let cut = position(1)
            input = Array(input[..<cut]) + other[Int(random.next() % UInt64(other.count + 1))...]
        default:
            // Replace a run of digits with a hostile number.
            if let start = input.firstIndex(where: { (0x30...0x39).contains($0) }) {
                var end = start
                while end < input.count, (0x30...0x39).contains(input[end]) { end += 1 }
                let numbers = ["1e400", "99999999999999999999", "-1", "1e16", "0", "1.5", "9223372036854775808"]
                input.replaceSubrange(start..<end, with: Array(numbers[Int(random.next() % UInt64(numbers.count))].utf8))
            } else if !input.isEmpty {
                input.removeLast(1 + position() / 2)
            }
        }
        if input.count > 1 << 16 { input.removeLast(input.count - (1 << 16)) }
    }
}

/// A small deterministic generator (Steele, Lea, Flood 2014).
struct SplitMix64 {
    var state: UInt64
    init(seed: UInt64) { state = seed }
    mutating func next() -> UInt64 {
        state &+= 0x9E37_79B9_7F4A_7C15
        var z = state
        z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
        z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
        return z ^ (z >> 31)
    }
}
