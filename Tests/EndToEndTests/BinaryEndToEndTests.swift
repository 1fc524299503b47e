@testable import AccountWorker
import Foundation
import Kafka
import StrictJSON
import Testing
import UseAPISimulator

@Suite("The account-worker binary, driven with kcat", .serialized, .timeLimit(.minutes(5)))
struct BinaryEndToEndTests {
    func upsert(_ id: String, _ email: String, password: String, maxJobs: Int = 3) -> (key: String, value: String) {
        (email, #"{"id":"\#(id)","email":"\#(email)","password":"\#(password)","maxJobs":\#(maxJobs)}"#)
    }

    @Test("commands produced with kcat get results readable with kcat; SIGTERM exits 0; nothing secret in output")
    func happyPathAndSigterm() async throws {
        let harness = try BinaryHarness()
        let worker = try await harness.startWorker(workerID: "bin-1")
        let passwords = (0..<5).map { "Binary-Secret-\($0)-x9" }
        try await produce(harness, (0..<5).map { upsert("b-\($0)", "bin\($0)@x.io", password: passwords[$0]) })
        try await produce(harness, [("junk", "this is not json")])
        let results = try await waitForResults(harness, ids: Set((0..<5).map { "b-\($0)" }))
        for result in results where result.json["commandId"]?.string?.hasPrefix("b-") == true {
            #expect(result.json["status"]?.string == "ok")
            #expect(result.json["worker"]?.string == "bin-1")
            #expect(result.header("result-status") == "ok")
            #expect(result.key == result.json["email"]?.string)
        }
        let deadLetters = try await readAll(harness, topic: harness.dlqTopic)
        #expect(deadLetters.contains { $0.payload == "this is not json" && $0.header("dlq-reason") == "not-a-json-object" })

        worker.signal(SIGTERM)
        #expect(try await worker.waitForExit(timeout: .seconds(30)) == 0)
        let output = worker.output
        #expect(output.contains("\"msg\":\"command processed\""))
        for secret in passwords + [e2eToken] {
            #expect(!output.contains(secret))
            #expect(!results.contains { ($0.payload ?? "").contains(secret) })
        }
        await harness.shutdown()
    }

    @Test("a worker killed with SIGKILL mid-stream loses nothing: a new one reports every command")
    func crashSafety() async throws {
        var slow = SimulatedFault()
        slow.latencyMs = 100
        let harness = try BinaryHarness(partitions: 2, faults: [slow])
        let first = try await harness.startWorker(workerID: "doomed", ["MAX_IN_FLIGHT": "4"])
        let ids = (0..<60).map { "k-\($0)" }
        try await produce(harness, ids.enumerated().map { upsert($1, "crash\($0 % 15)@x.io", password: "pw") })
        // Let it get part of the way, then kill it without warning.
        let deadline = ContinuousClock.now + .seconds(60)
        while try await readAll(harness, topic: harness.resultTopic).count < 8 {
            guard ContinuousClock.now < deadline else { throw E2ETimeout(description: "no progress before the kill") }
            try await Task.sleep(for: .milliseconds(100))
        }
        first.signal(SIGKILL)
        _ = try await first.waitForExit(timeout: .seconds(10))
        let beforeRestart = Set(try await readAll(harness, topic: harness.resultTopic).compactMap { $0.json["commandId"]?.string })
        #expect(beforeRestart.count < 60, "the first worker finished before the kill; the test proves nothing")

        let second = try await harness.startWorker(workerID: "survivor")
        let results = try await waitForResults(harness, ids: Set(ids))
        #expect(Set(results.compactMap { $0.json["commandId"]?.string }) == Set(ids))
        #expect(results.contains { $0.json["worker"]?.string == "survivor" })
        second.signal(SIGTERM)
        #expect(try await second.waitForExit(timeout: .seconds(30)) == 0)
        await harness.shutdown()
    }

    @Test("a malformed setting stops start-up with exit code 2 and one line naming it, never a secret")
    func badSetting() async throws {
        let harness = try BinaryHarness()
        let worker = try await harness.startWorker(workerID: "bad", ["MAX_IN_FLIGHT": "many", "USEAPI_TOKEN": "user:1-TopSecretToken"])
        #expect(try await worker.waitForExit(timeout: .seconds(10)) == 2)
        let lines = worker.output.split(separator: "\n")
        #expect(lines.count == 1)
        #expect(lines.first?.contains("MAX_IN_FLIGHT") == true)
        #expect(!worker.output.contains("TopSecretToken"))

        let badProperty = try await harness.startWorker(workerID: "bad", ["KAFKA_CONFIG_NO_SUCH_THING": "1"])
        #expect(try await badProperty.waitForExit(timeout: .seconds(10)) == 2)
        #expect(badProperty.output.split(separator: "\n").count == 1)
        #expect(badProperty.output.contains("KAFKA_CONFIG_NO_SUCH_THING"))

        let noToken = try WorkerProcess(arguments: ["run"], environment: ["KAFKA_BROKERS": harness.cluster.bootstrapServers])
        #expect(try await noToken.waitForExit(timeout: .seconds(10)) == 2)
        #expect(noToken.output.contains("USEAPI_TOKEN"))
        await harness.shutdown()
    }
}

@Suite("account-worker demo, as a user runs it", .timeLimit(.minutes(3)))
struct DemoBinaryTests {
    @Test("`account-worker demo --json` exits 0 with one result per command and the summary")
    func demoBinary() async throws {
        let demo = try WorkerProcess(arguments: ["demo", "--json", "--latency-ms", "20"], environment: [:])
        #expect(try await demo.waitForExit(timeout: .seconds(120)) == 0)
        let lines = demo.output.split(separator: "\n").map(String.init)
        let results = lines.filter { $0.contains("\"commandId\"") }
        #expect(results.count == 30)
        let summary = try #require(lines.last)
        #expect(summary.contains(#""total":30"#))
        #expect(summary.contains(#""deadLetters":2"#))
    }
}
