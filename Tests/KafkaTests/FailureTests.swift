import Foundation
import Kafka
import Logging
import Testing

@Suite("Broker failures and configuration errors", .timeLimit(.minutes(2)))
struct FailureTests {
    @Test("records sent while the broker is down are delivered once it is back")
    func brokerDownAndUp() async throws {
        let env = try KafkaTestEnvironment()
        let topic = try env.makeTopic()
        let producer = try env.producer()
        let consumer = try env.consumer(group: env.uniqueGroup(), topics: [topic])
        let collector = EventCollector(consumer)
        try await collector.waitForAssignment()
        try await producer.send(topic: topic, key: nil, value: "before".bytes)
        try await collector.waitForMessages(1)

        try env.cluster.setBrokerDown(1)
        let sends = Task {
            var offsets: [Int64] = []
            for index in 0..<3 {
                offsets.append(try await producer.send(topic: topic, key: nil, value: "during-\(index)".bytes).offset)
            }
            return offsets
        }
        try await Task.sleep(for: .seconds(1))
        #expect(collector.messages.count == 1)
        try env.cluster.setBrokerUp(1)

        #expect(try await sends.value == [1, 2, 3])
        try await collector.waitForMessages(4)
        #expect(
            collector.messages.map { String(decoding: $0.value ?? [], as: UTF8.self) } == ["before", "during-0", "during-1", "during-2"]
        )
        await consumer.close()
        await collector.finish()
        await producer.close()
    }

    @Test("retriable produce errors are retried by the idempotent producer without duplicates")
    func retriableProduceErrors() async throws {
        let env = try KafkaTestEnvironment()
        let topic = try env.makeTopic()
        let producer = try env.producer()
        try await producer.send(topic: topic, key: nil, value: "warm-up".bytes)
        env.cluster.pushRequestErrors(.produce, [.notLeaderForPartition, .requestTimedOut, .notEnoughReplicas])
        for index in 0..<5 {
            try await producer.send(topic: topic, key: nil, value: "m\(index)".bytes)
        }
        let consumer = try env.consumer(group: env.uniqueGroup(), topics: [topic])
        let collector = EventCollector(consumer)
        try await collector.waitForMessages(6)
        try await Task.sleep(for: .milliseconds(500))
        let values = collector.messages.map { String(decoding: $0.value ?? [], as: UTF8.self) }
        #expect(values == ["warm-up", "m0", "m1", "m2", "m3", "m4"])
        await consumer.close()
        await collector.finish()
        await producer.close()
    }

    @Test("a non-retriable produce error is thrown with its code")
    func nonRetriableProduceError() async throws {
        let env = try KafkaTestEnvironment()
        let topic = try env.makeTopic()
        let producer = try env.producer()
        try await producer.send(topic: topic, key: nil, value: "warm-up".bytes)
        env.cluster.pushRequestErrors(.produce, [.topicAuthorizationFailed])
        let error = await #expect(throws: KafkaError.self) {
            try await producer.send(topic: topic, key: nil, value: "refused".bytes)
        }
        #expect(error?.code == .topicAuthorizationFailed)
        #expect(error?.name == "TOPIC_AUTHORIZATION_FAILED")
        #expect(error?.isRetriable == false)
        await producer.close()
    }

    @Test("an unknown librdkafka property fails with its name")
    func unknownProperty() throws {
        var client = KafkaClientConfiguration(bootstrapServers: ["127.0.0.1:1"])
        client.properties["no.such.property"] = "1"
        let error = #expect(throws: KafkaError.self) {
            try KafkaProducer(configuration: KafkaProducerConfiguration(client: client), logger: .init(label: "test"))
        }
        #expect(error?.message.contains("\"no.such.property\"") == true)
    }

    @Test("an invalid value fails with the property's name and never echoes the value")
    func invalidValue() throws {
        var client = KafkaClientConfiguration(bootstrapServers: ["127.0.0.1:1"])
        client.properties["security.protocol"] = "S3cretLooking"
        let error = #expect(throws: KafkaError.self) {
            try KafkaConsumer(
                configuration: KafkaConsumerConfiguration(client: client, groupID: "g", topics: ["t"]),
                logger: .init(label: "test")
            )
        }
        let message = try #require(error?.message)
        #expect(message.contains("\"security.protocol\""))
        #expect(!message.contains("S3cretLooking"))
    }
}
