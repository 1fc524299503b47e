@testable import AccountWorker
import Foundation
import Kafka
import StrictJSON
import Testing

@Suite("Operator commands of the binary", .timeLimit(.minutes(3)))
struct OperatorCommandTests {
    @Test("every subcommand has a useful --help", arguments: ["run", "demo", "send", "results", "dev-kafka", "simulate-useapi"])
    func help(subcommand: String) async throws {
        let process = try WorkerProcess(arguments: [subcommand, "--help"], environment: [:])
        #expect(try await process.waitForExit(timeout: .seconds(20)) == 0)
        let output = process.output
        #expect(output.contains("OVERVIEW:"))
        #expect(output.contains("USAGE: account-worker \(subcommand)"))
        if ["run", "send", "results"].contains(subcommand) {
            #expect(output.contains("--brokers"), "\(subcommand) lacks the shared Kafka settings")
        }
    }

    @Test("send publishes commands from flags and JSON lines; results reads them back filtered, and lists expiring accounts")
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

        let invalid = try WorkerProcess(
            arguments: ["send", "--brokers", harness.cluster.bootstrapServers, "--jsonl"],
            environment: environment,
            input: #"{"id":"bad","email":"two@x.io","password":"p","maxJobs":"2"}"# + "\n"
        )
        #expect(try await invalid.waitForExit(timeout: .seconds(30)) != 0)
        #expect(invalid.output.contains("maxJobs"))

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

        let expiring = try WorkerProcess(
            arguments: ["results", "--brokers", harness.cluster.bootstrapServers, "--expiring"],
            environment: environment
        )
        #expect(try await expiring.waitForExit(timeout: .seconds(30)) == 0)
        let rows = expiring.output.split(separator: "\n").map(String.init)
        #expect(rows.count == 3)
        #expect(rows[1].hasPrefix("soon@x.io") && (rows[1].contains("in 1d") || rows[1].contains("in 2d")))
        #expect(rows[2].hasPrefix("late@x.io"))
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
        try process.run()
        let data = pipe.fileHandleForReading.readDataToEndOfFile()
        process.waitUntilExit()
        return String(decoding: data, as: UTF8.self)
    }
}
