import AccountWorker
import Foundation
import Kafka
import Logging
import ServiceLifecycle
import UseAPISimulator

/// `account-worker demo`: the whole system in one process. A mock Kafka
/// cluster, the useapi simulator and the worker run in-process; a realistic
/// set of commands is published and the results are shown as they arrive.
public enum Demo {
    public struct Options: Sendable {
        public var count = 30
        public var latencyMs = 150
        public var json = false
        public var timeout: Duration = .seconds(90)

        public init() {}
    }

    public struct Failure: Error, CustomStringConvertible {
        public var description: String
    }

    /// Runs the demo; `write` receives each output line. Returns the summary.
    public static func run(_ options: Options, write: @escaping @Sendable (String) -> Void) async throws -> ResultSummary {
        var quiet = Logger(label: "demo")
        quiet.logLevel = .critical
        let scenario = DemoScenario(count: options.count)

        let cluster = try KafkaMockCluster(brokers: 1, logger: quiet)
        var settings = WorkerSettings(brokers: [cluster.bootstrapServers], useapiToken: "user:1-demo-token", workerID: "demo-worker")
        for topic in [settings.commandTopic] { try cluster.createTopic(topic, partitions: 3) }
        for topic in [settings.resultTopic, settings.dlqTopic!] { try cluster.createTopic(topic, partitions: 1) }

        var simulatorConfiguration = UseAPISimulatorConfiguration(token: settings.useapiToken)
        simulatorConfiguration.accounts = DemoScenario.accounts
        simulatorConfiguration.faults = DemoScenario.faults(latencyMs: options.latencyMs)
        let simulator = UseAPISimulator(configuration: simulatorConfiguration, logger: quiet)

        settings.useapiBaseURL = "http://127.0.0.1:0"
        settings.maxInFlight = 4
        settings.retryBaseDelay = .milliseconds(250)
        settings.retryMaxDelay = .seconds(2)
        settings.commitInterval = .milliseconds(500)
        settings.kafkaProperties = ["session.timeout.ms": "6000", "heartbeat.interval.ms": "500", "fetch.wait.max.ms": "50"]

        var client = KafkaClientConfiguration(bootstrapServers: [cluster.bootstrapServers])
        client.properties["fetch.wait.max.ms"] = "50"
        let producer = try KafkaProducer(configuration: KafkaProducerConfiguration(client: client), logger: quiet)
        // The output partitions are read directly (like kcat): no consumer
        // group to join, which on the mock cluster costs seconds and now and
        // then stalls.
        let reader = try KafkaReader(client: client, logger: quiet)
        try await reader.assign([
            KafkaTopicPartition(topic: settings.resultTopic, partition: 0): 0,
            KafkaTopicPartition(topic: settings.dlqTopic!, partition: 0): 0,
        ])

        return try await withThrowingTaskGroup(of: Void.self) { group in
            group.addTask { try await simulator.run() }
            settings.useapiBaseURL = await simulator.baseURL()
            let components = try WorkerComponents.make(settings: settings, logger: quiet)
            let workerGroup = ServiceGroup(configuration: .init(services: [components.service], logger: quiet))
            group.addTask { try await workerGroup.run() }

            if !options.json {
                write(
                    "account-worker demo: \(scenario.commands.count) commands → mock Kafka → worker → useapi simulator (\(options.latencyMs) ms latency)"
                )
                write("")
                write(ResultTable.header)
            }
            for command in scenario.commands {
                try await producer.send(
                    KafkaProducerMessage(topic: settings.commandTopic, key: Array(command.key.utf8), value: command.value)
                )
            }

            var summary = ResultSummary()
            var expiring = ExpiringReport()
            let deadline = ContinuousClock.now + options.timeout
            while ContinuousClock.now < deadline {
                guard case .message(let message) = try await reader.next(timeout: .milliseconds(100)) else { continue }
                if message.topic == settings.dlqTopic {
                    summary.deadLetters += 1
                } else if let result = ResultView.decode(message.value ?? []) {
                    summary.add(result)
                    expiring.add(result)
                    write(options.json ? String(decoding: message.value ?? [], as: UTF8.self) : ResultTable.row(result))
                }
                if summary.total >= scenario.commands.count && summary.deadLetters >= scenario.expectedSummary.deadLetters {
                    break
                }
            }
            if options.json {
                let encoder = JSONEncoder()
                encoder.outputFormatting = [.sortedKeys]
                write(String(decoding: try encoder.encode(["summary": summary]), as: UTF8.self))
            } else {
                write("")
                write(expiring.soonLine(within: 7 * 86_400))
                write("summary: \(summary.text)")
            }

            await workerGroup.triggerGracefulShutdown()
            await reader.close()
            await producer.close()
            group.cancelAll()
            while let next = await group.nextResult() {
                if case .failure(let error) = next, !(error is CancellationError) {
                    quiet.debug("demo task ended", metadata: ["error": "\(error)"])
                }
            }
            await components.shutdown()
            guard summary.total >= scenario.commands.count else {
                throw Failure(description: "only \(summary.total) of \(scenario.commands.count) results arrived within \(options.timeout)")
            }
            withExtendedLifetime(cluster) {}
            return summary
        }
    }
}
