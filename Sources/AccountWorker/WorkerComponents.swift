import AsyncHTTPClient
import CoreMetrics
import Foundation
import Kafka
import Logging
import UseAPI

/// Everything `account-worker run` needs, built from ``WorkerSettings``:
/// the Kafka consumer and producer, the one `HTTPClient` of the process, the
/// useapi client, and the worker service over them.
public struct WorkerComponents: Sendable {
    public let service: AccountWorkerService
    public let consumer: KafkaConsumer
    public let httpClient: HTTPClient

    /// Builds the worker. An invalid librdkafka property is reported as the
    /// `KAFKA_CONFIG_*` setting that carried it.
    public static func make(
        settings: WorkerSettings,
        logger: Logger,
        kafkaLogger: Logger? = nil,
        metricsFactory: any MetricsFactory = MetricsSystem.factory
    ) throws(ConfigurationError) -> WorkerComponents {
        var client = KafkaClientConfiguration(bootstrapServers: settings.brokers)
        client.clientID = "account-worker-\(settings.workerID)"
        var consumerClient = client
        consumerClient.properties = settings.kafka.consumerProperties
        var producerClient = client
        producerClient.properties = settings.kafka.producerProperties
        let consumer: KafkaConsumer
        let producer: KafkaProducer
        do {
            var consumerConfiguration = KafkaConsumerConfiguration(
                client: consumerClient,
                groupID: settings.groupID,
                topics: [settings.commandTopic]
            )
            // Eager rebalancing: with librdkafka 2.0.2, a commit racing a
            // cooperative rebalance's generation bump fails with
            // ILLEGAL_GENERATION and librdkafka then drops the whole
            // assignment (librdkafka#4059, fixed upstream in 2.8). Eager
            // revocations let the worker drain and commit first.
            // KAFKA_CONFIG_PARTITION_ASSIGNMENT_STRATEGY overrides this.
            consumerConfiguration.assignmentStrategy = .range
            // MAX_BUFFERED_COMMANDS bounds the records the worker holds,
            // fetched ones included: the consumer hands out that many until
            // finished commands give their credits back, and librdkafka's
            // prefetch queue is sized to the bound, not its 64 MB default.
            consumerConfiguration.messageCredits = settings.maxBufferedCommands
            consumerConfiguration.eventBufferSize = min(1024, settings.maxBufferedCommands)
            let prefetch = settings.kafka.properties
            if prefetch["queued.min.messages"] == nil {
                consumerConfiguration.client.properties["queued.min.messages"] = String(max(1, settings.maxBufferedCommands))
            }
            if prefetch["queued.max.messages.kbytes"] == nil {
                let kilobytes = settings.maxBufferedCommands.multipliedReportingOverflow(by: max(1, settings.maxCommandBytes / 1024))
                consumerConfiguration.client.properties["queued.max.messages.kbytes"] =
                    String(kilobytes.overflow ? 65_536 : min(max(kilobytes.partialValue, 1024), 65_536))
            }
            consumer = try KafkaConsumer(configuration: consumerConfiguration, logger: kafkaLogger ?? logger)
            producer = try KafkaProducer(configuration: KafkaProducerConfiguration(client: producerClient), logger: kafkaLogger ?? logger)
        } catch {
            throw ConfigurationError(kafka: error)
        }
        let httpClient = UseAPIClient.makeHTTPClient(maxConnectionsPerHost: settings.maxInFlight)
        var useapiConfiguration = UseAPIConfiguration(baseURL: settings.useapiBaseURL, token: settings.useapiToken)
        useapiConfiguration.requestTimeout = settings.requestTimeout
        useapiConfiguration.version = accountWorkerVersion
        let useapi = UseAPIClient(configuration: useapiConfiguration, httpClient: httpClient, logger: logger)
        let service = AccountWorkerService(
            settings: settings,
            consumer: consumer,
            producer: producer,
            useapi: useapi,
            logger: logger,
            metricsFactory: metricsFactory
        )
        return WorkerComponents(service: service, consumer: consumer, httpClient: httpClient)
    }

    /// Releases the HTTP client once the service has stopped.
    public func shutdown() async {
        try? await httpClient.shutdown()
    }
}

extension ConfigurationError {
    /// Maps a librdkafka configuration error to the environment variable behind it.
    public init(kafka error: KafkaError) {
        if let property = error.invalidProperty {
            self.init(setting: WorkerSettings.environmentName(forKafkaProperty: property), message: error.message)
        } else {
            self.init(setting: "KAFKA_CONFIG_*", message: error.message)
        }
    }
}
