internal import CRdKafka
import Dispatch
import Logging

/// Owns an `rd_kafka_mock_cluster_t` and its parent instance.
final class RDKafkaMockCluster: @unchecked Sendable {
    private let handle: RDKafkaHandle
    private let cluster: OpaquePointer
    let bootstrapServers: String
    let brokerIDs: [Int32]

    init(brokers: Int, logger: Logger) throws(KafkaError) {
        // The parent instance only hosts the cluster; it never connects anywhere.
        handle = try RDKafkaHandle(type: RD_KAFKA_PRODUCER, properties: ["log.connection.close": "false"], logger: logger)
        let count = Int32(clamping: max(1, brokers))
        guard let cluster = rd_kafka_mock_cluster_new(handle.pointer, count) else {
            throw KafkaError(code: .fail, message: "cannot create mock cluster")
        }
        self.cluster = cluster
        self.bootstrapServers = String(cString: rd_kafka_mock_cluster_bootstraps(cluster))
        self.brokerIDs = Array(1...count)
    }

    deinit {
        // Joins the mock cluster's thread: off the caller's thread, and
        // before the parent handle's destroy (same serial queue).
        let cluster = HandOff(self.cluster)
        RDKafkaHandle.destroyQueue.async { rd_kafka_mock_cluster_destroy(cluster.value) }
    }

    func createTopic(_ name: String, partitions: Int, replicationFactor: Int) throws(KafkaError) {
        let err = rd_kafka_mock_topic_create(cluster, name, Int32(clamping: partitions), Int32(clamping: replicationFactor))
        guard err == RD_KAFKA_RESP_ERR_NO_ERROR else { throw KafkaError(err, message: "create topic \(name)") }
    }

    func setBroker(_ brokerID: Int32, up: Bool) throws(KafkaError) {
        let err = up ? rd_kafka_mock_broker_set_up(cluster, brokerID) : rd_kafka_mock_broker_set_down(cluster, brokerID)
        guard err == RD_KAFKA_RESP_ERR_NO_ERROR else { throw KafkaError(err, message: "broker \(brokerID) \(up ? "up" : "down")") }
    }

    func pushRequestErrors(_ apiKey: Int16, _ codes: [Int32]) {
        let errors = codes.map { rd_kafka_resp_err_t(rawValue: $0) }
        errors.withUnsafeBufferPointer { buffer in
            rd_kafka_mock_push_request_errors_array(cluster, apiKey, buffer.count, buffer.baseAddress)
        }
    }

    func setPartitionLeader(topic: String, partition: Int32, brokerID: Int32) throws(KafkaError) {
        let err = rd_kafka_mock_partition_set_leader(cluster, topic, partition, brokerID)
        guard err == RD_KAFKA_RESP_ERR_NO_ERROR else { throw KafkaError(err, message: "set leader") }
    }

    func setGroupCoordinator(group: String, brokerID: Int32) throws(KafkaError) {
        let err = rd_kafka_mock_coordinator_set(cluster, "group", group, brokerID)
        guard err == RD_KAFKA_RESP_ERR_NO_ERROR else { throw KafkaError(err, message: "set coordinator") }
    }
}
