internal import CRdKafka
import Dispatch

extension RDKafkaHandle {
    /// The number of partitions of `topic` from the brokers' metadata, or nil
    /// when it cannot be had within `timeout`. Blocks a dedicated queue, never
    /// the caller's thread.
    func partitionCount(of topic: String, timeout: Duration) async -> Int? {
        let milliseconds = Int32(clamping: timeout.milliseconds)
        return await withCheckedContinuation { continuation in
            metadataQueue.async { [self] in
                let rk = pointer
                guard let rkt = rd_kafka_topic_new(rk, topic, nil) else {
                    continuation.resume(returning: nil)
                    return
                }
                defer { rd_kafka_topic_destroy(rkt) }
                var metadata: UnsafePointer<rd_kafka_metadata>?
                let err = rd_kafka_metadata(rk, 0, rkt, &metadata, milliseconds)
                guard err == RD_KAFKA_RESP_ERR_NO_ERROR, let metadata else {
                    continuation.resume(returning: nil)
                    return
                }
                defer { rd_kafka_metadata_destroy(metadata) }
                let topics = UnsafeBufferPointer(start: metadata.pointee.topics, count: Int(metadata.pointee.topic_cnt))
                let count = topics.first { String(cString: $0.topic) == topic && $0.err == RD_KAFKA_RESP_ERR_NO_ERROR }
                    .map { Int($0.partition_cnt) }
                continuation.resume(returning: count.flatMap { $0 > 0 ? $0 : nil })
            }
        }
    }
}
