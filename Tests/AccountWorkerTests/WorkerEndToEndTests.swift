import Foundation
import Kafka
import StrictJSON
import Testing
import UseAPI
import UseAPISimulator

@testable import AccountWorker

@Suite("Worker end to end (in-process, mock Kafka + simulator)", .timeLimit(.minutes(3)))
struct WorkerEndToEndTests {
    @Test("upserts and deletes get ok results with the contract's fields, key and headers")
    func happyPath() async throws {
        let harness = try await WorkerHarness()
        let worker = try harness.startWorker(await harness.settings())
        let trace = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"
        try await harness.send(
            #"{"id":"c-1","email":"alice@example.com","password":"alice-secret-1","maxJobs":5,"unknown":true}"#,
            key: "alice@example.com",
            headers: [KafkaHeader(key: "traceparent", value: trace)]
        )
        try await harness.send(
            #"{"id":"c-2","type":"account.upsert","email":"bob@example.com","password":"bob-secret-2","maxJobs":2}"#,
            key: "bob@example.com"
        )
        try await harness.send(#"{"id":"c-3","type":"account.delete","email":"alice@example.com"}"#, key: "alice@example.com")
        try await harness.send(#"{"id":"c-4","type":"account.delete","email":"nobody@example.com"}"#, key: "nobody@example.com")
        try await harness.send(
            #"{"id":"c-5","email":"team@example.com","password":"team-secret-5","maxJobs":1,"useWorkspace":"team-9"}"#,
            key: "team@example.com"
        )
        let results = try await harness.waitForResults(5)
        let byID = Dictionary(uniqueKeysWithValues: results.map { ($0.commandId ?? "", $0) })

        let alice = try #require(byID["c-1"])
        #expect(alice.key == "alice@example.com")
        #expect(alice.status == "ok")
        #expect(alice.code == 200)
        #expect(alice["type"]?.string == "account.upsert")
        #expect(alice.email == "alice@example.com")
        #expect(alice["maxJobs"]?.int == 5)
        #expect(alice.attempts == 1)
        #expect(alice.worker == "worker-1")
        #expect(alice["source"]?["topic"]?.string == harness.commandTopic)
        #expect(alice["source"]?["partition"]?.int != nil)
        #expect(alice["durationMs"]?.int != nil)
        #expect(alice["processedAt"]?.string?.hasSuffix("Z") == true)
        let jwt = try #require(alice["jwt"])
        let exp = try #require(jwt["exp"]?.double)
        let iat = try #require(jwt["iat"]?.double)
        #expect(abs(exp - iat - 30 * 86_400) < 0.01)
        #expect(jwt["id"]?.int != nil)
        #expect(jwt["token"] == nil)
        let expiresAt = try #require(alice["jwtExpiresAt"]?.string)
        let formatter = ISO8601DateFormatter()
        formatter.formatOptions = [.withInternetDateTime, .withFractionalSeconds]
        let expiry = try #require(formatter.date(from: expiresAt))
        #expect(abs(expiry.timeIntervalSince1970 - exp) < 0.001)
        #expect(alice["error"] == nil && alice["stage"] == nil)
        #expect(alice.headers.string(for: "command-id") == "c-1")
        #expect(alice.headers.string(for: "content-type") == "application/json")
        #expect(alice.headers.string(for: "result-status") == "ok")
        #expect(alice.headers.string(for: "traceparent") == trace)
        #expect(byID["c-2"]?.headers.string(for: "traceparent") == nil)

        let deleted = try #require(byID["c-3"])
        #expect(deleted.status == "ok" && deleted.code == 200 && deleted["type"]?.string == "account.delete")
        #expect(deleted["jwt"] == nil)
        let absent = try #require(byID["c-4"])
        #expect(absent.status == "ok" && absent.code == 404)
        #expect(absent["error"] == nil && absent["errorDetails"] == nil)

        // useWorkspace is forwarded to useapi unchanged, and only when given.
        let bodies = harness.simulator.journal.requests.filter { $0.method == "POST" }.map(\.body)
        #expect(bodies.filter { $0.contains(#""useWorkspace":"team-9""#) }.count == 1)
        #expect(bodies.filter { $0.contains("useWorkspace") }.count == 1)
        #expect(byID["c-5"]?.status == "ok")

        // Nothing secret in any result.
        for result in results {
            #expect(!result.raw.contains("secret"))
            #expect(!result.raw.contains("sim-jwt-"))
            #expect(!result.raw.contains(workerTestToken))
        }
        try await worker.stop()
        await harness.shutdown()
    }

    @Test("invalid commands get 400/413 validation results, undecodable ones also go to the DLQ, and useapi is never called")
    func validation() async throws {
        let harness = try await WorkerHarness(partitions: 1)
        let worker = try harness.startWorker(await harness.settings { $0.maxCommandBytes = 200 })
        try await harness.send(#"{"id":"v-1","email":"a@x.io","password":"pw","maxJobs":"5"}"#, key: "a@x.io")
        try await harness.send(#"{"id":"v-2","email":"a@x.io","password":"pw","maxJobs":11}"#, key: "a@x.io")
        try await harness.send(bytes: Array("not json at all".utf8), key: "k-text", headers: [KafkaHeader(key: "origin", value: "test")])
        try await harness.send(bytes: nil, key: "k-tombstone")
        try await harness.send(bytes: [], key: "k-empty")
        let oversize = #"{"id":"v-6","email":"a@x.io","password":"\#(String(repeating: "p", count: 300))","maxJobs":5}"#
        try await harness.send(oversize, key: "k-big")
        try await harness.send(#"{"id":"v-7","email":"a@x.io","password":"pw","maxJobs":3}"#, key: "a@x.io")
        let results = try await harness.waitForResults(7)
        try await harness.waitUntil("4 dead letters") { harness.deadLetters.count >= 4 }

        let sorted = results.sorted { ($0.offset ?? 0) < ($1.offset ?? 0) }
        #expect(sorted.map(\.code) == [400, 400, 400, 400, 400, 413, 200])
        for result in sorted.prefix(6) {
            #expect(result.status == "error")
            #expect(result.stage == "validation")
            #expect(result.attempts == 0)
            #expect(result.headers.string(for: "result-status") == "error")
        }
        #expect(sorted[0].commandId == "v-1" && sorted[0]["errorDetails"]?.string == "field: maxJobs")
        #expect(sorted[2]["commandId"]?.isNull == true && sorted[2]["email"]?.isNull == true)
        #expect(sorted[2].key == "k-text")
        #expect(sorted[6].status == "ok")
        // Only the valid command reached useapi.
        #expect(harness.simulator.journal.totalRequests == 1)

        let letters = harness.deadLetters.sorted {
            $0.headers.string(for: "dlq-source-offset")! < $1.headers.string(for: "dlq-source-offset")!
        }
        #expect(letters.map { $0.headers.string(for: "dlq-source-offset") } == ["2", "3", "4", "5"])
        #expect(
            letters.map { $0.headers.string(for: "dlq-reason") } == [
                "not-a-json-object", "not-a-json-object", "not-a-json-object", "too-large",
            ]
        )
        #expect(letters[0].raw == "not json at all")
        #expect(letters[0].key == "k-text")
        #expect(letters[0].headers.string(for: "origin") == "test")
        #expect(letters[0].headers.string(for: "dlq-source-topic") == harness.commandTopic)
        #expect(letters[0].headers.string(for: "dlq-source-partition") == "0")
        #expect(letters[3].raw == oversize)
        try await worker.stop()
        await harness.shutdown()
    }
}
