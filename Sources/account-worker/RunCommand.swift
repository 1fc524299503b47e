import AccountWorker
import ArgumentParser
import Foundation
import Logging
import Prometheus
import ServiceLifecycle
import UnixSignals
import WorkerHTTP

/// Settings shared by every command that talks to Kafka.
struct KafkaOptions: ParsableArguments {
    @Option(name: .customLong("brokers"), help: "Bootstrap servers (env KAFKA_BROKERS).")
    var brokers: String?

    @Option(name: .customLong("kafka-config"), help: "A librdkafka property as NAME=VALUE, repeatable (env KAFKA_CONFIG_<NAME>).")
    var kafkaConfig: [String] = []

    /// The Kafka settings from the environment and these flags; a bad one
    /// exits with code 2 and one line naming it.
    func connectionSettings() -> KafkaConnectionSettings {
        do {
            var environment = ProcessInfo.processInfo.environment
            environment.merge(try environmentOverrides()) { $1 }
            return try KafkaConnectionSettings.parse(environment: environment)
        } catch {
            exitWithConfigurationError(error)
        }
    }

    /// Flags as environment entries, so flags and environment share one parser.
    func environmentOverrides() throws(ConfigurationError) -> [String: String] {
        var overrides: [String: String] = [:]
        if let brokers { overrides["KAFKA_BROKERS"] = brokers }
        for entry in kafkaConfig {
            guard let equals = entry.firstIndex(of: "="), equals != entry.startIndex else {
                throw ConfigurationError(setting: "--kafka-config", message: "expects NAME=VALUE, e.g. security.protocol=SASL_SSL")
            }
            let name = String(entry[..<equals])
            overrides[WorkerSettings.environmentName(forKafkaProperty: name)] = String(entry[entry.index(after: equals)...])
        }
        return overrides
    }
}

struct RunCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "run",
        abstract: "Consume account commands, apply them to useapi, publish results.",
        discussion: """
            Every setting comes from the environment (see the README's configuration table); \
            a flag overrides its variable. The useapi token comes from USEAPI_TOKEN or USEAPI_TOKEN_FILE \
            only, never from a flag (flags are visible to every user of the machine). \
            A missing or malformed setting exits with code 2 and one line naming it.
            """
    )

    @OptionGroup var kafka: KafkaOptions
    @Option(help: "Consumer group (env KAFKA_GROUP_ID).") var groupId: String?
    @Option(help: "Command topic (env COMMAND_TOPIC).") var commandTopic: String?
    @Option(help: "Result topic (env RESULT_TOPIC).") var resultTopic: String?
    @Option(help: "Dead-letter topic, empty disables (env DLQ_TOPIC).") var dlqTopic: String?
    @Option(help: "Compacted account status topic, empty disables (env STATUS_TOPIC).") var statusTopic: String?
    @Option(help: "useapi calls per second for the whole group, 0 is off (env MAX_REQUESTS_PER_SECOND).")
    var maxRequestsPerSecond: String?
    @Option(help: "useapi base URL (env USEAPI_BASE_URL).") var useapiBaseUrl: String?
    @Option(help: "File holding the useapi token (env USEAPI_TOKEN_FILE).") var useapiTokenFile: String?
    @Option(help: "Concurrent useapi calls (env MAX_IN_FLIGHT).") var maxInFlight: String?
    @Option(help: "Calls per command, first included (env MAX_ATTEMPTS).") var maxAttempts: String?
    @Option(help: "Failing accounts that open the circuit (env BREAKER_THRESHOLD).") var breakerThreshold: String?
    @Option(help: "One call's timeout in ms (env REQUEST_TIMEOUT_MS).") var requestTimeoutMs: String?
    @Option(help: "Graceful drain in ms (env SHUTDOWN_TIMEOUT_MS).") var shutdownTimeoutMs: String?
    @Option(help: "Largest accepted command in bytes (env MAX_COMMAND_BYTES).") var maxCommandBytes: String?
    @Option(help: "Commands held in memory before fetching pauses (env MAX_BUFFERED_COMMANDS).") var maxBufferedCommands: String?
    @Option(help: "Port for /healthz, /readyz, /metrics; 0 disables (env HTTP_PORT).") var httpPort: String?
    @Option(help: "trace, debug, info, notice, warning, error, critical (env LOG_LEVEL).") var logLevel: String?
    @Option(help: "json or text (env LOG_FORMAT).") var logFormat: String?
    @Option(help: "Worker id in results, logs and metrics (env WORKER_ID).") var workerId: String?

    func run() async throws {
        var environment = ProcessInfo.processInfo.environment
        let flags: [(String, String?)] = [
            ("KAFKA_GROUP_ID", groupId), ("COMMAND_TOPIC", commandTopic), ("RESULT_TOPIC", resultTopic),
            ("DLQ_TOPIC", dlqTopic), ("STATUS_TOPIC", statusTopic), ("MAX_REQUESTS_PER_SECOND", maxRequestsPerSecond),
            ("USEAPI_BASE_URL", useapiBaseUrl), ("USEAPI_TOKEN_FILE", useapiTokenFile),
            ("MAX_IN_FLIGHT", maxInFlight), ("MAX_ATTEMPTS", maxAttempts), ("BREAKER_THRESHOLD", breakerThreshold),
            ("REQUEST_TIMEOUT_MS", requestTimeoutMs), ("SHUTDOWN_TIMEOUT_MS", shutdownTimeoutMs),
            ("MAX_COMMAND_BYTES", maxCommandBytes), ("MAX_BUFFERED_COMMANDS", maxBufferedCommands), ("HTTP_PORT", httpPort),
            ("LOG_LEVEL", logLevel), ("LOG_FORMAT", logFormat), ("WORKER_ID", workerId),
        ]
        for case (let name, let value?) in flags { environment[name] = value }
        if useapiTokenFile != nil { environment["USEAPI_TOKEN"] = nil }

        let settings: WorkerSettings
        do {
            environment.merge(try kafka.environmentOverrides()) { $1 }
            settings = try WorkerSettings.parse(environment: environment)
        } catch {
            exitWithConfigurationError(error)
        }
        bootstrapLogging(settings)
        let logger = Logger(label: "account-worker")

        let registry = PrometheusCollectorRegistry()
        let components: WorkerComponents
        do {
            components = try WorkerComponents.make(
                settings: settings,
                logger: logger,
                metricsFactory: WorkerHTTPServer.metricsFactory(registry: registry)
            )
        } catch {
            exitWithConfigurationError(error)
        }
        // The HTTP server starts first so that it stops last: it answers
        // "not ready" while the worker drains.
        var services: [any Service] = []
        if settings.httpPort != 0 {
            let service = components.service
            services.append(
                WorkerHTTPServer(port: settings.httpPort, registry: registry, logger: logger) { service.healthReport() }
            )
        }
        services.append(components.service)
        let group = ServiceGroup(
            configuration: .init(services: services, gracefulShutdownSignals: [.sigterm, .sigint], logger: logger)
        )
        do {
            try await group.run()
        } catch {
            logger.error("account worker failed", metadata: ["error": "\(error)"])
            await components.shutdown()
            throw ExitCode.failure
        }
        await components.shutdown()
    }
}

func exitWithConfigurationError(_ error: ConfigurationError) -> Never {
    FileHandle.standardError.write(Data("account-worker: \(error)\n".utf8))
    exit(2)
}

func bootstrapLogging(_ settings: WorkerSettings) {
    let level = Logger.Level(rawValue: settings.logLevel) ?? .info
    let metadata: Logger.Metadata = ["worker": .string(settings.workerID)]
    let format = WorkerLogHandler.Format(rawValue: settings.logFormat) ?? .json
    LoggingSystem.bootstrap { label in
        var handler = WorkerLogHandler(label: label, format: format, metadata: metadata)
        handler.logLevel = level
        return handler
    }
}
