/// How a consumer group divides partitions among its members.
public enum KafkaAssignmentStrategy: String, Sendable {
    /// Incremental rebalancing: only moved partitions are revoked.
    case cooperativeSticky = "cooperative-sticky"
    /// Eager: every rebalance revokes all partitions first.
    case range = "range"
    /// Eager, round-robin placement.
    case roundRobin = "roundrobin"
}

/// Where a consumer starts in a partition that has no committed offset.
public enum KafkaAutoOffsetReset: String, Sendable {
    case earliest
    case latest
    case error
}

/// Settings shared by consumers and producers.
///
/// Typed settings cover the common cases; `properties` passes any librdkafka
/// property through unchanged and wins over a typed setting.
public struct KafkaClientConfiguration: Sendable {
    /// Bootstrap servers, e.g. `["broker-1:9092", "broker-2:9092"]`.
    public var bootstrapServers: [String]
    /// `client.id`, visible in broker logs and metrics.
    public var clientID: String = "account-worker"
    /// Any librdkafka property (`security.protocol`, `sasl.password`, ...).
    /// Values are never logged.
    public var properties: [String: String] = [:]

    public init(bootstrapServers: [String]) {
        self.bootstrapServers = bootstrapServers
    }

    var rdKafkaProperties: [String: String] {
        [
            "bootstrap.servers": bootstrapServers.joined(separator: ","),
            "client.id": clientID,
        ]
    }
}

/// Consumer settings. Offsets are never stored or committed automatically:
/// the caller commits explicit offsets.
public struct KafkaConsumerConfiguration: Sendable {
    public var client: KafkaClientConfiguration
    public var groupID: String
    public var topics: [String]
    /// Eager (`range`) by default: librdkafka 2.0.2 (Debian's) aborts the
    /// process in `rd_kafka_sticky_assignor_state_destroy` ("Assertion
    /// `assignor_state' failed") when some cooperative-sticky consumers are
    /// destroyed, as a `make test` run hit, and drops a whole cooperative
    /// assignment when a commit races a generation bump (librdkafka#4059).
    public var assignmentStrategy: KafkaAssignmentStrategy = .range
    public var autoOffsetReset: KafkaAutoOffsetReset = .earliest
    public var sessionTimeout: Duration = .seconds(45)
    public var heartbeatInterval: Duration = .seconds(3)
    /// How long the poll thread waits for a record in one call.
    public var pollTimeout: Duration = .milliseconds(100)
    /// Events buffered in Swift before the poll thread stops polling.
    public var eventBufferSize: Int = 1024
    /// At most this many records delivered and not yet given back with
    /// ``KafkaConsumer/returnCredits(_:)``: when none is left, the poll thread
    /// stops handing out records until one comes back; if none comes back
    /// within ``creditPauseDelay`` it pauses fetching (and keeps serving the
    /// group) until half of them are back. nil: no limit.
    public var messageCredits: Int?
    /// How long the poll thread waits, out of credits, before it pauses
    /// fetching. Pausing purges librdkafka's prefetch queue and costs a
    /// refetch on resume (about a second with librdkafka 2.0.2, whose broker
    /// thread notices a resume only on its next wake-up), so a buffer that
    /// drains continuously never pauses; one stuck for longer does, so that
    /// the poll loop keeps serving rebalances within `max.poll.interval.ms`.
    public var creditPauseDelay: Duration = .seconds(1)
    /// Deliver ``KafkaConsumerEvent/endOfPartition(_:offset:)`` events, for
    /// tools that read a topic up to its end and stop.
    public var reportEndOfPartition = false

    public init(client: KafkaClientConfiguration, groupID: String, topics: [String]) {
        self.client = client
        self.groupID = groupID
        self.topics = topics
    }

    var rdKafkaProperties: [String: String] {
        var properties = client.rdKafkaProperties
        properties["group.id"] = groupID
        properties["enable.auto.commit"] = "false"
        properties["enable.auto.offset.store"] = "false"
        properties["partition.assignment.strategy"] = assignmentStrategy.rawValue
        properties["auto.offset.reset"] = autoOffsetReset.rawValue
        properties["session.timeout.ms"] = String(sessionTimeout.milliseconds)
        properties["heartbeat.interval.ms"] = String(heartbeatInterval.milliseconds)
        properties["enable.partition.eof"] = reportEndOfPartition ? "true" : "false"
        properties.merge(client.properties) { _, passThrough in passThrough }
        return properties
    }
}

/// Producer settings. Defaults favour durability: `acks=all` and the
/// idempotent producer, so retried sends never duplicate or reorder records.
public struct KafkaProducerConfiguration: Sendable {
    public var client: KafkaClientConfiguration
    public var acks: String = "all"
    public var idempotence: Bool = true
    /// How long a record may wait for delivery, retries included.
    public var messageTimeout: Duration = .seconds(60)
    public var linger: Duration = .milliseconds(5)

    public init(client: KafkaClientConfiguration) {
        self.client = client
    }

    var rdKafkaProperties: [String: String] {
        var properties = client.rdKafkaProperties
        properties["acks"] = acks
        properties["enable.idempotence"] = idempotence ? "true" : "false"
        properties["message.timeout.ms"] = String(messageTimeout.milliseconds)
        properties["linger.ms"] = String(linger.milliseconds)
        properties.merge(client.properties) { _, passThrough in passThrough }
        return properties
    }
}

extension Duration {
    /// Whole milliseconds, saturating at `Int64.max`/`Int64.min` instead of trapping.
    var milliseconds: Int64 {
        let (seconds, attoseconds) = components
        let (whole, overflow) = seconds.multipliedReportingOverflow(by: 1_000)
        if overflow { return seconds < 0 ? .min : .max }
        let (sum, sumOverflow) = whole.addingReportingOverflow(attoseconds / 1_000_000_000_000_000)
        return sumOverflow ? (seconds < 0 ? .min : .max) : sum
    }
}
