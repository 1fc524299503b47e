import Foundation
import StrictJSON
import TestSupport
import Testing
import UseAPI

@testable import AccountWorker

/// Results and status records are written by `JSONObjectWriter`, not
/// `JSONEncoder` (CPU); their bytes must stay exactly what the `Encodable`
/// conformances (the contract's shapes) give with `JSONEncoder`.
@Suite("Result and status JSON")
struct ResultEncodingTests {
    static let hostileTexts = [
        "", "plain", "quote \" backslash \\ slash /", "\u{0}\u{1}\u{8}\u{9}\u{A}\u{C}\u{D}\u{1F}\u{7F}", "é ü 漢字 😀",
        "\u{2028}\u{2029}", "</script>", String(repeating: "x", count: 2_000), String(repeating: "é", count: 1_100),
    ]
    static let numbers: [Double] = [0, -0.0, 1, 1.5, 1_735_689_600, 1e16, 1.5e300, -2.5e-300, .leastNonzeroMagnitude, .greatestFiniteMagnitude, 0.1]
    static let ids: [UseAPIScalar?] = [nil, .int(0), .int(.min), .int(.max), .double(2.5), .double(1e300), .string("id \" \\ \u{1}")]

    static func expectedBytes(_ value: some Encodable) throws -> [UInt8] {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys, .withoutEscapingSlashes]
        return Array(try encoder.encode(value))
    }

    static func results(text: String, number: Double, id: UseAPIScalar?) -> [CommandResult] {
        let base = CommandResult(
            commandId: text, type: .upsert, email: text, status: .ok, code: 200, maxJobs: 3, jwt: nil, jwtExpiresAt: nil,
            error: nil, errorDetails: nil, stage: nil, attempts: 2, durationMs: 17,
            source: .init(topic: text, partition: 5, offset: .max), worker: text, processedAt: "2026-11-29T10:00:00.000Z"
        )
        var upsert = base
        upsert.jwt = .init(exp: number, iat: -number, id: id)
        upsert.jwtExpiresAt = text
        var bare = base
        bare.commandId = nil
        bare.email = nil
        bare.maxJobs = nil
        var delete = base
        delete.type = .delete
        var failed = base
        failed.status = .error
        failed.code = 502
        failed.error = text
        failed.errorDetails = text
        failed.stage = .transport
        var failedBare = failed
        failedBare.error = nil
        failedBare.errorDetails = nil
        failedBare.stage = nil
        return [base, upsert, bare, delete, failed, failedBare]
    }

    @Test("a result's bytes equal JSONEncoder's for every shape, hostile texts and extreme numbers included")
    func resultsMatchJSONEncoder() throws {
        for text in Self.hostileTexts {
            for (index, number) in Self.numbers.enumerated() {
                for result in Self.results(text: text, number: number, id: Self.ids[index % Self.ids.count]) {
                    let written = result.jsonBytes
                    let expected = try Self.expectedBytes(result)
                    #expect(written == expected, "\(String(decoding: written, as: UTF8.self))")
                    if let record = result.statusRecord, let value = record.value {
                        let expectedStatus = try Self.expectedBytes(Self.statusRecord(of: result))
                        #expect(value == expectedStatus)
                    }
                }
            }
        }
    }

    @Test("a non-finite JWT number is written as null, never as invalid JSON")
    func nonFiniteNumbers() throws {
        var result = Self.results(text: "a", number: 1, id: nil)[1]
        result.jwt?.exp = .infinity
        result.jwt?.iat = .nan
        let parsed = try JSONParser().parse(result.jsonBytes)
        #expect(parsed["jwt"]?["exp"] == .null)
        #expect(parsed["jwt"]?["iat"] == .null)
    }

    @Test("fuzz: results with fuzzed texts: the writer's bytes equal JSONEncoder's")
    func fuzzResults() throws {
        let fuzzer = Fuzzer(name: "result-json", corpus: Self.hostileTexts.map { $0 } + Fuzzer.hostileTokens)
        try fuzzer.run { (bytes: [UInt8]) throws in
            let text = String(decoding: bytes, as: UTF8.self)
            let number = Double(text).flatMap { $0.isFinite ? $0 : nil } ?? Double(bytes.count)
            for result in Self.results(text: text, number: number, id: .string(text)) {
                let expected = try Self.expectedBytes(result)
                #expect(result.jsonBytes == expected)
            }
        }
    }

    /// The record `statusRecord` writes, rebuilt for `JSONEncoder`.
    static func statusRecord(of result: CommandResult) -> AccountStatusRecord {
        AccountStatusRecord(
            email: result.email ?? "",
            status: result.status,
            code: result.code,
            maxJobs: result.status == .ok ? result.maxJobs : nil,
            jwt: result.status == .ok ? result.jwt : nil,
            jwtExpiresAt: result.status == .ok ? result.jwtExpiresAt : nil,
            commandId: result.commandId,
            updatedAt: result.processedAt,
            error: result.status == .error ? (result.error.map { CommandResult.cut($0) } ?? "HTTP \(result.code)") : nil
        )
    }
}
