internal import CRdKafka
import Dispatch
import Foundation
import Synchronization

extension RDKafkaConsumerCore {
    /// Per assigned partition: the log-end offset asked of the partition's
    /// leader minus the group's committed offset (asked of the coordinator),
    /// the quantity `kafka-consumer-groups --describe` shows. A partition
    /// with no committed offset counts from the log start. Partitions whose
    /// offsets could not be learnt within `timeout` are absent.
    func committedLag(timeout: Duration) async -> [KafkaTopicPartition: Int64] {
        let assigned = state.withLock { $0.assignment }
        guard !assigned.isEmpty else { return [:] }
        // Cancellation answers at once (an empty result); the query already
        // on the lag queue finishes on its own and its answer is dropped.
        let waiter = Mutex<CheckedContinuation<[KafkaTopicPartition: Int64], Never>?>(nil)
        return await withTaskCancellationHandler {
            await withCheckedContinuation { continuation in
                waiter.withLock { $0 = continuation }
                if Task.isCancelled {
                    waiter.withLock { $0.take() }?.resume(returning: [:])
                    return
                }
                lagQueue.async { [self] in
                    let lags = state.withLock({ $0.phase }) == .closed ? [:] : queryLag(Array(assigned), timeout: timeout)
                    waiter.withLock { $0.take() }?.resume(returning: lags)
                }
            }
        } onCancel: {
            waiter.withLock { $0.take() }?.resume(returning: [:])
        }
    }

    /// Blocking: lag queue only.
    private func queryLag(_ partitions: [KafkaTopicPartition], timeout: Duration) -> [KafkaTopicPartition: Int64] {
        let rk = handle.pointer
        let deadline = ContinuousClock.now + timeout
        func remainingMilliseconds() -> Int32 {
            Int32(clamping: max(0, (deadline - ContinuousClock.now).milliseconds))
        }
        let entries = partitions.map { ($0, offset: Int64(RD_KAFKA_OFFSET_INVALID)) }
        let committed: [KafkaTopicPartition: Int64]? = withTopicPartitionList(entries) { list in
            guard rd_kafka_committed(rk, list, remainingMilliseconds()) == RD_KAFKA_RESP_ERR_NO_ERROR else { return nil }
            var offsets: [KafkaTopicPartition: Int64] = [:]
            for (partition, offset, error) in topicPartitions(list) where error == RD_KAFKA_RESP_ERR_NO_ERROR {
                offsets[partition] = offset
            }
            return offsets
        }
        guard let committed else { return [:] }
        var lags: [KafkaTopicPartition: Int64] = [:]
        for partition in partitions {
            guard let offset = committed[partition] else { continue }
            let budget = remainingMilliseconds()
            guard budget > 0 else { break }
            var low: Int64 = -1
            var high: Int64 = -1
            let err = rd_kafka_query_watermark_offsets(rk, partition.topic, partition.partition, &low, &high, budget)
            guard err == RD_KAFKA_RESP_ERR_NO_ERROR, high >= 0 else { continue }
            let start = offset >= 0 ? offset : max(low, 0)
            lags[partition] = max(0, high - start)
        }
        return lags
    }
}
