import Foundation
import Kafka
import Logging
import Synchronization
import Testing

struct TestTimeout: Error, CustomStringConvertible {
    var what: String
    var description: String { "timed out waiting for \(what)" }
}

/// A fresh mock cluster plus helpers that name every topic and group uniquely.
struct KafkaTestEnvironment {
    let cluster: KafkaMockCluster
    let logger: Logger

    init(brokers: Int = 1) throws {
        var logger = Logger(label: "kafka-tests")
        logger.logLevel = ProcessInfo.processInfo.environment["TEST_LOG_LEVEL"].flatMap(Logger.Level.init(rawValue:)) ?? .critical
        self.logger = logger
        self.cluster = try KafkaMockCluster(brokers: brokers, logger: logger)
    }

    func makeTopic(partitions: Int = 1) throws -> String {
        let topic = "test-\(UUID().uuidString.prefix(8))"
        try cluster.createTopic(topic, partitions: partitions)
        return topic
    }

    func uniqueGroup() -> String { "group-\(UUID().uuidString.prefix(8))" }

    var client: KafkaClientConfiguration {
        var client = KafkaClientConfiguration(bootstrapServers: [cluster.bootstrapServers])
        client.properties["topic.metadata.refresh.interval.ms"] = "1000"
        client.properties["reconnect.backoff.max.ms"] = "500"
        return client
    }

    func consumer(
        group: String,
        topics: [String],
        strategy: KafkaAssignmentStrategy = .cooperativeSticky,
        _ configure: (inout KafkaConsumerConfiguration) -> Void = { _ in }
    ) throws -> KafkaConsumer {
        var configuration = KafkaConsumerConfiguration(client: client, groupID: group, topics: topics)
        configuration.assignmentStrategy = strategy
        configuration.sessionTimeout = .seconds(6)
        configuration.heartbeatInterval = .milliseconds(300)
        configuration.client.properties["fetch.wait.max.ms"] = "50"
        configure(&configuration)
        return try KafkaConsumer(configuration: configuration, logger: logger)
    }

    func producer(_ configure: (inout KafkaProducerConfiguration) -> Void = { _ in }) throws -> KafkaProducer {
        var configuration = KafkaProducerConfiguration(client: client)
        configuration.linger = .milliseconds(1)
        configure(&configuration)
        return try KafkaProducer(configuration: configuration, logger: logger)
    }
}

/// Iterates a consumer's events in a task (acknowledging revocations as it
/// goes) and records them, so tests can wait for a condition with a deadline.
final class EventCollector: Sendable {
    private final class Recorded: Sendable {
        let events = Mutex<[KafkaConsumerEvent]>([])
    }
    private let recorded = Recorded()
    private let task: Task<Void, any Error>

    init(_ consumer: KafkaConsumer, onEvent: @escaping @Sendable (KafkaConsumerEvent) async -> Void = { _ in }) {
        let recorded = self.recorded
        self.task = Task {
            for try await event in consumer.events {
                await onEvent(event)
                recorded.events.withLock { $0.append(event) }
            }
        }
    }

    var events: [KafkaConsumerEvent] { recorded.events.withLock { $0 } }

    var messages: [KafkaMessage] {
        events.compactMap { if case .message(let message) = $0 { message } else { nil } }
    }

    /// The rebalance events only, as readable strings.
    var rebalances: [String] {
        events.compactMap {
            switch $0 {
            case .message, .endOfPartition: nil
            case .partitionsAssigned(let partitions): "assigned \(partitions.map(\.partition).sorted())"
            case .partitionsRevoked(let partitions, _): "revoked \(partitions.map(\.partition).sorted())"
            }
        }
    }

    func wait(
        for what: String,
        timeout: Duration = .seconds(30),
        until condition: (EventCollector) -> Bool
    ) async throws {
        let deadline = ContinuousClock.now + timeout
        while !condition(self) {
            guard ContinuousClock.now < deadline else { throw TestTimeout(what: what) }
            try await Task.sleep(for: .milliseconds(20))
        }
    }

    func waitForMessages(_ count: Int, timeout: Duration = .seconds(30)) async throws {
        try await wait(for: "\(count) messages", timeout: timeout) { $0.messages.count >= count }
    }

    func waitForAssignment(timeout: Duration = .seconds(30)) async throws {
        try await wait(for: "an assignment", timeout: timeout) { collector in
            collector.events.contains { if case .partitionsAssigned = $0 { true } else { false } }
        }
    }

    func finish() async {
        _ = await task.result
    }
}

extension String {
    var bytes: [UInt8] { Array(utf8) }
}
