import Foundation
import Kafka
import StrictJSON
import Synchronization
import TestSupport
import Testing
import UseAPI
import UseAPISimulator

@testable import AccountWorker

@Suite("Worker behaviour: codes, retries, order, concurrency, outages", .timeLimit(.minutes(4)))
struct WorkerBehaviourTests {
    @Test("useapi's final errors are reported once, with their code and message")
    func finalErrors() async throws {
        let harness = try await WorkerHarness(
            accounts: ["fixed@x.io": .password("the-right-one"), "suspended@x.io": .suspended, "broken@x.io": .errorState]
        )
        let worker = try harness.startWorker(await harness.settings())
        try await harness.sendUpsert(id: "e-1", email: "fixed@x.io", password: "a-wrong-one")
        try await harness.sendUpsert(id: "e-2", email: "suspended@x.io")
        try await harness.sendUpsert(id: "e-3", email: "broken@x.io")
        // A command reported twice fails the count below rather than trapping here.
        let byID = Dictionary(try await harness.waitForResults(3).map { ($0.commandId!, $0) }) { first, _ in first }
        #expect(byID["e-1"]?.code == 401)
        #expect(byID["e-1"]?["error"]?.string == "Wrong username/password combination.")
        #expect(byID["e-2"]?["error"]?.string == "This account has been suspended.")
        #expect(byID["e-3"]?.code == 596)
        for result in byID.values {
            #expect(result.status == "error")
            #expect(result.stage == "api")
            #expect(result.attempts == 1, "a final error was retried")
        }
        #expect(harness.simulator.journal.totalRequests == 3)
        try await worker.stop()
        // Once: nothing more was reported. The stopped worker's results are
        // all acknowledged; a marker written to the (one-partition) result
        // topic after them is read after every one of them.
        try await harness.producer.send(KafkaProducerMessage(topic: harness.resultTopic, key: nil, value: Array("marker".utf8)))
        try await harness.waitUntil("the marker", timeout: .seconds(30)) { harness.results.contains { $0.raw == "marker" } }
        let reported = harness.results.filter { $0.raw != "marker" }.compactMap(\.commandId)
        #expect(reported.sorted() == ["e-1", "e-2", "e-3"], "reported more than once: \(reported.sorted())")
        #expect(harness.simulator.journal.totalRequests == 3)
        await harness.shutdown()
    }

    @Test("retried answers (503, 429) are retried and then succeed")
    func retriesThenSuccess() async throws {
        var flaky = SimulatedFault(emailPrefix: "flaky")
        flaky.failFirst = 2
        var limited = SimulatedFault(emailPrefix: "limited")
        limited.failFirst = 1
        limited.failFirstStatus = 429
        let harness = try await WorkerHarness(faults: [flaky, limited])
        let worker = try harness.startWorker(await harness.settings())
        try await harness.sendUpsert(id: "r-1", email: "flaky@x.io")
        try await harness.sendUpsert(id: "r-2", email: "limited@x.io")
        let byID = Dictionary(uniqueKeysWithValues: try await harness.waitForResults(2).map { ($0.commandId!, $0) })
        #expect(byID["r-1"]?.status == "ok")
        #expect(byID["r-1"]?.attempts == 3)
        #expect(byID["r-2"]?.status == "ok")
        #expect(byID["r-2"]?.attempts == 2)
        // The 429 carried Retry-After: 1; the retry waited at least that long
        // (the exponential backoff alone is at most 20 ms here).
        let limitedCalls = harness.simulator.journal.requests.filter { $0.email == "limited@x.io" }
        #expect(limitedCalls.count == 2)
        if limitedCalls.count == 2, let firstEnd = limitedCalls[0].endedAt {
            #expect(limitedCalls[1].startedAt - firstEnd >= 0.95, "Retry-After was not honoured")
        }
        try await worker.stop()
        await harness.shutdown()
    }

    @Test("a hanging useapi gives 504 after MAX_ATTEMPTS; a dropped connection gives 502")
    func exhaustedAttempts() async throws {
        var hang = SimulatedFault(emailPrefix: "hang")
        hang.hangRate = 1
        var drop = SimulatedFault(emailPrefix: "drop")
        drop.dropRate = 1
        let harness = try await WorkerHarness(faults: [hang, drop])
        let worker = try harness.startWorker(
            await harness.settings {
                $0.maxAttempts = 3
                $0.requestTimeout = .milliseconds(300)
                $0.breakerThreshold = 100
            }
        )
        try await harness.sendUpsert(id: "h-1", email: "hang@x.io")
        try await harness.sendUpsert(id: "d-1", email: "drop@x.io")
        let byID = Dictionary(uniqueKeysWithValues: try await harness.waitForResults(2).map { ($0.commandId!, $0) })
        let hung = try #require(byID["h-1"])
        #expect(hung.status == "error" && hung.code == 504 && hung.stage == "transport" && hung.attempts == 3)
        let dropped = try #require(byID["d-1"])
        #expect(dropped.status == "error" && dropped.code == 502 && dropped.stage == "transport" && dropped.attempts == 3)
        try await worker.stop()
        await harness.shutdown()
    }

    @Test("per-account order and bounded concurrency: calls for one email never overlap, at most MAX_IN_FLIGHT at once")
    func orderAndConcurrency() async throws {
        var slow = SimulatedFault()
        slow.latencyMs = 30
        slow.latencyJitterMs = 40
        let harness = try await WorkerHarness(partitions: 3, faults: [slow])
        let worker = try harness.startWorker(await harness.settings { $0.maxInFlight = 4 })
        // 12 accounts × 5 commands; maxJobs encodes the sequence number.
        for round in 1...5 {
            for account in 0..<12 {
                try await harness.sendUpsert(id: "o-\(account)-\(round)", email: "user\(account)@x.io", maxJobs: round)
            }
        }
        let results = try await harness.waitForResults(60)
        #expect(results.allSatisfy { $0.status == "ok" })
        let journal = harness.simulator.journal
        #expect(journal.overlappingEmails.isEmpty, "overlapping calls for \(journal.overlappingEmails)")
        #expect(journal.maxConcurrentRequests == 4, "peak concurrency \(journal.maxConcurrentRequests), bound 4")
        for account in 0..<12 {
            let email = "user\(account)@x.io"
            let calls = journal.requests.filter { $0.email == email }
            let sent = calls.compactMap { (try? JSONParser().parse(Array($0.body.utf8)))?["maxJobs"]?.int }
            #expect(sent == [1, 2, 3, 4, 5], "calls for \(email) out of order")
            let reported = results.filter { $0.email == email }.compactMap { $0["maxJobs"]?.int }
            #expect(reported == [1, 2, 3, 4, 5], "results for \(email) out of order")
        }
        try await worker.stop()
        await harness.shutdown()
    }

    @Test("an outage opens the circuit; afterwards the waiting commands complete ok without exhausting their attempts")
    func outage() async throws {
        var down = SimulatedFault()
        down.serverErrorRate = 1
        // One partition, and all eight are waiting before the worker starts,
        // so one fetch hands over all eight and their first calls fail
        // together. With three partitions, one partition's records could
        // arrive alone (its start offset looked up first) and use up their
        // three attempts before three accounts had failed: a correct error
        // result, but not what this test is about.
        let harness = try await WorkerHarness(partitions: 1, faults: [down])
        for index in 0..<8 {
            try await harness.sendUpsert(id: "out-\(index)", email: "outage\(index)@x.io")
        }
        let worker = try harness.startWorker(
            await harness.settings {
                $0.maxAttempts = 3
                $0.breakerThreshold = 3
                $0.retryBaseDelay = .milliseconds(10)
                $0.retryMaxDelay = .milliseconds(50)
            }
        )
        // Without the breaker, 3 attempts with ≤50 ms waits end in errors long before this.
        try await harness.waitUntil("the circuit to open") {
            harness.logs.lines.withLock { $0.contains { $0.contains("circuit opened") } }
        }
        try await Task.sleep(for: .seconds(2))
        #expect(harness.results.isEmpty, "commands were reported during the outage")
        harness.simulator.setFaults([])
        let results = try await harness.waitForResults(8)
        #expect(results.allSatisfy { $0.status == "ok" }, "\(results.map { "\($0.commandId ?? "") \($0.code ?? 0)" })")
        // Every call, probes included, is counted in some result's attempts.
        let attempts = results.reduce(0) { $0 + ($1.attempts ?? 0) }
        #expect(attempts == harness.simulator.journal.totalRequests)
        #expect(attempts > 8, "no call failed during the outage")
        #expect(harness.logs.lines.withLock { $0.contains { $0.contains("circuit closed") } })
        try await worker.stop()
        await harness.shutdown()
    }
}
