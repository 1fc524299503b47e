import AsyncHTTPClient
import CoreMetrics
import Foundation
import Kafka
import Logging
import ServiceLifecycle
import StrictJSON
import Synchronization
import TestSupport
import Testing
import UseAPI
import UseAPISimulator

@testable import AccountWorker

let workerTestToken = "user:777-WorkerTestToken0123"

struct HarnessTimeout: Error, CustomStringConvertible {
    var description: String
}

/// A published result or dead letter, as a downstream consumer sees it.
struct Received: Sendable {
    let topic: String
    let key: String?
    let headers: [KafkaHeader]
    let raw: String
    let json: TestJSON

    subscript(field: String) -> TestJSON? { json[field] }
    var commandId: String? { json["commandId"]?.string }
    var status: String? { json["status"]?.string }
    var code: Int? { json["code"]?.int }
    var attempts: Int? { json["attempts"]?.int }
    var email: String? { json["email"]?.string }
    var worker: String? { json["worker"]?.string }
    var stage: String? { json["stage"]?.string }
    var offset: Int? { json["source"]?["offset"]?.int }
}

/// A mock Kafka cluster, a useapi simulator, unique topics, a command
/// producer and a reader of the result and dead-letter topics.
final class WorkerHarness: Sendable {
    let cluster: KafkaMockCluster
    let simulator: UseAPISimulator
    private let simulatorTask: Task<Void, any Error>
    let commandTopic: String
    let resultTopic: String
    let dlqTopic: String
    let statusTopic: String
    let group: String
    let producer: KafkaProducer
    let logs = LogCapture()
    /// Warnings and errors of every Kafka client here (the worker's and the
    /// reader's), shown when a wait times out: a mock-cluster join that
    /// failed reads differently from a worker that never consumed.
    let kafkaWarnings = LogCapture()
    private let reader: KafkaReader
    private final class Inbox: Sendable {
        let records = Mutex<[Received]>([])
    }
    private let received = Inbox()
    private let readerTask: Task<Void, any Error>
    let quietLogger: Logger

    init(partitions: Int = 3, faults: [SimulatedFault] = [], accounts: [String: SimulatedAccountBehavior] = [:]) async throws {
        var quiet = Logger(label: "harness")
        quiet.logLevel = .critical
        quietLogger = quiet
        cluster = try KafkaMockCluster(brokers: 1, logger: quiet)
        let suffix = UUID().uuidString.prefix(8)
        commandTopic = "commands-\(suffix)"
        resultTopic = "results-\(suffix)"
        dlqTopic = "dlq-\(suffix)"
        statusTopic = "status-\(suffix)"
        group = "workers-\(suffix)"
        try cluster.createTopic(commandTopic, partitions: partitions)
        try cluster.createTopic(resultTopic, partitions: 1)
        try cluster.createTopic(dlqTopic, partitions: 1)
        try cluster.createTopic(statusTopic, partitions: 1)

        var configuration = UseAPISimulatorConfiguration(token: workerTestToken)
        configuration.faults = faults
        configuration.accounts = accounts
        let simulator = UseAPISimulator(configuration: configuration, logger: quiet)
        self.simulator = simulator
        simulatorTask = Task { try await simulator.run() }

        producer = try KafkaProducer(configuration: KafkaProducerConfiguration(client: Self.client(cluster)), logger: quiet)
        // The reader assigns the output topics' partitions directly (like
        // kcat): no consumer group to join, so a mock-cluster join that stalls
        // under load can only hit the worker under test, never the observer.
        var readerClient = Self.client(cluster)
        readerClient.properties["fetch.wait.max.ms"] = "50"
        let reader = try KafkaReader(client: readerClient, logger: kafkaWarnings.logger(label: "reader", level: .warning))
        self.reader = reader
        let outputs = [resultTopic, dlqTopic, statusTopic]
        try await reader.assign(
            Dictionary(uniqueKeysWithValues: outputs.map { (KafkaTopicPartition(topic: $0, partition: 0), Optional(Int64(0))) })
        )
        let received = self.received
        readerTask = Task {
            while !Task.isCancelled {
                guard case .message(let message) = try await reader.next(timeout: .milliseconds(100)) else { continue }
                let raw = String(decoding: message.value ?? [], as: UTF8.self)
                let json = (try? JSONParser().parse(Array(raw.utf8))) ?? .null
                let record = Received(
                    topic: message.topic,
                    key: message.key.map { String(decoding: $0, as: UTF8.self) },
                    headers: message.headers,
                    raw: raw,
                    json: json
                )
                received.records.withLock { $0.append(record) }
            }
        }
    }

    static func client(_ cluster: KafkaMockCluster) -> KafkaClientConfiguration {
        var client = KafkaClientConfiguration(bootstrapServers: [cluster.bootstrapServers])
        client.properties["topic.metadata.refresh.interval.ms"] = "1000"
        return client
    }

    func settings(workerID: String = "worker-1", _ configure: (inout WorkerSettings) -> Void = { _ in }) async -> WorkerSettings {
        var settings = WorkerSettings(brokers: [cluster.bootstrapServers], useapiToken: workerTestToken, workerID: workerID)
        settings.groupID = group
        settings.commandTopic = commandTopic
        settings.resultTopic = resultTopic
        settings.dlqTopic = dlqTopic
        settings.statusTopic = statusTopic
        settings.useapiBaseURL = await simulator.baseURL()
        settings.requestTimeout = .seconds(3)
        settings.shutdownTimeout = .seconds(15)
        settings.commitInterval = .milliseconds(200)
        settings.retryBaseDelay = .milliseconds(20)
        settings.retryMaxDelay = .milliseconds(300)
        configure(&settings)
        return settings
    }

    /// Starts a worker in-process; stop it with `RunningWorker.stop()`.
    /// `kafkaLogs` captures the worker's Kafka client logs (its rebalances).
    func startWorker(
        _ settings: WorkerSettings,
        metricsFactory: (any MetricsFactory)? = nil,
        before: [any Service] = [],
        kafkaLogs: LogCapture? = nil
    ) throws -> RunningWorker {
        var settings = settings
        settings.kafkaProperties.merge(
            [
                "session.timeout.ms": "6000", "heartbeat.interval.ms": "300", "fetch.wait.max.ms": "50",
                "topic.metadata.refresh.interval.ms": "1000",
            ]
        ) { current, _ in current }
        // HARNESS_KAFKA_LOGS=1 captures librdkafka's and the consumer's logs too, for debugging.
        let components = try WorkerComponents.make(
            settings: settings,
            logger: logs.logger(level: .debug),
            kafkaLogger: kafkaLogs?.logger(label: "kafka-\(settings.workerID)", level: .debug)
                ?? (ProcessInfo.processInfo.environment["HARNESS_KAFKA_LOGS"] == nil
                    ? kafkaWarnings.logger(label: "kafka-\(settings.workerID)", level: .warning)
                    : logs.logger(label: "kafka-\(settings.workerID)", level: .debug)),
            metricsFactory: metricsFactory ?? NOOPMetricsHandler.instance
        )
        let group = ServiceGroup(configuration: .init(services: before + [components.service], logger: quietLogger))
        let task = Task { try await group.run() }
        return RunningWorker(components: components, group: group, task: task)
    }

    @discardableResult
    func send(_ json: String, key: String? = nil, headers: [KafkaHeader] = [], partition: Int32? = nil) async throws -> KafkaDeliveryReport
    {
        try await send(bytes: Array(json.utf8), key: key, headers: headers, partition: partition)
    }

    @discardableResult
    func send(bytes: [UInt8]?, key: String?, headers: [KafkaHeader] = [], partition: Int32? = nil) async throws -> KafkaDeliveryReport {
        try await producer.send(
            KafkaProducerMessage(topic: commandTopic, key: key.map { Array($0.utf8) }, value: bytes, headers: headers, partition: partition)
        )
    }

    func sendUpsert(id: String, email: String, password: String = "pw-\(UUID().uuidString.prefix(6))", maxJobs: Int = 5) async throws {
        try await send(#"{"id":"\#(id)","email":"\#(email)","password":"\#(password)","maxJobs":\#(maxJobs)}"#, key: email)
    }

    var all: [Received] { received.records.withLock { $0 } }
    var results: [Received] { all.filter { $0.topic == resultTopic } }
    var deadLetters: [Received] { all.filter { $0.topic == dlqTopic } }
    var statusRecords: [Received] { all.filter { $0.topic == statusTopic } }

    /// Waits until results for `count` distinct command ids (or messages) arrived.
    @discardableResult
    func waitForResults(_ count: Int, timeout: Duration = .seconds(60)) async throws -> [Received] {
        let deadline = ContinuousClock.now + timeout
        while results.count < count {
            guard ContinuousClock.now < deadline else {
                throw HarnessTimeout(description: "\(results.count) of \(count) results after \(timeout)\n\(diagnosis)")
            }
            try await Task.sleep(for: .milliseconds(25))
        }
        // Every result any test sees follows the contract's field rules.
        let results = self.results
        results.forEach { expectContractShape($0) }
        return results
    }

    func waitUntil(_ what: String, timeout: Duration = .seconds(60), _ condition: () -> Bool) async throws {
        let deadline = ContinuousClock.now + timeout
        while !condition() {
            guard ContinuousClock.now < deadline else {
                throw HarnessTimeout(description: "timed out waiting for \(what)\n\(diagnosis)")
            }
            try await Task.sleep(for: .milliseconds(25))
        }
    }

    /// What a timed-out wait reports, so a failure on a loaded CI runner
    /// says where the commands stopped: useapi calls made, records read per
    /// topic, the Kafka clients' warnings and the worker's last log lines.
    var diagnosis: String {
        let records = all
        let counts = [commandTopic, resultTopic, dlqTopic, statusTopic].map { topic in
            "\(topic)=\(records.filter { $0.topic == topic }.count)"
        }
        return """
            useapi calls: \(simulator.journal.totalRequests); records read: \(counts.joined(separator: " "))
            kafka warnings (last 20):
              \(kafkaWarnings.all.suffix(20).joined(separator: "\n  "))
            worker log (last 30):
              \(logs.all.suffix(30).joined(separator: "\n  "))
            """
    }

    func shutdown() async {
        readerTask.cancel()
        _ = await readerTask.result
        await reader.close()
        await producer.close()
        simulatorTask.cancel()
        _ = await simulatorTask.result
    }
}

struct RunningWorker: Sendable {
    let components: WorkerComponents
    let group: ServiceGroup
    let task: Task<Void, any Error>

    var service: AccountWorkerService { components.service }

    func stop() async throws {
        await group.triggerGracefulShutdown()
        try await task.value
        await components.shutdown()
    }
}

/// Results are decoded with the worker's own strict JSON parser.
typealias TestJSON = JSONValue
