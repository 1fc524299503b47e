@testable import AccountWorker
import Foundation
import Kafka
import StrictJSON
import Testing

@Suite("Operator commands of the binary", .timeLimit(.minutes(3)))
struct OperatorCommandTests {
    @Test("every subcommand has a useful --help", arguments: ["run", "demo", "send", "results", "dlq", "dlq list", "dlq replay", "dev-kafka", "simulate-useapi"])
    func help(subcommand: String) async throws {
        let process = try WorkerProcess(arguments: subcommand.split(separator: " ").map(String.init) + ["--help"], environment: [:])
        #expect(try await process.waitForExit(timeout: .seconds(20)) == 0)
        let output = process.output
        #expect(output.contains("OVERVIEW:"))
        #expect(output.contains("USAGE: account-worker \(subcommand)"))
        if ["run", "send", "results", "dlq list", "dlq replay"].contains(subcommand) {
            #expect(output.contains("--brokers"), "\(subcommand) lacks the shared Kafka settings")
        }
    }

    @Test("send publishes commands from flags and JSON lines, reports a bad line by number; results reads them back filtered")
    func sendAndResults() async throws {
        let harness = try BinaryHarness(partitions: 1)
        let environment = ["COMMAND_TOPIC": harness.commandTopic, "RESULT_TOPIC": harness.resultTopic]
        let passwordFile = FileManager.default.temporaryDirectory.appendingPathComponent("pw-\(UUID().uuidString)")
        try "Send-Secret-77\n".write(to: passwordFile, atomically: true, encoding: .utf8)
        defer { try? FileManager.default.removeItem(at: passwordFile) }

        let fromFlags = try WorkerProcess(
            arguments: [
                "send", "--brokers", harness.cluster.bootstrapServers, "--email", "one@x.io", "--max-jobs", "4", "--id", "send-1",
                "--password-file", passwordFile.path,
            ],
            environment: environment
        )
        #expect(try await fromFlags.waitForExit(timeout: .seconds(30)) == 0)
        #expect(fromFlags.output.split(separator: "\n").last == "send-1")
        #expect(!fromFlags.output.contains("Send-Secret-77"))

        let lines =
            #"{"id":"send-2","email":"two@x.io","password":"p","maxJobs":2}"# + "\n" + #"{"type":"account.delete","email":"three@x.io"}"#
            + "\n"
        let fromLines = try WorkerProcess(
            arguments: ["send", "--brokers", harness.cluster.bootstrapServers, "--jsonl"],
            environment: environment,
            input: lines
        )
        #expect(try await fromLines.waitForExit(timeout: .seconds(30)) == 0)
        let ids = fromLines.output.split(separator: "\n").map(String.init)
        #expect(ids.count == 2 && ids[0] == "send-2")

        // A bad line: reported with its number and send's own usage; nothing is sent.
        let invalid = try WorkerProcess(
            arguments: ["send", "--brokers", harness.cluster.bootstrapServers, "--jsonl"],
            environment: environment,
            input: #"{"id":"fine","email":"four@x.io","password":"p","maxJobs":2}"# + "\n\n"
                + #"{"id":"bad","email":"two@x.io","password":"p","maxJobs":"2"}"# + "\n"
        )
        #expect(try await invalid.waitForExit(timeout: .seconds(30)) == 64)
        #expect(invalid.output.contains("line 3 of standard input: invalid command: maxJobs"), "\(invalid.output)")
        #expect(invalid.output.contains("USAGE: account-worker send "), "\(invalid.output)")
        #expect(!invalid.output.contains("SUBCOMMANDS"))

        let commands = try await readAll(harness, topic: harness.commandTopic)
        #expect(commands.map(\.key) == ["one@x.io", "two@x.io", "three@x.io"])
        #expect(commands.first?.json["password"]?.string == "Send-Secret-77")
        #expect(commands.last?.json["id"]?.string == ids[1])

        // Results as a worker would publish them; read back with filters.
        let now = Date().timeIntervalSince1970
        func result(_ id: String, _ email: String, status: String, code: Int, expiresIn days: Double? = nil) -> (String, String) {
            let jwt = days.map { #","jwt":{"exp":\#(now + $0 * 86_400),"iat":\#(now),"id":1}"# } ?? ""
            return (
                email,
                #"{"commandId":"\#(id)","type":"account.upsert","email":"\#(email)","status":"\#(status)","code":\#(code),"attempts":1\#(jwt)}"#
            )
        }
        let published = [
            result("r-1", "late@x.io", status: "ok", code: 200, expiresIn: 29),
            result("r-2", "bad@x.io", status: "error", code: 401),
            result("r-3", "soon@x.io", status: "ok", code: 200, expiresIn: 2),
        ]
        let input = published.map { "\($0.0)\t\($0.1)" }.joined(separator: "\n") + "\n"
        try await kcat(["-b", harness.cluster.bootstrapServers, "-P", "-t", harness.resultTopic, "-K", "\t"], input: input)

        let errors = try WorkerProcess(
            arguments: [
                "results", "--brokers", harness.cluster.bootstrapServers, "--from", "beginning", "--format", "json",
                "--status", "error", "--exit-at-end",
            ],
            environment: environment
        )
        #expect(try await errors.waitForExit(timeout: .seconds(30)) == 0)
        let errorLines = errors.output.split(separator: "\n")
        #expect(errorLines.count == 1 && errorLines[0].contains(#""commandId":"r-2""#))

        await harness.shutdown()
    }

    @Test("dev-kafka prints bootstrap servers a real client can use, and exits 0 on Ctrl-C")
    func devKafka() async throws {
        let process = try WorkerProcess(arguments: ["dev-kafka", "--partitions", "2", "--topics", "alpha,beta"], environment: [:])
        var bootstrap = ""
        let deadline = ContinuousClock.now + .seconds(20)
        while bootstrap.isEmpty {
            guard ContinuousClock.now < deadline else { throw E2ETimeout(description: "no bootstrap line") }
            bootstrap = process.output.split(separator: "\n").first.map(String.init) ?? ""
            try await Task.sleep(for: .milliseconds(50))
        }
        let metadata = try await kcat(["-b", bootstrap, "-L"])
        #expect(metadata.contains(#"topic "alpha" with 2 partitions"#))
        #expect(metadata.contains(#"topic "beta" with 2 partitions"#))
        process.signal(SIGINT)
        #expect(try await process.waitForExit(timeout: .seconds(20)) == 0)
    }

    @Test("simulate-useapi answers like useapi and applies its faults")
    func simulateUseAPI() async throws {
        let process = try WorkerProcess(
            arguments: ["simulate-useapi", "--port", "0", "--email-prefix", "flaky", "--error-rate", "1"],
            environment: ["USEAPI_TOKEN": "user:9-sim"]
        )
        var port = ""
        let deadline = ContinuousClock.now + .seconds(20)
        while port.isEmpty {
            guard ContinuousClock.now < deadline else { throw E2ETimeout(description: "the simulator did not start") }
            if let range = process.output.range(of: #"simulator\.port=(\d+)"#, options: .regularExpression) {
                port = String(process.output[range].split(separator: "=")[1])
            }
            try await Task.sleep(for: .milliseconds(50))
        }
        func curl(_ email: String, token: String = "user:9-sim") async throws -> String {
            try await run(
                "/usr/bin/curl",
                [
                    "-s", "-o", "/dev/null", "-w", "%{http_code}", "-X", "POST", "-H", "Authorization: Bearer \(token)",
                    "-H", "Content-Type: application/json", "-d", #"{"email":"\#(email)","password":"p","maxJobs":3}"#,
                    "http://127.0.0.1:\(port)/v1/runwayml/accounts/\(email)",
                ]
            )
        }
        #expect(try await curl("a@x.io") == "200")
        #expect(try await curl("a@x.io", token: "user:9-wrong") == "401")
        #expect(["500", "502", "503"].contains(try await curl("flaky@x.io")))
        process.signal(SIGTERM)
        #expect(try await process.waitForExit(timeout: .seconds(20)) == 0)
    }

    private func run(_ executable: String, _ arguments: [String]) async throws -> String {
        let process = Process()
        process.executableURL = URL(fileURLWithPath: executable)
        process.arguments = arguments
        let pipe = Pipe()
        process.standardOutput = pipe
        try launch(process)
        let data = pipe.fileHandleForReading.readDataToEndOfFile()
        process.waitUntilExit()
        return String(decoding: data, as: UTF8.self)
    }
}

/// Runs the binary to completion; returns its exit status and output (stdout and stderr).
private func runBinary(_ arguments: [String], _ environment: [String: String], input: String? = nil) async throws -> (status: Int32, output: String) {
    let process = try WorkerProcess(arguments: arguments, environment: environment, input: input)
    let status = try await process.waitForExit(timeout: .seconds(30))
    return (status, process.output)
}

/// Produces `key<TAB>value` lines to `topic` with kcat, with `headers` on each.
private func kcatProduce(_ harness: BinaryHarness, topic: String, _ lines: [String], headers: [String] = [], nullEmpty: Bool = false) async throws {
    var arguments = ["-b", harness.cluster.bootstrapServers, "-P", "-t", topic, "-K", "\t"]
    if nullEmpty { arguments.append("-Z") }
    for header in headers { arguments += ["-H", header] }
    try await kcat(arguments, input: lines.joined(separator: "\n") + "\n")
}

@Suite("Operator tools against the mock cluster: results by time, expiring accounts, DLQ list and replay", .timeLimit(.minutes(3)))
struct OperatorToolTests {
    @Test("results --from a time shows only later results, with their command ids, and exits at the end")
    func resultsFromTime() async throws {
        let harness = try BinaryHarness(partitions: 1)
        let environment = ["KAFKA_BROKERS": harness.cluster.bootstrapServers, "RESULT_TOPIC": harness.resultTopic]
        func result(_ id: String) -> String {
            #"\#(id)@x.io\#t{"commandId":"\#(id)","type":"account.upsert","email":"\#(id)@x.io","status":"ok","code":200,"attempts":1}"#
        }
        try await kcatProduce(harness, topic: harness.resultTopic, [result("old-1"), result("old-2")])
        try await Task.sleep(for: .milliseconds(1_500))
        let since = Date().addingTimeInterval(-0.5)
        try await kcatProduce(harness, topic: harness.resultTopic, [result("new-1"), result("new-2")])

        let formatter = ISO8601DateFormatter()
        formatter.formatOptions = [.withInternetDateTime, .withFractionalSeconds]
        let json = try await runBinary(["results", "--from", formatter.string(from: since), "--format", "json", "--exit-at-end"], environment)
        #expect(json.status == 0)
        let ids = json.output.split(separator: "\n").compactMap { line in
            (try? JSONSerialization.jsonObject(with: Data(line.utf8)) as? [String: Any])?["commandId"] as? String
        }
        #expect(ids == ["new-1", "new-2"], "\(json.output)")
        #expect(json.output.contains("reading \(harness.resultTopic)[0] from offset"))

        let table = try await runBinary(["results", "--from", "1h", "--exit-at-end"], environment)
        #expect(table.status == 0)
        let rows = table.output.split(separator: "\n").filter { $0.contains("@x.io") }
        #expect(rows.count == 4, "\(table.output)")
        #expect(table.output.contains("COMMAND ID"))
        #expect(rows.first?.contains("old-1") == true && rows.last?.contains("new-2") == true)

        let none = try await runBinary(["results", "--from", "2999-01-01T00:00:00Z", "--format", "json", "--exit-at-end"], environment)
        #expect(none.status == 0)
        #expect(!none.output.contains("commandId"))
        #expect(try await runBinary(["results", "--from", "yesterday"], environment).status == 64)

        // Following (the default, --from now): each new result shows at once, even into a file.
        let follower = try WorkerProcess(arguments: ["results"], environment: environment)
        let deadline = ContinuousClock.now + .seconds(20)
        while !follower.output.contains("EMAIL") {
            guard ContinuousClock.now < deadline else { throw E2ETimeout(description: "no header from the follower") }
            try await Task.sleep(for: .milliseconds(50))
        }
        try await kcatProduce(harness, topic: harness.resultTopic, [result("live-1")])
        while !follower.output.contains("live-1") {
            guard ContinuousClock.now < deadline else { throw E2ETimeout(description: "the follower did not show live-1: \(follower.output)") }
            try await Task.sleep(for: .milliseconds(50))
        }
        #expect(!follower.output.contains("old-1") && !follower.output.contains("new-2"))
        follower.signal(SIGTERM)
        _ = try await follower.waitForExit(timeout: .seconds(10))
        await harness.shutdown()
    }

    @Test("results --expiring reads the status topic: latest record per account, tombstones forget; exit 1 within the window, 0 otherwise")
    func expiring() async throws {
        let harness = try BinaryHarness(partitions: 1)
        let statusTopic = "status-\(UUID().uuidString.prefix(8))"
        try harness.cluster.createTopic(statusTopic, partitions: 2)
        let environment = ["KAFKA_BROKERS": harness.cluster.bootstrapServers, "STATUS_TOPIC": statusTopic]

        let empty = try await runBinary(["results", "--expiring"], environment)
        #expect(empty.status == 0, "\(empty.output)")
        #expect(empty.output.contains("is empty"))

        let now = Date().timeIntervalSince1970
        func status(_ email: String, days: Double, id: String, ok: Bool = true) -> String {
            let state = ok ? #""status":"ok","code":200"# : #""status":"error","code":401"#
            return #"\#(email)\#t{"email":"\#(email)",\#(state),"maxJobs":3,"jwt":{"exp":\#(now + days * 86_400),"iat":\#(now),"id":7},"commandId":"\#(id)","updatedAt":"2026-11-29T10:00:00Z","error":null}"#
        }
        try await kcatProduce(
            harness,
            topic: statusTopic,
            [
                status("soon@x.io", days: 2, id: "c-soon"),
                status("late@x.io", days: 29, id: "c-late"),
                status("renewed@x.io", days: 1, id: "c-old"),
                status("renewed@x.io", days: 30, id: "c-new"),
                status("gone@x.io", days: 1, id: "c-gone"),
            ]
        )
        try await kcatProduce(harness, topic: statusTopic, ["gone@x.io\t"], nullEmpty: true)

        let week = try await runBinary(["results", "--expiring", "--within", "7d"], environment)
        #expect(week.status == 1, "\(week.output)")
        let rows = week.output.split(separator: "\n").map(String.init)
        #expect(rows.first?.hasPrefix("EMAIL") == true)
        #expect(rows.filter { $0.contains("@x.io") }.count == 1, "\(week.output)")
        #expect(rows.contains { $0.hasPrefix("soon@x.io") && $0.contains("c-soon") && ($0.contains("in 1d") || $0.contains("in 2d")) })
        #expect(rows.last == "1 of 3 accounts expire within 7d")

        let day = try await runBinary(["results", "--expiring", "--within", "1d"], environment)
        #expect(day.status == 0, "\(day.output)")
        #expect(day.output.contains("no JWT expires within 1d (3 accounts known"))

        let month = try await runBinary(["results", "--expiring", "--within", "31d", "--format", "json"], environment)
        #expect(month.status == 1)
        #expect(month.output.split(separator: "\n").compactMap { $0.firstRange(of: #""email":""#) != nil ? $0 : nil }.count == 3)

        let disabled = try await runBinary(["results", "--expiring"], environment.merging(["STATUS_TOPIC": ""]) { $1 })
        #expect(disabled.status == 2)
        await harness.shutdown()
    }

    @Test("dlq list shows dead letters without values unless asked; replay republishes once, keeps headers, refuses truncated ones")
    func dlqListAndReplay() async throws {
        let harness = try BinaryHarness(partitions: 3)
        let environment = [
            "KAFKA_BROKERS": harness.cluster.bootstrapServers, "COMMAND_TOPIC": harness.commandTopic, "DLQ_TOPIC": harness.dlqTopic,
        ]
        try await kcatProduce(
            harness,
            topic: harness.dlqTopic,
            ["bad@x.io\tnot json, secret-pw"],
            headers: [
                "traceparent=00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01", "dlq-source-topic=\(harness.commandTopic)",
                "dlq-source-partition=2", "dlq-source-offset=41", "dlq-reason=not one JSON object",
            ]
        )
        try await kcatProduce(
            harness,
            topic: harness.dlqTopic,
            ["huge@x.io\t"],
            headers: [
                "dlq-source-topic=\(harness.commandTopic)", "dlq-source-partition=1", "dlq-source-offset=42",
                "dlq-reason=larger than MAX_COMMAND_BYTES", "dlq-truncated=true",
            ],
            nullEmpty: true
        )

        let list = try await runBinary(["dlq", "list"], environment)
        #expect(list.status == 0, "\(list.output)")
        let rows = list.output.split(separator: "\n").map(String.init)
        #expect(rows.contains { $0.hasPrefix("0         0 ") && $0.contains("\(harness.commandTopic)[2]@41") && $0.contains("not one JSON object") && $0.contains("bad@x.io") && $0.hasSuffix("19 B") }, "\(list.output)")
        #expect(rows.contains { $0.hasPrefix("0         1 ") && $0.contains("[1]@42") && $0.hasSuffix("truncated") })
        #expect(!list.output.contains("secret-pw"))
        let values = try await runBinary(["dlq", "list", "--show-values"], environment)
        #expect(values.output.contains("value: not json, secret-pw"))

        let dryRun = try await runBinary(["dlq", "replay", "--offset", "0", "--dry-run"], environment)
        #expect(dryRun.status == 0 && dryRun.output.contains("would be replayed"), "\(dryRun.output)")
        #expect(try await readAll(harness, topic: harness.commandTopic).isEmpty)

        let replay = try await runBinary(["dlq", "replay", "--offset", "0"], environment)
        #expect(replay.status == 0, "\(replay.output)")
        #expect(replay.output.contains("replayed as \(harness.commandTopic)[2]@"))
        var commands = try await readAll(harness, topic: harness.commandTopic)
        #expect(commands.count == 1)
        let replayed = try #require(commands.first)
        #expect(replayed.partition == 2 && replayed.key == "bad@x.io" && replayed.payload == "not json, secret-pw")
        #expect(replayed.header("dlq-replayed-from") == "\(harness.dlqTopic)/0/0")
        #expect(replayed.header("traceparent") == "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01")
        #expect(replayed.headers?.contains { $0.hasPrefix("dlq-source") || $0 == "dlq-reason" } == false)

        // Never twice by accident.
        let again = try await runBinary(["dlq", "replay", "--all"], environment)
        #expect(again.output.contains("\(harness.dlqTopic)[0]@0: skipped, already replayed as \(harness.commandTopic)[2]@"), "\(again.output)")
        #expect(again.output.contains("\(harness.dlqTopic)[0]@1: cannot be replayed"))
        #expect(again.status == 1)
        commands = try await readAll(harness, topic: harness.commandTopic)
        #expect(commands.count == 1)

        let forced = try await runBinary(["dlq", "replay", "--offset", "0", "--force"], environment)
        #expect(forced.status == 0 && forced.output.contains("replayed 1"))
        #expect(try await readAll(harness, topic: harness.commandTopic).count == 2)

        let missing = try await runBinary(["dlq", "replay", "--offset", "7"], environment)
        #expect(missing.status == 1 && missing.output.contains("has no offset 7"))
        #expect(try await runBinary(["dlq", "replay"], environment).status == 64)
        await harness.shutdown()
    }
}
