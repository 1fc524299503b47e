import Foundation
import Kafka
import Testing

@Suite("Produce and consume", .timeLimit(.minutes(2)))
struct ProduceConsumeTests {
    @Test("keys, values and headers arrive intact: text, binary, empty and null")
    func roundTrip() async throws {
        let env = try KafkaTestEnvironment()
        let topic = try env.makeTopic()
        let producer = try env.producer()
        let binary = (0...255).map { UInt8($0) } + [0, 0, 255]
        let sent: [KafkaProducerMessage] = [
            KafkaProducerMessage(
                topic: topic,
                key: "alice@example.com".bytes,
                value: #"{"id":"1"}"#.bytes,
                headers: [
                    KafkaHeader(key: "traceparent", value: "00-abc-def-01"), KafkaHeader(key: "repeat", value: "a"),
                    KafkaHeader(key: "repeat", value: "b"),
                ]
            ),
            KafkaProducerMessage(topic: topic, key: binary, value: binary, headers: [KafkaHeader(key: "bin", value: binary)]),
            KafkaProducerMessage(topic: topic, key: "k".bytes, value: [], headers: [KafkaHeader(key: "null-header", value: nil)]),
            KafkaProducerMessage(topic: topic, key: "k".bytes, value: nil),
            KafkaProducerMessage(topic: topic, key: nil, value: "no key".bytes),
        ]
        var reports: [KafkaDeliveryReport] = []
        for message in sent {
            reports.append(try await producer.send(message))
        }
        #expect(reports.map(\.offset) == [0, 1, 2, 3, 4])

        let consumer = try env.consumer(group: env.uniqueGroup(), topics: [topic])
        let collector = EventCollector(consumer)
        try await collector.waitForMessages(sent.count)
        let received = collector.messages
        #expect(received.map(\.offset) == [0, 1, 2, 3, 4])
        for (message, original) in zip(received, sent) {
            #expect(message.topic == topic)
            #expect(message.key == original.key)
            #expect(message.value == original.value)
            #expect(message.headers == original.headers)
            #expect(message.timestampMilliseconds != nil)
        }
        // The distinction that matters to the worker: empty is not null.
        #expect(received[2].value == [])
        #expect(received[3].value == nil)
        await consumer.close()
        await collector.finish()
        await producer.close()
    }

    @Test("after a commit and a restart the group resumes right after the committed offset")
    func commitAndResume() async throws {
        let env = try KafkaTestEnvironment()
        let topic = try env.makeTopic()
        let group = env.uniqueGroup()
        let producer = try env.producer()
        for index in 0..<10 {
            try await producer.send(topic: topic, key: "k".bytes, value: "m\(index)".bytes)
        }

        let first = try env.consumer(group: group, topics: [topic])
        let firstCollector = EventCollector(first)
        try await firstCollector.waitForMessages(6)
        // Processed 0...5: the next offset to read is 6. Later ones were
        // fetched but never committed, so they must come again.
        try await first.commit([KafkaTopicPartition(topic: topic, partition: 0): 6])
        await first.close()
        await firstCollector.finish()

        let second = try env.consumer(group: group, topics: [topic])
        let secondCollector = EventCollector(second)
        try await secondCollector.waitForMessages(4)
        try await Task.sleep(for: .milliseconds(300))
        #expect(secondCollector.messages.map(\.offset) == [6, 7, 8, 9])
        #expect(secondCollector.messages.map { String(decoding: $0.value ?? [], as: UTF8.self) } == ["m6", "m7", "m8", "m9"])
        await second.close()
        await secondCollector.finish()
        await producer.close()
    }

    @Test("an asynchronous commit is also honoured by the next member")
    func asyncCommit() async throws {
        let env = try KafkaTestEnvironment()
        let topic = try env.makeTopic()
        let group = env.uniqueGroup()
        let producer = try env.producer()
        for index in 0..<4 {
            try await producer.send(topic: topic, key: nil, value: "m\(index)".bytes)
        }
        let first = try env.consumer(group: group, topics: [topic])
        let collector = EventCollector(first)
        try await collector.waitForMessages(4)
        try first.commitAsync([KafkaTopicPartition(topic: topic, partition: 0): 3])
        // Close waits for outstanding commits to be answered.
        await first.close()
        await collector.finish()

        let second = try env.consumer(group: group, topics: [topic])
        let secondCollector = EventCollector(second)
        try await secondCollector.waitForMessages(1)
        #expect(secondCollector.messages.first?.offset == 3)
        await second.close()
        await secondCollector.finish()
        await producer.close()
    }

    @Test("pause stops delivery from a partition and resume restarts it, losing nothing")
    func pauseResume() async throws {
        let env = try KafkaTestEnvironment()
        let topic = try env.makeTopic()
        let producer = try env.producer()
        let consumer = try env.consumer(group: env.uniqueGroup(), topics: [topic])
        let collector = EventCollector(consumer)
        try await collector.waitForAssignment()
        for index in 0..<5 {
            try await producer.send(topic: topic, key: nil, value: "before-\(index)".bytes)
        }
        try await collector.waitForMessages(5)

        let partition = KafkaTopicPartition(topic: topic, partition: 0)
        try consumer.pause([partition])
        for index in 0..<5 {
            try await producer.send(topic: topic, key: nil, value: "during-\(index)".bytes)
        }
        try await Task.sleep(for: .seconds(1))
        #expect(collector.messages.count == 5, "a paused partition delivered records")

        try consumer.resume([partition])
        try await collector.waitForMessages(10)
        #expect(collector.messages.map(\.offset) == Array(0..<10))
        await consumer.close()
        await collector.finish()
        await producer.close()
    }

    @Test("consumer lag per partition is the log end minus the group's committed offset, read or not")
    func lag() async throws {
        let env = try KafkaTestEnvironment()
        let topic = try env.makeTopic()
        let producer = try env.producer()
        for index in 0..<50 {
            try await producer.send(topic: topic, key: nil, value: "m\(index)".bytes)
        }
        let consumer = try env.consumer(group: env.uniqueGroup(), topics: [topic])
        let partition = KafkaTopicPartition(topic: topic, partition: 0)
        let collector = EventCollector(consumer)
        // Every record read, none committed: the lag is the whole backlog.
        try await collector.waitForMessages(50)
        #expect(await consumer.lag()[partition] == 50)
        try await consumer.commit([partition: 30])
        #expect(await consumer.lag()[partition] == 20)
        // New records count at once, fetched or not.
        for index in 0..<5 {
            try await producer.send(topic: topic, key: nil, value: "n\(index)".bytes)
        }
        #expect(await consumer.lag()[partition] == 25)
        try await consumer.commit([partition: 55])
        #expect(await consumer.lag()[partition] == 0)
        #expect(consumer.assignment == [partition])
        await consumer.close()
        await collector.finish()
        await producer.close()
    }

    @Test("a reader looks up offsets by time for any date: absurd and NaN dates are clamped, never trap")
    func offsetsForAbsurdTimes() async throws {
        let env = try KafkaTestEnvironment()
        let topic = try env.makeTopic()
        let producer = try env.producer()
        try await producer.send(topic: topic, key: nil, value: "m".bytes)
        let reader = try KafkaReader(client: env.client, logger: env.logger)
        let partition = KafkaTopicPartition(topic: topic, partition: 0)
        for seconds in [1e300, -1e300, .infinity, -.infinity, .nan, 9.3e15] {
            let found = try await reader.offsets(at: Date(timeIntervalSince1970: seconds), for: [partition])
            #expect(found.keys.sorted() == [partition], "\(seconds)")
        }
        await reader.close()
        await producer.close()
    }
}
