import Logging

/// A Kafka protocol API, by its request key (not in librdkafka's public headers).
public struct KafkaAPIKey: RawRepresentable, Hashable, Sendable {
    public var rawValue: Int16
    public init(rawValue: Int16) { self.rawValue = rawValue }

    public static let produce = KafkaAPIKey(rawValue: 0)
    public static let fetch = KafkaAPIKey(rawValue: 1)
    public static let listOffsets = KafkaAPIKey(rawValue: 2)
    public static let metadata = KafkaAPIKey(rawValue: 3)
    public static let offsetCommit = KafkaAPIKey(rawValue: 8)
    public static let offsetFetch = KafkaAPIKey(rawValue: 9)
    public static let findCoordinator = KafkaAPIKey(rawValue: 10)
    public static let joinGroup = KafkaAPIKey(rawValue: 11)
    public static let heartbeat = KafkaAPIKey(rawValue: 12)
    public static let leaveGroup = KafkaAPIKey(rawValue: 13)
    public static let syncGroup = KafkaAPIKey(rawValue: 14)
    public static let initProducerID = KafkaAPIKey(rawValue: 22)
}

/// librdkafka's built-in mock cluster: real Kafka protocol servers on
/// loopback TCP ports, for tests and demos. Any Kafka client, `kcat`
/// included, can connect to ``bootstrapServers``. Destroyed in `deinit`.
///
/// Unlike a real broker it auto-creates topics and refuses offset commits
/// during a rebalance.
public final class KafkaMockCluster: Sendable {
    private let core: RDKafkaMockCluster
    /// Comma-separated `host:port` list of the mock brokers.
    public var bootstrapServers: String { core.bootstrapServers }
    /// The brokers' ids: 1 through the broker count.
    public var brokerIDs: [Int32] { core.brokerIDs }

    /// Starts `brokers` mock brokers on ephemeral loopback ports.
    public init(brokers: Int = 1, logger: Logger = Logger(label: "kafka.mock")) throws(KafkaError) {
        core = try RDKafkaMockCluster(brokers: brokers, logger: logger)
    }

    /// Creates a topic; creating an existing topic fails.
    public func createTopic(_ name: String, partitions: Int, replicationFactor: Int = 1) throws(KafkaError) {
        try core.createTopic(name, partitions: partitions, replicationFactor: replicationFactor)
    }

    /// Closes the broker's connections and refuses new ones (no leader change).
    public func setBrokerDown(_ brokerID: Int32) throws(KafkaError) {
        try core.setBroker(brokerID, up: false)
    }

    /// Lets the broker accept connections again.
    public func setBrokerUp(_ brokerID: Int32) throws(KafkaError) {
        try core.setBroker(brokerID, up: true)
    }

    /// Makes the next requests for `api` (on any broker) fail with `errors`, in order.
    public func pushRequestErrors(_ api: KafkaAPIKey, _ errors: [KafkaError.Code]) {
        core.pushRequestErrors(api.rawValue, errors.map(\.rawValue))
    }

    /// Moves a partition's leadership.
    public func setPartitionLeader(topic: String, partition: Int32, brokerID: Int32) throws(KafkaError) {
        try core.setPartitionLeader(topic: topic, partition: partition, brokerID: brokerID)
    }

    /// Makes `brokerID` the coordinator of consumer group `group`.
    public func setGroupCoordinator(group: String, brokerID: Int32) throws(KafkaError) {
        try core.setGroupCoordinator(group: group, brokerID: brokerID)
    }
}
