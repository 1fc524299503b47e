internal import CRdKafka
import Dispatch
import Foundation
import Logging

/// A librdkafka consumer used only with `rd_kafka_assign` (like kcat): it
/// reads chosen partitions from chosen offsets, never subscribes, never joins
/// a group and never commits. Every blocking librdkafka call runs on its own
/// serial queue, never on Swift's cooperative pool.
final class RDKafkaReaderCore: @unchecked Sendable {
    let handle: RDKafkaHandle
    private let queue = DispatchQueue(label: "kafka.reader")
    private var closed = false  // queue only

    init(client: KafkaClientConfiguration, logger: Logger) throws(KafkaError) {
        var properties = client.rdKafkaProperties
        // librdkafka's assign() needs a group id; this one is never joined
        // (no subscribe) and nothing is committed under it.
        properties["group.id"] = "account-worker-reader-\(UUID().uuidString.prefix(8))"
        properties["enable.auto.commit"] = "false"
        properties["enable.auto.offset.store"] = "false"
        properties["enable.partition.eof"] = "true"
        properties["auto.offset.reset"] = "earliest"
        properties.merge(client.properties) { _, passThrough in passThrough }
        handle = try RDKafkaHandle(type: RD_KAFKA_CONSUMER, properties: properties, logger: logger)
        rd_kafka_poll_set_consumer(handle.pointer)
    }

    private func onQueue<T: Sendable>(_ body: @escaping @Sendable (OpaquePointer) -> Result<T, KafkaError>) async throws(KafkaError) -> T {
        let result: Result<T, KafkaError> = await withCheckedContinuation { continuation in
            queue.async { [self] in
                guard !closed else {
                    continuation.resume(returning: .failure(.closed("reader")))
                    return
                }
                continuation.resume(returning: body(handle.pointer))
            }
        }
        return try result.get()
    }

    func partitions(of topic: String, timeoutMs: Int32) async throws(KafkaError) -> [Int32] {
        try await onQueue { rk in
            guard let rkt = rd_kafka_topic_new(rk, topic, nil) else {
                return .failure(KafkaError(rd_kafka_last_error(), message: "cannot use topic \(topic)"))
            }
            defer { rd_kafka_topic_destroy(rkt) }
            var metadata: UnsafePointer<rd_kafka_metadata>?
            let err = rd_kafka_metadata(rk, 0, rkt, &metadata, timeoutMs)
            guard err == RD_KAFKA_RESP_ERR_NO_ERROR, let metadata else {
                return .failure(KafkaError(err, message: "metadata of \(topic)"))
            }
            defer { rd_kafka_metadata_destroy(metadata) }
            let topics = UnsafeBufferPointer(start: metadata.pointee.topics, count: Int(metadata.pointee.topic_cnt))
            guard let entry = topics.first(where: { String(cString: $0.topic) == topic }) else {
                return .failure(KafkaError(RD_KAFKA_RESP_ERR_UNKNOWN_TOPIC_OR_PART, message: "topic \(topic) does not exist"))
            }
            guard entry.err == RD_KAFKA_RESP_ERR_NO_ERROR else {
                return .failure(KafkaError(entry.err, message: "topic \(topic)"))
            }
            let partitions = UnsafeBufferPointer(start: entry.partitions, count: Int(entry.partition_cnt)).map(\.id)
            guard !partitions.isEmpty else {
                return .failure(KafkaError(RD_KAFKA_RESP_ERR_UNKNOWN_TOPIC_OR_PART, message: "topic \(topic) does not exist"))
            }
            return .success(partitions.sorted())
        }
    }

    func watermarks(_ partition: KafkaTopicPartition, timeoutMs: Int32) async throws(KafkaError) -> (low: Int64, high: Int64) {
        try await onQueue { rk in
            var low: Int64 = -1
            var high: Int64 = -1
            let err = rd_kafka_query_watermark_offsets(rk, partition.topic, partition.partition, &low, &high, timeoutMs)
            guard err == RD_KAFKA_RESP_ERR_NO_ERROR else { return .failure(KafkaError(err, message: "watermarks of \(partition)")) }
            return .success((low, high))
        }
    }

    /// Per partition, the earliest offset whose timestamp is at or after
    /// `timestampMs`, or nil when the broker knows none.
    func offsets(at timestampMs: Int64, _ partitions: [KafkaTopicPartition], timeoutMs: Int32) async throws(KafkaError)
        -> [KafkaTopicPartition: Int64?]
    {
        try await onQueue { rk in
            withTopicPartitionList(partitions.map { ($0, offset: timestampMs) }) { list in
                let err = rd_kafka_offsets_for_times(rk, list, timeoutMs)
                guard err == RD_KAFKA_RESP_ERR_NO_ERROR else { return .failure(KafkaError(err, message: "offsets for times")) }
                var result: [KafkaTopicPartition: Int64?] = [:]
                for (partition, offset, error) in topicPartitions(list) {
                    guard error == RD_KAFKA_RESP_ERR_NO_ERROR else {
                        return .failure(KafkaError(error, message: "offsets for times of \(partition)"))
                    }
                    result[partition] = offset >= 0 ? offset : nil
                }
                return .success(result)
            }
        }
    }

    /// Replaces the assignment: `nil` offsets start at the end of a partition.
    func assign(_ starts: [KafkaTopicPartition: Int64?]) async throws(KafkaError) {
        try await onQueue { rk in
            let entries = starts.map { ($0.key, offset: $0.value ?? Int64(RD_KAFKA_OFFSET_END)) }
            let err = withTopicPartitionList(entries) { rd_kafka_assign(rk, $0) }
            return err == RD_KAFKA_RESP_ERR_NO_ERROR ? .success(()) : .failure(KafkaError(err, message: "assign"))
        }
    }

    func poll(timeoutMs: Int32) async throws(KafkaError) -> KafkaReaderEvent? {
        try await onQueue { rk in
            guard let pointer = rd_kafka_consumer_poll(rk, timeoutMs) else { return .success(nil) }
            defer { rd_kafka_message_destroy(pointer) }
            let raw = pointer.pointee
            switch raw.err {
            case RD_KAFKA_RESP_ERR_NO_ERROR:
                return .success(.message(RDKafkaConsumerCore.makeMessage(pointer)))
            case RD_KAFKA_RESP_ERR__PARTITION_EOF:
                let partition = KafkaTopicPartition(topic: String(cString: rd_kafka_topic_name(raw.rkt)), partition: raw.partition)
                return .success(.endOfPartition(partition, offset: raw.offset))
            default:
                return .success(.error(KafkaError(raw.err, message: "reading")))
            }
        }
    }

    func close() async {
        await withCheckedContinuation { (continuation: CheckedContinuation<Void, Never>) in
            queue.async { [self] in
                if !closed {
                    closed = true
                    rd_kafka_assign(handle.pointer, nil)
                    rd_kafka_consumer_close(handle.pointer)
                }
                continuation.resume()
            }
        }
    }
}
