import Foundation
import Logging

/// What ``KafkaReader/next(timeout:)`` returns.
public enum KafkaReaderEvent: Sendable {
    case message(KafkaMessage)
    /// The reader caught up with the end of `partition`; `offset` is the next one.
    case endOfPartition(KafkaTopicPartition, offset: Int64)
    /// An error librdkafka reported while reading (often transient: it keeps retrying).
    case error(KafkaError)
}

/// The low and high watermarks of a partition: its first kept offset and
/// the offset the next record will get.
public struct KafkaWatermarks: Sendable, Hashable {
    public var low: Int64
    public var high: Int64
}

/// Reads partitions from chosen offsets, like kcat: partitions are assigned
/// directly, no consumer group is joined and nothing is committed, so it
/// needs only read access to the topics. For operator tools.
///
/// Every blocking librdkafka call runs on the reader's own queue, never on
/// Swift's cooperative pool.
public final class KafkaReader: Sendable {
    let core: RDKafkaReaderCore
    /// How long one metadata or offset request may take.
    public let requestTimeout: Duration

    public init(client: KafkaClientConfiguration, requestTimeout: Duration = .seconds(15), logger: Logger) throws(KafkaError) {
        self.core = try RDKafkaReaderCore(client: client, logger: logger)
        self.requestTimeout = requestTimeout
    }

    deinit {
        let core = self.core
        Task { await core.close() }
    }

    private var timeoutMs: Int32 { Int32(clamping: requestTimeout.milliseconds) }

    /// The partitions of `topic`, sorted; throws when the topic does not exist.
    public func partitions(of topic: String) async throws(KafkaError) -> [KafkaTopicPartition] {
        try await core.partitions(of: topic, timeoutMs: timeoutMs).map { KafkaTopicPartition(topic: topic, partition: $0) }
    }

    /// Asks the partition's leader for its watermarks.
    public func watermarks(_ partition: KafkaTopicPartition) async throws(KafkaError) -> KafkaWatermarks {
        let (low, high) = try await core.watermarks(partition, timeoutMs: timeoutMs)
        return KafkaWatermarks(low: low, high: high)
    }

    /// Per partition, the earliest offset whose record timestamp is at or
    /// after `time` (Kafka's ListOffsets by timestamp, librdkafka's
    /// offsets-for-times); nil when the broker knows no such record.
    public func offsets(at time: Date, for partitions: [KafkaTopicPartition]) async throws(KafkaError) -> [KafkaTopicPartition: Int64?] {
        guard !partitions.isEmpty else { return [:] }
        // Clamped before the conversion: Int64(_:) traps on a date past year
        // 292 million (or NaN), and a time before 1970 means "from the start".
        let milliseconds = (time.timeIntervalSince1970 * 1000).rounded(.down)
        let clamped = milliseconds.isNaN ? 0 : Int64(min(max(milliseconds, 0), 9.0e18))
        return try await core.offsets(at: clamped, partitions, timeoutMs: timeoutMs)
    }

    /// Replaces what the reader reads: each partition from its offset
    /// (nil: from its end, i.e. only new records).
    public func assign(_ starts: [KafkaTopicPartition: Int64?]) async throws(KafkaError) {
        try await core.assign(starts)
    }

    /// The next record or event, or nil when none came within `timeout`.
    public func next(timeout: Duration) async throws(KafkaError) -> KafkaReaderEvent? {
        try await core.poll(timeoutMs: Int32(clamping: timeout.milliseconds))
    }

    /// Reads each partition of `ranges` from its lower bound up to (not
    /// including) its upper bound, handing each record to `body`, then
    /// returns. A partition also ends where the reader reaches its end.
    /// Throws when no progress is made for `idleTimeout`.
    public func read(
        _ ranges: [KafkaTopicPartition: Range<Int64>],
        idleTimeout: Duration = .seconds(30),
        _ body: (KafkaMessage) throws -> Void
    ) async throws {
        var pending = ranges.filter { !$0.value.isEmpty }
        guard !pending.isEmpty else { return }
        try await assign(pending.mapValues { Optional($0.lowerBound) })
        var lastProgress = ContinuousClock.now
        var lastError: KafkaError?
        while !pending.isEmpty {
            guard ContinuousClock.now - lastProgress < idleTimeout else {
                throw lastError ?? KafkaError(code: .timedOut, message: "no record arrived within \(idleTimeout)")
            }
            switch try await next(timeout: .milliseconds(200)) {
            case nil:
                continue
            case .error(let error):
                if error.isFatal { throw error }
                lastError = error
            case .endOfPartition(let partition, _):
                pending[partition] = nil
                lastProgress = .now
            case .message(let message):
                lastProgress = .now
                guard let range = pending[message.topicPartition] else { continue }
                if range.contains(message.offset) { try body(message) }
                if message.offset + 1 >= range.upperBound { pending[message.topicPartition] = nil }
            }
        }
        try await assign([:])
    }

    /// Stops reading and closes the client.
    public func close() async {
        await core.close()
    }
}
