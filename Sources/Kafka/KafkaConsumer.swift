import Dispatch
import Foundation
import Logging
import Synchronization

/// A Kafka consumer-group member with explicit offset management.
///
/// Records and rebalance events arrive through ``events``. Offsets are never
/// committed automatically: call ``commit(_:)`` (synchronous, for revocation
/// and shutdown) or ``commitAsync(_:)`` (steady state) with the next offset
/// to read, i.e. the last processed offset plus one.
///
/// librdkafka's blocking calls (the timed poll, synchronous commit, close)
/// run on a dedicated thread and queue, never on Swift's cooperative pool.
public final class KafkaConsumer: Sendable {
    let core: RDKafkaConsumerCore

    /// Creates the consumer, subscribes to `configuration.topics` and starts polling.
    public init(configuration: KafkaConsumerConfiguration, logger: Logger) throws(KafkaError) {
        core = try RDKafkaConsumerCore(configuration: configuration, logger: logger)
    }

    deinit {
        core.requestClose()
    }

    /// The consumer's records and rebalance events. Iterate it from one task.
    /// The sequence ends when the consumer is closed, or throws when it failed fatally.
    public var events: KafkaConsumerEvents { KafkaConsumerEvents(consumer: self) }

    /// Commits offsets and waits for the group coordinator's answer.
    /// - Parameter offsets: per partition, the next offset to consume.
    public func commit(_ offsets: [KafkaTopicPartition: Int64]) async throws(KafkaError) {
        try await core.commitSync(offsets)
    }

    /// Sends a commit without waiting for it; failures are logged. A later
    /// commit supersedes a failed one, so the steady state needs no retry.
    public func commitAsync(_ offsets: [KafkaTopicPartition: Int64]) throws(KafkaError) {
        try core.commitAsync(offsets)
    }

    /// Stops fetching from `partitions`; records already delivered stay delivered.
    /// A pause lasts while the partition stays assigned: a partition that is
    /// revoked and assigned again starts unpaused.
    public func pause(_ partitions: [KafkaTopicPartition]) throws(KafkaError) {
        try core.pauseResume(partitions, pause: true)
    }

    /// Resumes fetching from `partitions` where the application left off.
    public func resume(_ partitions: [KafkaTopicPartition]) throws(KafkaError) {
        try core.pauseResume(partitions, pause: false)
    }

    /// Asks for fetching of the whole assignment to be paused or resumed.
    ///
    /// Never blocks: the poll thread applies the newest request on its next
    /// turn (it interrupts a poll in progress), to every assigned partition,
    /// and partitions assigned later join the state that applies then. Of
    /// requests made concurrently, the one with the highest `generation` wins,
    /// whatever order the calls arrive in; older generations are ignored.
    public func setFetchingPaused(_ paused: Bool, generation: UInt64) {
        core.setFetchingPaused(paused, generation: generation)
    }

    /// How many partitions `topic` has, from the brokers' metadata; nil when
    /// the brokers do not answer within `timeout`.
    public func partitionCount(of topic: String, timeout: Duration = .seconds(5)) async -> Int? {
        await core.handle.partitionCount(of: topic, timeout: timeout)
    }

    /// Gives back credits for records the application no longer holds
    /// (``KafkaConsumerConfiguration/messageCredits``); fetching resumes
    /// when it was paused for lack of them. Never blocks.
    public func returnCredits(_ count: Int) {
        core.returnCredits(count)
    }

    /// Whether the poll thread has paused fetching (``setFetchingPaused(_:generation:)``).
    public var isFetchingPaused: Bool {
        core.state.withLock { $0.appliedPaused }
    }

    /// The partitions currently assigned to this member.
    public var assignment: Set<KafkaTopicPartition> {
        core.state.withLock { $0.assignment }
    }

    /// How long ago the poll thread last ran. A consumer whose poll thread is
    /// stuck (not merely idle) shows a growing value: a liveness signal.
    public var timeSinceLastPoll: Duration {
        let now = DispatchTime.now().uptimeNanoseconds
        let last = core.lastPollNanoseconds.load(ordering: .relaxed)
        return .nanoseconds(Int64(now > last ? now - last : 0))
    }

    /// Whether this member has been given an assignment by the group
    /// coordinator (possibly empty) and has not lost it since.
    public var hasJoinedGroup: Bool {
        core.joinedGroup.load(ordering: .relaxed)
    }

    /// The group's lag per assigned partition: the log-end offset, asked of
    /// the brokers now (not the fetcher's cached watermark, which freezes
    /// while fetching is paused), minus the group's committed offset: what
    /// `kafka-consumer-groups --describe` and KEDA show. A partition with no
    /// committed offset counts from the start of its log. Partitions whose
    /// offsets are not learnt within `timeout` are absent.
    ///
    /// The broker queries block: they run on a dedicated queue, never on
    /// Swift's cooperative pool.
    public func lag(timeout: Duration = .seconds(2)) async -> [KafkaTopicPartition: Int64] {
        await core.committedLag(timeout: timeout)
    }

    /// Commits the group coordinator refused so far (asynchronous ones
    /// included, as librdkafka's commit callback reports them).
    public var failedCommits: Int { core.commitFailures.load(ordering: .relaxed) }

    /// The fatal error librdkafka raised on this consumer, if any.
    public var fatalError: KafkaError? { core.handle.fatalError }

    /// Leaves the group and stops the poll thread. Commit before closing:
    /// revocations during close are not surfaced as events.
    public func close() async {
        await core.close()
    }
}

/// The events of a ``KafkaConsumer`` as an `AsyncSequence`.
public struct KafkaConsumerEvents: AsyncSequence, Sendable {
    public typealias Element = KafkaConsumerEvent
    let consumer: KafkaConsumer

    public struct AsyncIterator: AsyncIteratorProtocol {
        let consumer: KafkaConsumer

        public mutating func next() async throws -> KafkaConsumerEvent? {
            try await consumer.core.nextEvent()
        }
    }

    public func makeAsyncIterator() -> AsyncIterator {
        AsyncIterator(consumer: consumer)
    }
}
