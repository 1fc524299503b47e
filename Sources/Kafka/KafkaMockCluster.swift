import CRdKafka
import Dispatch
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

/// A Kafka protocol error code, for injecting broker errors.
public struct KafkaErrorCode: RawRepresentable, Hashable, Sendable {
    public var rawValue: Int32
    public init(rawValue: Int32) { self.rawValue = rawValue }

    init(_ err: rd_kafka_resp_err_t) { self.rawValue = err.rawValue }

    public static let notLeaderForPartition = KafkaErrorCode(RD_KAFKA_RESP_ERR_NOT_LEADER_FOR_PARTITION)
    public static let requestTimedOut = KafkaErrorCode(RD_KAFKA_RESP_ERR_REQUEST_TIMED_OUT)
    public static let notEnoughReplicas = KafkaErrorCode(RD_KAFKA_RESP_ERR_NOT_ENOUGH_REPLICAS)
    public static let messageSizeTooLarge = KafkaErrorCode(RD_KAFKA_RESP_ERR_MSG_SIZE_TOO_LARGE)
    public static let topicAuthorizationFailed = KafkaErrorCode(RD_KAFKA_RESP_ERR_TOPIC_AUTHORIZATION_FAILED)
    public static let invalidRecord = KafkaErrorCode(RD_KAFKA_RESP_ERR_INVALID_RECORD)
    public static let rebalanceInProgress = KafkaErrorCode(RD_KAFKA_RESP_ERR_REBALANCE_IN_PROGRESS)
    public static let coordinatorNotAvailable = KafkaErrorCode(RD_KAFKA_RESP_ERR_COORDINATOR_NOT_AVAILABLE)
}

/// librdkafka's built-in mock cluster: real Kafka protocol servers on
/// loopback TCP ports, for tests and demos. Any Kafka client, `kcat`
/// included, can connect to ``bootstrapServers``. Destroyed in `deinit`.
public final class KafkaMockCluster: @unchecked Sendable {
    private let handle: RDKafkaHandle
    private let cluster: OpaquePointer
    /// Comma-separated `host:port` list of the mock brokers.
    public let bootstrapServers: String
    /// The brokers' ids: 1 through the broker count.
    public let brokerIDs: [Int32]

    /// Starts `brokers` mock brokers on ephemeral loopback ports.
    public init(brokers: Int = 1, logger: Logger = Logger(label: "kafka.mock")) throws(KafkaError) {
        // The parent instance only hosts the cluster; it never connects anywhere.
        handle = try RDKafkaHandle(type: RD_KAFKA_PRODUCER, properties: ["log.connection.close": "false"], logger: logger)
        guard let cluster = rd_kafka_mock_cluster_new(handle.pointer, Int32(brokers)) else {
            throw KafkaError(code: RD_KAFKA_RESP_ERR__FAIL.rawValue, name: "_FAIL", message: "cannot create mock cluster")
        }
        self.cluster = cluster
        self.bootstrapServers = String(cString: rd_kafka_mock_cluster_bootstraps(cluster))
        self.brokerIDs = (1...Int32(max(1, brokers))).map { $0 }
    }

    deinit {
        // Joins the mock cluster's thread: off the caller's thread, and
        // before the parent handle's destroy (same serial queue).
        let cluster = HandOff(self.cluster)
        RDKafkaHandle.destroyQueue.async { rd_kafka_mock_cluster_destroy(cluster.value) }
    }

    /// Creates a topic; creating an existing topic fails.
    public func createTopic(_ name: String, partitions: Int, replicationFactor: Int = 1) throws(KafkaError) {
        let err = rd_kafka_mock_topic_create(cluster, name, Int32(partitions), Int32(replicationFactor))
        guard err == RD_KAFKA_RESP_ERR_NO_ERROR else { throw KafkaError(err, message: "create topic \(name)") }
    }

    /// Closes the broker's connections and refuses new ones (no leader change).
    public func setBrokerDown(_ brokerID: Int32) throws(KafkaError) {
        let err = rd_kafka_mock_broker_set_down(cluster, brokerID)
        guard err == RD_KAFKA_RESP_ERR_NO_ERROR else { throw KafkaError(err, message: "broker \(brokerID) down") }
    }

    /// Lets the broker accept connections again.
    public func setBrokerUp(_ brokerID: Int32) throws(KafkaError) {
        let err = rd_kafka_mock_broker_set_up(cluster, brokerID)
        guard err == RD_KAFKA_RESP_ERR_NO_ERROR else { throw KafkaError(err, message: "broker \(brokerID) up") }
    }

    /// Makes the next requests for `api` (on any broker) fail with `errors`, in order.
    public func pushRequestErrors(_ api: KafkaAPIKey, _ errors: [KafkaErrorCode]) {
        let codes = errors.map { rd_kafka_resp_err_t(rawValue: $0.rawValue) }
        codes.withUnsafeBufferPointer { buffer in
            rd_kafka_mock_push_request_errors_array(cluster, api.rawValue, buffer.count, buffer.baseAddress)
        }
    }

    /// Moves a partition's leadership.
    public func setPartitionLeader(topic: String, partition: Int32, brokerID: Int32) throws(KafkaError) {
        let err = rd_kafka_mock_partition_set_leader(cluster, topic, partition, brokerID)
        guard err == RD_KAFKA_RESP_ERR_NO_ERROR else { throw KafkaError(err, message: "set leader") }
    }

    /// Makes `brokerID` the coordinator of consumer group `group`.
    public func setGroupCoordinator(group: String, brokerID: Int32) throws(KafkaError) {
        let err = rd_kafka_mock_coordinator_set(cluster, "group", group, brokerID)
        guard err == RD_KAFKA_RESP_ERR_NO_ERROR else { throw KafkaError(err, message: "set coordinator") }
    }
}
