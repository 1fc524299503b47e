import Foundation
import Kafka
import StrictJSON
import Testing
import UseAPISimulator

@testable import AccountWorker

@Suite("Account status topic", .timeLimit(.minutes(2)))
struct StatusTopicTests {
    @Test("one record per result, keyed by email, in order; an ok delete is a tombstone; validation errors leave none")
    func statusRecords() async throws {
        let harness = try await WorkerHarness(partitions: 1, accounts: ["locked@x.io": .suspended])
        let worker = try harness.startWorker(await harness.settings())
        try await harness.sendUpsert(id: "s-1", email: "alice@x.io", password: "Status-Secret-1", maxJobs: 3)
        try await harness.sendUpsert(id: "s-2", email: "locked@x.io")
        try await harness.send(#"{"id":"s-3","email":"bad email@x.io","password":"pw","maxJobs":1}"#, key: "bad email@x.io")
        try await harness.send(#"{"id":"s-4","type":"account.delete","email":"alice@x.io"}"#, key: "alice@x.io")
        try await harness.waitForResults(4)
        try await harness.waitUntil("three status records") { harness.statusRecords.count >= 3 }
        try await Task.sleep(for: .milliseconds(300))
        let records = harness.statusRecords
        // Order holds per account (different accounts' chains run concurrently).
        #expect(records.compactMap(\.key).sorted() == ["alice@x.io", "alice@x.io", "locked@x.io"], "a validation error left a status record")
        let alice = records.filter { $0.key == "alice@x.io" }
        let upsert = try #require(alice.first)
        guard case .object(let fields) = upsert.json else {
            Issue.record("not an object: \(upsert.raw)")
            return
        }
        #expect(Set(fields.keys) == ["email", "status", "code", "maxJobs", "jwt", "jwtExpiresAt", "commandId", "updatedAt", "error"])
        #expect(upsert["status"]?.string == "ok" && upsert["maxJobs"]?.int == 3 && upsert["commandId"]?.string == "s-1")
        #expect(upsert["jwt"]?["exp"]?.double != nil && upsert["jwtExpiresAt"]?.string != nil && upsert["error"] == .null)
        #expect(!upsert.raw.contains("Status-Secret-1") && !upsert.raw.contains("token"))
        let failed = try #require(records.first { $0.key == "locked@x.io" })
        #expect(failed["status"]?.string == "error" && failed["code"]?.int == 401 && failed["jwt"] == .null)
        #expect(failed["error"]?.string == "This account has been suspended.")
        #expect(alice.last?.raw.isEmpty == true, "an ok delete publishes a tombstone, after the upsert's record")
        try await worker.stop()
        await harness.shutdown()
    }

    @Test("STATUS_TOPIC empty disables it")
    func disabled() throws {
        let settings = try WorkerSettings.parse(environment: ["KAFKA_BROKERS": "k:9092", "USEAPI_TOKEN": "t", "STATUS_TOPIC": ""])
        #expect(settings.statusTopic == nil)
        let defaults = try WorkerSettings.parse(environment: ["KAFKA_BROKERS": "k:9092", "USEAPI_TOKEN": "t"])
        #expect(defaults.statusTopic == "runway.accounts.status")
    }
}
