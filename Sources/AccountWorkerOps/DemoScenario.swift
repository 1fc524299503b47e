import Foundation
import Kafka
import UseAPISimulator

/// The demo's sample commands and the simulator behaviours they meet.
public struct DemoScenario: Sendable {
    public struct Command: Sendable {
        public var key: String
        public var value: [UInt8]
        /// What the demo expects, "status code" (e.g. "ok 200").
        public var expected: String
    }

    public var commands: [Command]

    /// Accounts the simulator treats specially.
    public static let accounts: [String: SimulatedAccountBehavior] = [
        "locked@example.com": .password("the-real-password"),
        "suspended@example.com": .suspended,
        "broken@example.com": .errorState,
    ]

    /// Faults: a flaky account that fails twice, a rate-limited one that gets 429 once.
    public static func faults(latencyMs: Int) -> [SimulatedFault] {
        var flaky = SimulatedFault(emailPrefix: "flaky@")
        flaky.failFirst = 2
        flaky.latencyMs = latencyMs
        var busy = SimulatedFault(emailPrefix: "busy@")
        busy.failFirst = 1
        busy.failFirstStatus = 429
        busy.rateLimitRetryAfterSeconds = 1
        busy.latencyMs = latencyMs
        var everyone = SimulatedFault()
        everyone.latencyMs = latencyMs
        everyone.latencyJitterMs = latencyMs / 2
        return [flaky, busy, everyone]
    }

    /// The sample set (30 commands); `count` trims it or pads it with more new accounts.
    public init(count: Int = 30) {
        var commands: [Command] = []
        func upsert(_ id: String, _ email: String, maxJobs: Int, password: String = "demo-pass-1", extra: String = "", expect: String) {
            let json = #"{"id":"\#(id)","email":"\#(email)","password":"\#(password)","maxJobs":\#(maxJobs)\#(extra)}"#
            commands.append(Command(key: email, value: Array(json.utf8), expected: expect))
        }
        func raw(_ key: String, _ json: String, expect: String) {
            commands.append(Command(key: key, value: Array(json.utf8), expected: expect))
        }
        let people = ["alice", "bob", "carol", "dave", "erin", "frank", "grace", "heidi", "ivan", "judy", "mallory", "niaj"]
        for (index, name) in people.enumerated() {
            upsert("new-\(name)", "\(name)@example.com", maxJobs: index % 10 + 1, expect: "ok 200")
        }
        upsert("update-alice", "alice@example.com", maxJobs: 8, expect: "ok 200")
        upsert("update-bob", "bob@example.com", maxJobs: 3, expect: "ok 200")
        raw("bad-maxjobs", #"{"id":"bad-maxjobs-type","email":"carol@example.com","password":"p","maxJobs":"5"}"#, expect: "error 400")
        upsert("update-carol", "carol@example.com", maxJobs: 10, expect: "ok 200")
        raw("erin@example.com", #"{"id":"delete-erin","type":"account.delete","email":"erin@example.com"}"#, expect: "ok 200")
        raw("olivia@example.com", #"{"id":"delete-unknown","type":"account.delete","email":"olivia@example.com"}"#, expect: "ok 404")
        upsert("too-many-jobs", "dave@example.com", maxJobs: 11, expect: "error 400")
        raw("peggy@example.com", #"{"id":"no-password","email":"peggy@example.com","maxJobs":2}"#, expect: "error 400")
        upsert("bad-email", "peggy.example.com", maxJobs: 2, expect: "error 400")
        raw("garbage", "this is not a command", expect: "error 400")
        raw("huge", #"{"id":"huge","note":"\#(String(repeating: "x", count: 70_000))"}"#, expect: "error 413")
        upsert("wrong-password", "locked@example.com", maxJobs: 2, password: "a-guess", expect: "error 401")
        upsert("suspended", "suspended@example.com", maxJobs: 2, expect: "error 401")
        upsert("error-state", "broken@example.com", maxJobs: 2, expect: "error 596")
        upsert("flaky", "flaky@example.com", maxJobs: 4, expect: "ok 200")
        upsert("rate-limited", "busy@example.com", maxJobs: 4, expect: "ok 200")
        upsert("update-dave", "dave@example.com", maxJobs: 1, expect: "ok 200")
        upsert("workspace", "trent@example.com", maxJobs: 5, extra: #","useWorkspace":true"#, expect: "ok 200")
        var extra = 0
        while commands.count < count {
            extra += 1
            upsert("extra-\(extra)", "user\(extra)@example.com", maxJobs: extra % 10 + 1, expect: "ok 200")
        }
        self.commands = Array(commands.prefix(max(0, count)))
    }

    /// The summary the sample set must produce.
    public var expectedSummary: ResultSummary {
        var summary = ResultSummary()
        for command in commands {
            let parts = command.expected.split(separator: " ")
            summary.total += 1
            summary.byStatus[String(parts[0]), default: 0] += 1
            summary.byCode[command.expected, default: 0] += 1
        }
        summary.deadLetters = commands.filter { $0.key == "garbage" || $0.key == "huge" }.count
        return summary
    }
}
