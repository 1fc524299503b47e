import Foundation
import Kafka
import Synchronization
import Testing

@Suite("Consumer groups and rebalancing", .timeLimit(.minutes(3)))
struct GroupTests {
    @Test(
        "two members split the partitions; when one leaves the other takes them over",
        arguments: [KafkaAssignmentStrategy.cooperativeSticky, .range]
    )
    func splitAndTakeOver(strategy: KafkaAssignmentStrategy) async throws {
        let env = try KafkaTestEnvironment()
        let topic = try env.makeTopic(partitions: 4)
        let group = env.uniqueGroup()
        let all: Set<Int32> = [0, 1, 2, 3]

        let first = try env.consumer(group: group, topics: [topic], strategy: strategy)
        let firstEvents = EventCollector(first)
        try await firstEvents.wait(for: "first member owns all partitions") { _ in
            Set(first.assignment.map(\.partition)) == all
        }

        let second = try env.consumer(group: group, topics: [topic], strategy: strategy)
        let secondEvents = EventCollector(second)
        try await secondEvents.wait(for: "the partitions split 2/2") { _ in
            first.assignment.count == 2 && second.assignment.count == 2
        }
        let firstHalf = Set(first.assignment.map(\.partition))
        let secondHalf = Set(second.assignment.map(\.partition))
        #expect(firstHalf.isDisjoint(with: secondHalf))
        #expect(firstHalf.union(secondHalf) == all)

        // Records reach whichever member owns their partition, each exactly once.
        let producer = try env.producer()
        for partition in all {
            try await producer.send(KafkaProducerMessage(topic: topic, key: nil, value: "p\(partition)".bytes, partition: partition))
        }
        try await firstEvents.waitForMessages(2)
        try await secondEvents.waitForMessages(2)
        #expect(Set(firstEvents.messages.map(\.partition)) == firstHalf)
        #expect(Set(secondEvents.messages.map(\.partition)) == secondHalf)

        await second.close()
        await secondEvents.finish()
        // The consumer's assignment changes before the collector records the
        // event: wait for both.
        try await firstEvents.wait(for: "first member takes over") { events in
            Set(first.assignment.map(\.partition)) == all && events.rebalances.last?.hasPrefix("assigned") == true
        }

        let sorted = { (set: Set<Int32>) in "\(set.sorted())" }
        switch strategy {
        case .cooperativeSticky:
            // Incremental: only the moved partitions are revoked, then given back.
            #expect(
                firstEvents.rebalances == [
                    "assigned \(sorted(all))", "revoked \(sorted(secondHalf))", "assigned \(sorted(secondHalf))",
                ]
            )
        default:
            // Eager: every rebalance revokes the whole assignment before the
            // next one (the group may go through extra generations while the
            // second member joins), and it ends owning everything again.
            var owned: [String]? = nil
            for entry in firstEvents.rebalances {
                if entry.hasPrefix("assigned ") {
                    #expect(owned == nil, "assigned twice without a revocation: \(firstEvents.rebalances)")
                    owned = [String(entry.dropFirst("assigned ".count))]
                } else {
                    #expect(owned == [String(entry.dropFirst("revoked ".count))], "revoked other than owned: \(firstEvents.rebalances)")
                    owned = nil
                }
            }
            #expect(firstEvents.rebalances.contains("revoked \(sorted(all))"))
            #expect(firstEvents.rebalances.last == "assigned \(sorted(all))")
        }
        #expect(secondEvents.rebalances.last == "assigned \(sorted(secondHalf))")
        await first.close()
        await firstEvents.finish()
        await producer.close()
    }

    @Test("a revocation waits for the Swift side: the new owner starts only after the old one let go")
    func revocationWaitsForSwift() async throws {
        let env = try KafkaTestEnvironment()
        let topic = try env.makeTopic(partitions: 2)
        let group = env.uniqueGroup()
        let producer = try env.producer()
        for partition: Int32 in [0, 1] {
            for index in 0..<3 {
                try await producer.send(KafkaProducerMessage(topic: topic, key: nil, value: "m\(index)".bytes, partition: partition))
            }
        }

        let handledAt = Mutex<ContinuousClock.Instant?>(nil)
        let first = try env.consumer(group: group, topics: [topic])
        let firstEvents = EventCollector(first) { event in
            guard case .partitionsRevoked = event else { return }
            // Pretend to drain slowly before letting the partitions go.
            try? await Task.sleep(for: .milliseconds(800))
            handledAt.withLock { $0 = .now }
        }
        try await firstEvents.waitForMessages(6)
        // Commit before the rebalance: librdkafka's mock coordinator refuses
        // commits while a group is joining (a real broker accepts them).
        try await first.commit([
            KafkaTopicPartition(topic: topic, partition: 0): 3, KafkaTopicPartition(topic: topic, partition: 1): 3,
        ])

        let assignedAt = Mutex<ContinuousClock.Instant?>(nil)
        let second = try env.consumer(group: group, topics: [topic])
        let secondEvents = EventCollector(second) { event in
            if case .partitionsAssigned = event {
                assignedAt.withLock { $0 = $0 ?? .now }
            }
        }
        try await secondEvents.waitForAssignment()
        let handled = try #require(handledAt.withLock { $0 })
        let assigned = try #require(assignedAt.withLock { $0 })
        #expect(handled < assigned, "the new owner was assigned before the old one finished its revocation")
        // The committed offsets were honoured: nothing is read again. A marker
        // written to each partition after the committed records arrives
        // (whoever owns its partition now); before it, nothing was delivered.
        let bothEvents = [firstEvents, secondEvents]
        for partition: Int32 in [0, 1] {
            try await producer.send(KafkaProducerMessage(topic: topic, key: nil, value: "marker".bytes, partition: partition))
        }
        try await secondEvents.wait(for: "both markers") { _ in
            bothEvents.flatMap(\.messages).filter { $0.value == "marker".bytes }.count == 2
        }
        #expect(secondEvents.messages.allSatisfy { $0.value == "marker".bytes }, "committed records were read again")
        #expect(firstEvents.messages.count == 6 + firstEvents.messages.filter { $0.value == "marker".bytes }.count)

        await second.close()
        await first.close()
        await secondEvents.finish()
        await firstEvents.finish()
        await producer.close()
    }

    @Test("a paused partition that is revoked and assigned again starts fetching (librdkafka would keep it paused)")
    func pauseDoesNotSurviveReassignment() async throws {
        let env = try KafkaTestEnvironment()
        let topic = try env.makeTopic(partitions: 2)
        let group = env.uniqueGroup()
        let first = try env.consumer(group: group, topics: [topic], strategy: .range)
        let firstEvents = EventCollector(first)
        try await firstEvents.wait(for: "both partitions") { _ in first.assignment.count == 2 }
        // Pause partition 0 only, and show that the pause took effect: a
        // record written to it first stays undelivered while markers written
        // to partition 1 after it arrive.
        let paused = try #require(first.assignment.first { $0.partition == 0 })
        try first.pause([paused])
        let producer = try env.producer()
        try await producer.send(KafkaProducerMessage(topic: topic, key: nil, value: "held".bytes, partition: 0))
        for index in 1...2 {
            // Two markers, one after the other: by the second, a fetch that
            // held partition 0's record too has long been delivered.
            try await producer.send(KafkaProducerMessage(topic: topic, key: nil, value: "marker-\(index)".bytes, partition: 1))
            try await firstEvents.wait(for: "marker \(index)") { events in events.messages.contains { $0.value == "marker-\(index)".bytes } }
        }
        #expect(!firstEvents.messages.contains { $0.partition == 0 }, "a paused partition delivered a record")

        // A second member joins and leaves: two eager rebalances revoke and
        // re-assign everything the first member had.
        let second = try env.consumer(group: group, topics: [topic], strategy: .range)
        let secondEvents = EventCollector(second)
        try await secondEvents.waitForAssignment()
        await second.close()
        await secondEvents.finish()
        try await firstEvents.wait(for: "both partitions again") { events in
            first.assignment.count == 2 && events.rebalances.last?.hasPrefix("assigned") == true
        }

        for partition: Int32 in [0, 1] {
            try await producer.send(KafkaProducerMessage(topic: topic, key: nil, value: "after".bytes, partition: partition))
        }
        // Partition 0 fetches again: its held record and the new one arrive
        // (nothing was committed, so partition 1 may be read again too).
        try await firstEvents.wait(for: "partition 0's records after the reassignment", timeout: .seconds(20)) { events in
            Set(events.messages.filter { $0.partition == 0 }.map(\.value)) == ["held".bytes, "after".bytes]
                && events.messages.contains { $0.partition == 1 && $0.value == "after".bytes }
        }
        await first.close()
        await firstEvents.finish()
        await producer.close()
    }
}
