import DequeModule
import Kafka

/// Per partition, which offsets are safe to commit when commands complete
/// out of order: the commit offset never passes a command whose result has
/// not been acknowledged by the brokers.
public struct OffsetTracker: Sendable {
    private struct PartitionState: Sendable {
        /// Offsets in consumption order (increasing), with whether they are done.
        var inFlight = Deque<(offset: Int64, done: Bool)>()
        /// The offset after the highest one seen.
        var nextOffset: Int64?
        /// The last offset handed out for committing.
        var committed: Int64?
    }

    private var partitions: [KafkaTopicPartition: PartitionState] = [:]

    public init() {}

    /// Registers a consumed offset. Offsets of one partition must arrive in
    /// increasing order (as the consumer delivers them).
    public mutating func track(_ partition: KafkaTopicPartition, offset: Int64) {
        var state = partitions[partition, default: PartitionState()]
        if let last = state.inFlight.last?.offset, offset <= last {
            // A redelivery after a seek or rebalance: the earlier entry stands.
            partitions[partition] = state
            return
        }
        state.inFlight.append((offset, false))
        state.nextOffset = offset + 1
        partitions[partition] = state
    }

    /// Marks an offset's command as finished (its result acknowledged).
    public mutating func complete(_ partition: KafkaTopicPartition, offset: Int64) {
        guard var state = partitions[partition] else { return }
        // Offsets are increasing, so find it by binary search.
        var low = state.inFlight.startIndex
        var high = state.inFlight.endIndex
        while low < high {
            let middle = (low + high) / 2
            if state.inFlight[middle].offset < offset { low = middle + 1 } else { high = middle }
        }
        if low < state.inFlight.endIndex, state.inFlight[low].offset == offset {
            state.inFlight[low].done = true
        }
        while let first = state.inFlight.first, first.done {
            state.inFlight.removeFirst()
        }
        partitions[partition] = state
    }

    /// The offset to commit for a partition: the oldest unfinished offset,
    /// or just past the newest when all are done. Nil when nothing was seen.
    public func committableOffset(_ partition: KafkaTopicPartition) -> Int64? {
        guard let state = partitions[partition] else { return nil }
        return state.inFlight.first?.offset ?? state.nextOffset
    }

    /// Offsets that moved since they were last taken; marks them as taken.
    /// With `force`, every known offset is returned even if unchanged (for the
    /// synchronous commits of revocation and shutdown, after an async one may have failed).
    public mutating func takeCommits(for only: Set<KafkaTopicPartition>? = nil, force: Bool = false) -> [KafkaTopicPartition: Int64] {
        var commits: [KafkaTopicPartition: Int64] = [:]
        for (partition, state) in partitions where only?.contains(partition) ?? true {
            guard let offset = state.inFlight.first?.offset ?? state.nextOffset, force || offset != state.committed else { continue }
            commits[partition] = offset
            partitions[partition]?.committed = offset
        }
        return commits
    }

    /// Per partition, the highest tracked offset that is finished or not
    /// listed in `unstarted` (so started, when `unstarted` holds every
    /// command not yet started). A commit can only pass the unstarted
    /// offsets below it once they finish: the drain runs them.
    public func highestStartedOffsets(unstarted: [KafkaTopicPartition: Set<Int64>]) -> [KafkaTopicPartition: Int64] {
        var highest: [KafkaTopicPartition: Int64] = [:]
        for (partition, state) in partitions {
            let waiting = unstarted[partition] ?? []
            if let entry = state.inFlight.last(where: { $0.done || !waiting.contains($0.offset) }) {
                highest[partition] = entry.offset
            }
        }
        return highest
    }

    /// Unfinished commands in a partition.
    public func inFlightCount(_ partition: KafkaTopicPartition) -> Int {
        partitions[partition]?.inFlight.count(where: { !$0.done }) ?? 0
    }

    /// Forgets partitions (after they were revoked).
    public mutating func remove(_ removed: some Sequence<KafkaTopicPartition>) {
        for partition in removed { partitions[partition] = nil }
    }
}
