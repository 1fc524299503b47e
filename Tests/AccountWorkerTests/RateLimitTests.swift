import Foundation
import Kafka
import Synchronization
import Testing
import UseAPISimulator

@testable import AccountWorker

@Suite("Request-rate limit across replicas and AIMD on 429", .timeLimit(.minutes(3)))
struct RateLimitTests {
    @Test("3 replicas with MAX_REQUESTS_PER_SECOND=50 keep useapi at or under 50/s over any 2 s window")
    func groupRate() async throws {
        let harness = try await WorkerHarness(partitions: 6)
        let workers = try await (0..<3).asyncMap { index in
            try harness.startWorker(await harness.settings(workerID: "rate-\(index)") { $0.maxRequestsPerSecond = 50 })
        }
        try await harness.waitUntil("every replica has partitions") { workers.allSatisfy { $0.service.health.assignedPartitions > 0 } }
        for index in 0..<300 {
            try await harness.sendUpsert(id: "r-\(index)", email: "user\(index)@x.io")
        }
        try await harness.waitForResults(300, timeout: .seconds(90))
        let starts = harness.simulator.journal.requests.map(\.startedAt).sorted()
        #expect(starts.count >= 300)
        var busiest = 0
        var low = 0
        for high in starts.indices {
            while starts[high] - starts[low] >= 2.0 { low += 1 }
            busiest = max(busiest, high - low + 1)
        }
        #expect(busiest <= 100, "\(busiest) calls in one 2 s window, limit 100")
        #expect(busiest >= 50, "the limit is so strict it starves the workers: \(busiest) calls in the busiest 2 s")
        for worker in workers { try await worker.stop() }
        await harness.shutdown()
    }

    @Test("a 429 storm shrinks the concurrency limit; it grows back as calls succeed")
    func aimd() async throws {
        var storm = SimulatedFault(emailPrefix: "storm")
        storm.failFirst = 3
        storm.failFirstStatus = 429
        storm.rateLimitRetryAfterSeconds = 0
        let harness = try await WorkerHarness(partitions: 1, faults: [storm])
        let worker = try harness.startWorker(await harness.settings { $0.maxInFlight = 8 })
        for index in 0..<6 {
            try await harness.sendUpsert(id: "s-\(index)", email: "storm\(index)@x.io")
        }
        try await harness.waitUntil("the limit shrank") { worker.service.state.withLock { $0.concurrencyLimit } < 8 }
        try await harness.waitForResults(6, timeout: .seconds(60))
        let low = worker.service.state.withLock { $0.concurrencyLimit }
        for index in 0..<30 {
            try await harness.sendUpsert(id: "calm-\(index)", email: "calm\(index)@x.io")
        }
        try await harness.waitForResults(36, timeout: .seconds(60))
        #expect(worker.service.state.withLock { $0.concurrencyLimit } > low, "the limit never grew back")
        try await worker.stop()
        await harness.shutdown()
    }
}

extension Sequence {
    func asyncMap<T>(_ transform: (Element) async throws -> T) async rethrows -> [T] {
        var results: [T] = []
        for element in self { results.append(try await transform(element)) }
        return results
    }
}
