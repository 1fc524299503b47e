import Foundation
import Kafka
import StrictJSON
import Synchronization
import TestSupport
import Testing
import UseAPISimulator

@testable import AccountWorker

/// Kafka faults other workers met in production, injected with the mock
/// cluster: the worker never stalls a partition, never becomes a zombie, and
/// never outlives its shutdown deadline.
@Suite("Worker against Kafka faults", .timeLimit(.minutes(3)))
struct KafkaFaultTests {
    @Test("a result the brokers refuse for good (MSG_SIZE_TOO_LARGE) is published degraded once; the partition moves on")
    func refusedResult() async throws {
        // useapi answers slowly, so the error injected after the command is
        // sent meets the worker's result, not the test's own send.
        var slow = SimulatedFault(emailPrefix: "big")
        slow.latencyMs = 500
        let harness = try await WorkerHarness(partitions: 1, faults: [slow])
        let worker = try harness.startWorker(await harness.settings())
        try await harness.sendUpsert(id: "warm-up", email: "warm@x.io")
        try await harness.waitForResults(1)
        try await harness.sendUpsert(id: "refused", email: "big@x.io")
        harness.cluster.pushRequestErrors(.produce, [.messageSizeTooLarge])
        try await harness.waitForResults(2)
        try await harness.sendUpsert(id: "after", email: "after@x.io")
        let results = try await harness.waitForResults(3)
        #expect(Set(results.compactMap(\.commandId)) == ["warm-up", "refused", "after"])
        #expect(results.allSatisfy { $0.status == "ok" })
        // Committed past both: a restart would not replay them.
        try await harness.waitUntil("offsets committed past the refused record", timeout: .seconds(20)) {
            worker.service.state.withLock { $0.takeCommits(force: true) }[KafkaTopicPartition(topic: harness.commandTopic, partition: 0)] == 3
        }
        try await worker.stop()
        await harness.shutdown()
    }

    @Test("a ~1 MB undecodable record: its DLQ copy cannot fit, so it goes without its value and with dlq-truncated; nothing stalls")
    func oversizeDeadLetter() async throws {
        let harness = try await WorkerHarness(partitions: 1)
        let worker = try harness.startWorker(await harness.settings())
        var client = WorkerHarness.client(harness.cluster)
        client.properties["message.max.bytes"] = "2000000"
        let bigProducer = try KafkaProducer(configuration: KafkaProducerConfiguration(client: client), logger: harness.quietLogger)
        try await bigProducer.send(
            KafkaProducerMessage(
                topic: harness.commandTopic,
                key: Array("big@example.com".utf8),
                value: [UInt8](repeating: UInt8(ascii: "X"), count: 999_950),
                headers: [KafkaHeader(key: "origin", value: "test")]
            )
        )
        await bigProducer.close()
        try await harness.sendUpsert(id: "next", email: "next@x.io")
        let results = try await harness.waitForResults(2, timeout: .seconds(60))
        let rejected = try #require(results.first { $0.commandId == nil })
        #expect(rejected.code == 413 && rejected.stage == "validation")
        #expect(results.contains { $0.commandId == "next" && $0.status == "ok" }, "the partition stalled behind the big record")
        try await harness.waitUntil("the dead letter") { !harness.deadLetters.isEmpty }
        let letter = try #require(harness.deadLetters.first)
        #expect(letter.headers.string(for: "dlq-truncated") == "true")
        #expect(letter.raw.isEmpty, "a value that cannot fit is left out")
        #expect(letter.headers.string(for: "dlq-reason") == "too-large")
        #expect(letter.headers.string(for: "dlq-source-offset") == "0")
        #expect(letter.headers.string(for: "origin") == "test", "small original headers are kept")
        #expect(letter.key == "big@example.com")
        try await worker.stop()
        await harness.shutdown()
    }

    @Test("a fatal producer error stops the worker: no more useapi calls, not alive, run() throws")
    func fatalProducer() async throws {
        var slow = SimulatedFault(emailPrefix: "fatal")
        slow.latencyMs = 500
        let harness = try await WorkerHarness(partitions: 1, faults: [slow])
        let worker = try harness.startWorker(await harness.settings())
        try await harness.sendUpsert(id: "before", email: "before@x.io")
        try await harness.waitForResults(1)
        #expect(worker.service.healthReport().alive)
        try await harness.sendUpsert(id: "fatal", email: "fatal@x.io")
        harness.cluster.pushRequestErrors(.produce, [.outOfOrderSequenceNumber])
        // run() must end with an error (the process then exits non-zero).
        let ended = await withTaskGroup(of: Bool.self) { group in
            group.addTask {
                do {
                    try await worker.task.value
                    return false
                } catch {
                    return true
                }
            }
            group.addTask {
                try? await Task.sleep(for: .seconds(30))
                return false
            }
            let first = await group.next() ?? false
            group.cancelAll()
            return first
        }
        #expect(ended, "the worker kept running after a fatal producer error")
        let report = worker.service.healthReport()
        #expect(!report.alive && report.reasons.contains("a Kafka client failed fatally"))
        let callsAtStop = harness.simulator.journal.totalRequests
        let lateProducer = try KafkaProducer(
            configuration: KafkaProducerConfiguration(client: WorkerHarness.client(harness.cluster)),
            logger: harness.quietLogger
        )
        for index in 0..<5 {
            try await lateProducer.send(
                KafkaProducerMessage(
                    topic: harness.commandTopic,
                    key: Array("late\(index)@x.io".utf8),
                    value: Array(#"{"id":"late-\#(index)","email":"late\#(index)@x.io","password":"pw","maxJobs":1}"#.utf8)
                )
            )
        }
        await lateProducer.close()
        try await Task.sleep(for: .seconds(1))
        #expect(harness.simulator.journal.totalRequests == callsAtStop, "useapi was called after the fatal error")
        await worker.components.shutdown()
        await harness.shutdown()
    }

    @Test("shutdown during a broker outage ends within SHUTDOWN_TIMEOUT_MS + 10 s")
    func shutdownDuringOutage() async throws {
        let harness = try await WorkerHarness(partitions: 1)
        let worker = try harness.startWorker(await harness.settings { $0.shutdownTimeout = .seconds(2) })
        try await harness.sendUpsert(id: "one", email: "one@x.io")
        try await harness.waitForResults(1)
        try harness.cluster.setBrokerDown(1)
        let started = ContinuousClock.now
        try await worker.stop()
        let elapsed = ContinuousClock.now - started
        #expect(elapsed < .seconds(12), "shutdown took \(elapsed) with the brokers down")
        #expect(harness.logs.lines.withLock { $0 }.contains { $0.contains("shutdown:") }, "nothing said what was abandoned")
        try harness.cluster.setBrokerUp(1)
        await harness.shutdown()
    }
}

@Suite("Worker buffer bound", .timeLimit(.minutes(2)))
struct BufferBoundTests {
    @Test("MAX_BUFFERED_COMMANDS holds with records already fetched: MAX_IN_FLIGHT=1, MAX_BUFFERED_COMMANDS=4, 60 commands waiting")
    func bufferBound() async throws {
        var slow = SimulatedFault()
        slow.latencyMs = 20
        let harness = try await WorkerHarness(partitions: 2, faults: [slow])
        // Everything is published before the worker starts: it all could be fetched at once.
        for index in 0..<60 {
            try await harness.sendUpsert(id: "b-\(index)", email: "user\(index)@x.io")
        }
        let worker = try harness.startWorker(
            await harness.settings {
                $0.maxInFlight = 1
                $0.maxBufferedCommands = 4
            }
        )
        let peak = Mutex(0)
        let sampler = Task {
            while !Task.isCancelled {
                let buffered = worker.service.health.buffered
                peak.withLock { $0 = max($0, buffered) }
                try? await Task.sleep(for: .milliseconds(2))
            }
        }
        let results = try await harness.waitForResults(60, timeout: .seconds(90))
        sampler.cancel()
        #expect(Set(results.compactMap(\.commandId)).count == 60, "a command was lost")
        #expect(peak.withLock { $0 } <= 4, "buffered peaked at \(peak.withLock { $0 }) for a bound of 4")
        #expect(peak.withLock { $0 } >= 1)
        try await worker.stop()
        await harness.shutdown()
    }
}

@Suite("Health that sees the work", .timeLimit(.minutes(2)))
struct WorkHealthTests {
    @Test("not ready while results cannot be published; ready again once they can")
    func publishStall() async throws {
        var slow = SimulatedFault(emailPrefix: "slow")
        slow.latencyMs = 1_000
        let harness = try await WorkerHarness(partitions: 1, faults: [slow])
        let worker = try harness.startWorker(await harness.settings { $0.publishStallThreshold = .seconds(1) })
        try await harness.waitUntil("ready") { worker.service.healthReport().ready }
        try await harness.sendUpsert(id: "stalled", email: "slow@x.io")
        try await harness.waitUntil("the call started") { harness.simulator.journal.totalRequests == 1 }
        try harness.cluster.setBrokerDown(1)
        try await harness.waitUntil("not ready", timeout: .seconds(20)) {
            worker.service.healthReport().reasons.contains { $0.hasPrefix("results cannot be published") }
        }
        #expect(worker.service.healthReport().alive, "a broker outage is no reason to restart the worker")
        try harness.cluster.setBrokerUp(1)
        try await harness.waitForResults(1, timeout: .seconds(60))
        try await harness.waitUntil("ready again", timeout: .seconds(30)) { worker.service.healthReport().ready }
        try await worker.stop()
        await harness.shutdown()
    }
}
