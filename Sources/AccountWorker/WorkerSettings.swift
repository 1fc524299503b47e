import Foundation
import Kafka

/// A setting that is missing or malformed. `description` is the one line
/// printed at start-up: it names the setting and never shows a secret.
public struct ConfigurationError: Error, Sendable, CustomStringConvertible {
    /// The environment variable at fault, e.g. `MAX_IN_FLIGHT`.
    public var setting: String
    public var message: String

    public init(setting: String, message: String) {
        self.setting = setting
        self.message = message
    }

    public var description: String { "invalid configuration: \(setting): \(message)" }
}

/// The worker's settings, per the contract's configuration table. Every
/// setting comes from the environment; `account-worker run` flags override it.
public struct WorkerSettings: Sendable {
    /// Brokers, group, librdkafka properties and topics, as one value.
    public var kafka: KafkaConnectionSettings
    public var brokers: [String] {
        get { kafka.brokers }
        set { kafka.brokers = newValue }
    }
    public var groupID: String {
        get { kafka.groupID }
        set { kafka.groupID = newValue }
    }
    /// librdkafka properties from `KAFKA_CONFIG_<NAME>` (values may be secrets).
    public var kafkaProperties: [String: String] {
        get { kafka.properties }
        set { kafka.properties = newValue }
    }
    public var commandTopic: String {
        get { kafka.commandTopic }
        set { kafka.commandTopic = newValue }
    }
    public var resultTopic: String {
        get { kafka.resultTopic }
        set { kafka.resultTopic = newValue }
    }
    /// `nil` disables the dead-letter topic.
    public var dlqTopic: String? {
        get { kafka.dlqTopic }
        set { kafka.dlqTopic = newValue }
    }
    /// The compacted account status topic; `nil` disables it.
    public var statusTopic: String? {
        get { kafka.statusTopic }
        set { kafka.statusTopic = newValue }
    }
    /// useapi calls per second for the whole consumer group; 0 is no limit.
    /// Each replica takes the share of its assigned partitions.
    public var maxRequestsPerSecond: Double = 0
    public var useapiBaseURL = "https://api.useapi.net"
    /// The useapi token (a secret).
    public var useapiToken: String
    public var maxInFlight = 8
    public var maxAttempts = 5
    public var breakerThreshold = 10
    public var requestTimeout: Duration = .seconds(30)
    public var shutdownTimeout: Duration = .seconds(30)
    public var maxCommandBytes = 65_536
    /// 0 disables the HTTP endpoints.
    public var httpPort = 8080
    public var logLevel = "info"
    public var logFormat = "json"
    public var workerID: String
    /// Commands held in memory at most before fetching pauses.
    public var maxBufferedCommands = 256
    /// Retry backoff: the first ceiling, and the cap of every wait.
    public var retryBaseDelay: Duration = .milliseconds(500)
    public var retryMaxDelay: Duration = .seconds(60)
    /// The longest wait a `Retry-After` hint gets: the contract's 60 s (no
    /// environment variable; tests lower it to see a capped wait end).
    public var retryAfterCap: Duration = RetryPolicy.contractRetryAfterCap
    /// Not ready when no result could be published for this long (no
    /// environment variable; tests lower it).
    public var publishStallThreshold: Duration = .seconds(30)
    public var commitInterval: Duration = .seconds(1)
    /// How often consumer lag is sampled into metrics.
    public var lagInterval: Duration = .seconds(5)

    public init(brokers: [String], useapiToken: String, workerID: String) {
        self.kafka = KafkaConnectionSettings(brokers: brokers)
        self.useapiToken = useapiToken
        self.workerID = workerID
    }

    static let logLevels = ["trace", "debug", "info", "notice", "warning", "error", "critical"]

    /// Reads the settings from environment variables.
    public static func parse(
        environment: [String: String],
        readFile: (String) throws -> String = WorkerSettings.readSecretFile
    ) throws(ConfigurationError) -> WorkerSettings {
        func value(_ name: String) -> String? {
            guard let raw = environment[name] else { return nil }
            let trimmed = raw.trimmingCharacters(in: .whitespacesAndNewlines)
            return trimmed.isEmpty ? nil : trimmed
        }
        func integer(_ name: String, _ range: ClosedRange<Int>, default fallback: Int) throws(ConfigurationError) -> Int {
            guard let text = value(name) else { return fallback }
            guard let number = Int(text), range.contains(number) else {
                throw ConfigurationError(
                    setting: name,
                    message: "must be an integer from \(range.lowerBound) to \(range.upperBound), got \"\(text.prefix(40))\""
                )
            }
            return number
        }
        let kafka = try KafkaConnectionSettings.parse(environment: environment, readFile: readFile)

        let token: String
        switch (value("USEAPI_TOKEN"), value("USEAPI_TOKEN_FILE")) {
        case (nil, nil):
            throw ConfigurationError(setting: "USEAPI_TOKEN", message: "is required (or USEAPI_TOKEN_FILE, a file holding it)")
        case (_?, _?):
            throw ConfigurationError(setting: "USEAPI_TOKEN_FILE", message: "set either USEAPI_TOKEN or USEAPI_TOKEN_FILE, not both")
        case (let direct?, nil):
            token = direct
        case (nil, let path?):
            let contents: String
            do {
                contents = try readFile(path)
            } catch {
                throw ConfigurationError(setting: "USEAPI_TOKEN_FILE", message: "cannot read \(path)")
            }
            token = contents.trimmingCharacters(in: .whitespacesAndNewlines)
            guard !token.isEmpty else { throw ConfigurationError(setting: "USEAPI_TOKEN_FILE", message: "\(path) is empty") }
        }
        guard !token.contains(where: { $0.isNewline || $0.asciiValue.map { $0 < 0x20 || $0 == 0x7F } ?? false }) else {
            throw ConfigurationError(
                setting: value("USEAPI_TOKEN_FILE") == nil ? "USEAPI_TOKEN" : "USEAPI_TOKEN_FILE",
                message: "contains control characters"
            )
        }

        let workerID = value("WORKER_ID") ?? ProcessInfo.processInfo.hostName
        var settings = WorkerSettings(brokers: kafka.brokers, useapiToken: token, workerID: workerID)
        settings.kafka = kafka

        if let base = value("USEAPI_BASE_URL") {
            guard let url = URL(string: base), let scheme = url.scheme?.lowercased(), ["http", "https"].contains(scheme),
                url.host?.isEmpty == false, url.query == nil
            else {
                throw ConfigurationError(setting: "USEAPI_BASE_URL", message: "must be an http(s) URL such as https://api.useapi.net")
            }
            settings.useapiBaseURL = base
        }
        settings.maxInFlight = try integer("MAX_IN_FLIGHT", 1...1024, default: settings.maxInFlight)
        settings.maxAttempts = try integer("MAX_ATTEMPTS", 1...100, default: settings.maxAttempts)
        settings.breakerThreshold = try integer("BREAKER_THRESHOLD", 1...10_000, default: settings.breakerThreshold)
        settings.requestTimeout = .milliseconds(try integer("REQUEST_TIMEOUT_MS", 1...3_600_000, default: 30_000))
        settings.shutdownTimeout = .milliseconds(try integer("SHUTDOWN_TIMEOUT_MS", 0...3_600_000, default: 30_000))
        settings.maxCommandBytes = try integer("MAX_COMMAND_BYTES", 1...16 << 20, default: settings.maxCommandBytes)
        settings.httpPort = try integer("HTTP_PORT", 0...65_535, default: settings.httpPort)
        if let text = value("MAX_REQUESTS_PER_SECOND") {
            // A plain decimal only: "1e400", "inf" and "nan" are not rates.
            guard text.utf8.count <= 12, text.allSatisfy({ $0.isASCII && ($0.isNumber || $0 == ".") }), let rate = Double(text),
                rate.isFinite, (0...100_000).contains(rate)
            else {
                throw ConfigurationError(
                    setting: "MAX_REQUESTS_PER_SECOND",
                    message: "must be a number from 0 (off) to 100000, got \"\(text.prefix(40))\""
                )
            }
            settings.maxRequestsPerSecond = rate
        }
        settings.maxBufferedCommands = try integer(
            "MAX_BUFFERED_COMMANDS",
            1...1_000_000,
            default: max(settings.maxBufferedCommands, settings.maxInFlight * 4)
        )
        settings.logLevel = value("LOG_LEVEL")?.lowercased() ?? settings.logLevel
        guard logLevels.contains(settings.logLevel) else {
            throw ConfigurationError(setting: "LOG_LEVEL", message: "must be one of \(logLevels.joined(separator: ", "))")
        }
        settings.logFormat = value("LOG_FORMAT")?.lowercased() ?? settings.logFormat
        guard ["json", "text"].contains(settings.logFormat) else {
            throw ConfigurationError(setting: "LOG_FORMAT", message: "must be json or text")
        }
        return settings
    }

    /// The longest file a secret is read from: a token or password, never more.
    public static let maxSecretFileBytes = 64 * 1024

    /// Reads a secret (`USEAPI_TOKEN_FILE`, `KAFKA_CONFIG_<NAME>_FILE`, `send
    /// --password-file`) as UTF-8, refusing a file over ``maxSecretFileBytes``
    /// rather than reading whatever a wrong path points at.
    public static func readSecretFile(_ path: String) throws -> String {
        guard let handle = FileHandle(forReadingAtPath: path) else { throw SecretFileError.unreadable }
        defer { try? handle.close() }
        let data = try handle.read(upToCount: maxSecretFileBytes + 1) ?? Data()
        guard data.count <= maxSecretFileBytes else { throw SecretFileError.tooLarge }
        guard let text = String(data: data, encoding: .utf8) else { throw SecretFileError.notUTF8 }
        return text
    }

    enum SecretFileError: Error {
        case unreadable, tooLarge, notUTF8
    }

    /// `SECURITY_PROTOCOL` → `security.protocol`.
    static func kafkaPropertyName(_ suffix: Substring) -> String {
        suffix.lowercased().replacingOccurrences(of: "_", with: ".")
    }

    /// The environment variable behind a librdkafka property, for error lines.
    public static func environmentName(forKafkaProperty property: String) -> String {
        "KAFKA_CONFIG_" + property.uppercased().replacingOccurrences(of: ".", with: "_")
    }

    /// The effective configuration for the start-up log line: secrets redacted.
    public var redactedSummary: [String: String] {
        var summary: [String: String] = [
            "kafka.brokers": brokers.joined(separator: ","),
            "kafka.group_id": groupID,
            "topic.commands": commandTopic,
            "topic.results": resultTopic,
            "topic.dlq": dlqTopic ?? "(disabled)",
            "topic.status": statusTopic ?? "(disabled)",
            "max_requests_per_second": maxRequestsPerSecond == 0 ? "(off)" : String(maxRequestsPerSecond),
            "useapi.base_url": useapiBaseURL,
            "useapi.token": "<redacted>",
            "max_in_flight": String(maxInFlight),
            "max_attempts": String(maxAttempts),
            "breaker_threshold": String(breakerThreshold),
            "request_timeout_ms": String(requestTimeout.milliseconds),
            "shutdown_timeout_ms": String(shutdownTimeout.milliseconds),
            "max_command_bytes": String(maxCommandBytes),
            "max_buffered_commands": String(maxBufferedCommands),
            "http_port": String(httpPort),
            "worker_id": workerID,
        ]
        for name in kafkaProperties.keys {
            // Property names are safe to show; their values may be secrets.
            summary["kafka.config.\(name)"] = "<set>"
        }
        return summary
    }
}

/// The Kafka half of the settings, shared by `run` and the operator commands:
/// brokers, group, librdkafka pass-through properties and topics.
public struct KafkaConnectionSettings: Sendable {
    public var brokers: [String]
    public var groupID = "runway-account-worker"
    /// From `KAFKA_CONFIG_<NAME>`; values may be secrets.
    public var properties: [String: String] = [:]
    public var commandTopic = "runway.accounts.commands"
    public var resultTopic = "runway.accounts.results"
    public var dlqTopic: String? = "runway.accounts.dlq"
    public var statusTopic: String? = "runway.accounts.status"

    /// Reads `KAFKA_BROKERS`, `KAFKA_GROUP_ID`, the topics and every
    /// `KAFKA_CONFIG_<NAME>` (or `KAFKA_CONFIG_<NAME>_FILE`, whose file holds
    /// the value, for secrets such as `sasl.password`). Properties the
    /// contract's guarantees rest on cannot be set.
    public static func parse(
        environment: [String: String],
        readFile: (String) throws -> String = WorkerSettings.readSecretFile
    ) throws(ConfigurationError) -> KafkaConnectionSettings {
        func topic(_ name: String, default fallback: String) throws(ConfigurationError) -> String {
            guard let text = environment[name] else { return fallback }
            let trimmed = text.trimmingCharacters(in: .whitespaces)
            guard !trimmed.isEmpty else { throw ConfigurationError(setting: name, message: "must not be empty") }
            guard trimmed.count <= 249, trimmed.allSatisfy({ $0.isASCII && ($0.isLetter || $0.isNumber || "._-".contains($0)) }) else {
                throw ConfigurationError(setting: name, message: "is not a valid Kafka topic name")
            }
            return trimmed
        }
        let brokerList = environment["KAFKA_BROKERS"]?.trimmingCharacters(in: .whitespacesAndNewlines) ?? ""
        guard !brokerList.isEmpty else {
            throw ConfigurationError(setting: "KAFKA_BROKERS", message: "is required (bootstrap servers, e.g. kafka-1:9092,kafka-2:9092)")
        }
        let brokers = brokerList.split(separator: ",").map { $0.trimmingCharacters(in: .whitespaces) }.filter { !$0.isEmpty }
        guard !brokers.isEmpty else { throw ConfigurationError(setting: "KAFKA_BROKERS", message: "lists no broker") }

        var settings = KafkaConnectionSettings(brokers: brokers)
        if let group = environment["KAFKA_GROUP_ID"]?.trimmingCharacters(in: .whitespaces), !group.isEmpty {
            settings.groupID = group
        }
        settings.commandTopic = try topic("COMMAND_TOPIC", default: settings.commandTopic)
        settings.resultTopic = try topic("RESULT_TOPIC", default: settings.resultTopic)
        if let dlq = environment["DLQ_TOPIC"], dlq.trimmingCharacters(in: .whitespaces).isEmpty {
            settings.dlqTopic = nil
        } else {
            settings.dlqTopic = try topic("DLQ_TOPIC", default: "runway.accounts.dlq")
        }
        if let status = environment["STATUS_TOPIC"], status.trimmingCharacters(in: .whitespaces).isEmpty {
            settings.statusTopic = nil
        } else {
            settings.statusTopic = try topic("STATUS_TOPIC", default: "runway.accounts.status")
        }
        for (name, rawValue) in environment.sorted(by: { $0.key < $1.key }) where name.hasPrefix("KAFKA_CONFIG_") {
            var suffix = name.dropFirst("KAFKA_CONFIG_".count)
            var value = rawValue
            if suffix.hasSuffix("_FILE") {
                suffix = suffix.dropLast("_FILE".count)
                let path = rawValue.trimmingCharacters(in: .whitespacesAndNewlines)
                do {
                    value = try readFile(path).trimmingCharacters(in: .whitespacesAndNewlines)
                } catch {
                    throw ConfigurationError(setting: name, message: "cannot read \(path)")
                }
            }
            guard !suffix.isEmpty else { throw ConfigurationError(setting: name, message: "names no property") }
            let property = WorkerSettings.kafkaPropertyName(suffix)
            if Self.fixedProperties.contains(property) {
                throw ConfigurationError(
                    setting: name,
                    message: "\(property) cannot be changed: the worker's delivery guarantees rest on its value"
                )
            }
            if settings.properties[property] != nil {
                throw ConfigurationError(setting: name, message: "\(property) is set twice (directly and from a file)")
            }
            settings.properties[property] = value
        }
        return settings
    }

    /// Properties the contract's guarantees rest on: explicit commits after
    /// acknowledged results (`enable.auto.commit`, `enable.auto.offset.store`),
    /// `acks=all` with the idempotent producer, and the isolation level.
    public static let fixedProperties: Set<String> = [
        "enable.auto.commit", "enable.auto.offset.store", "acks", "request.required.acks", "enable.idempotence", "isolation.level",
    ]

    /// librdkafka properties only a consumer reads (librdkafka warns when a
    /// producer is given one, and the other way round).
    static let consumerOnlyProperties: Set<String> = [
        "group.id", "group.instance.id", "partition.assignment.strategy", "session.timeout.ms", "heartbeat.interval.ms",
        "group.protocol.type", "coordinator.query.interval.ms", "max.poll.interval.ms", "auto.commit.interval.ms",
        "queued.min.messages", "queued.max.messages.kbytes", "fetch.wait.max.ms", "fetch.message.max.bytes",
        "max.partition.fetch.bytes", "fetch.max.bytes", "fetch.min.bytes", "fetch.error.backoff.ms", "fetch.queue.backoff.ms",
        "offset.store.method", "consume.callback.max.messages", "enable.partition.eof", "check.crcs", "auto.offset.reset",
        "rebalance_cb", "offset_commit_cb",
    ]

    /// librdkafka properties only a producer reads.
    static let producerOnlyProperties: Set<String> = [
        "transactional.id", "transaction.timeout.ms", "enable.gapless.guarantee", "queue.buffering.max.messages",
        "queue.buffering.max.kbytes", "queue.buffering.max.ms", "linger.ms", "message.send.max.retries", "retries",
        "retry.backoff.ms", "retry.backoff.max.ms", "queue.buffering.backpressure.threshold", "compression.codec",
        "compression.type", "batch.num.messages", "batch.size", "delivery.report.only.error", "request.timeout.ms",
        "message.timeout.ms", "delivery.timeout.ms", "partitioner", "compression.level", "sticky.partitioning.linger.ms",
    ]

    /// The properties a consumer is given: all but the producer-only ones.
    public var consumerProperties: [String: String] {
        properties.filter { !Self.producerOnlyProperties.contains($0.key) }
    }

    /// The properties a producer is given: all but the consumer-only ones.
    public var producerProperties: [String: String] {
        properties.filter { !Self.consumerOnlyProperties.contains($0.key) }
    }

    /// A client configuration for these brokers and properties.
    public var client: KafkaClientConfiguration {
        var client = KafkaClientConfiguration(bootstrapServers: brokers)
        client.properties = properties
        return client
    }
}
