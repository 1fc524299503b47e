import DequeModule
import Kafka

/// The worker's bookkeeping, kept behind one lock: per-account chains of
/// pending commands, offsets, assignment epochs, and whether fetching should
/// pause. Transitions return what the caller must do outside the lock.
struct WorkerState {
    let maxBuffered: Int
    private(set) var tracker = OffsetTracker()
    private var chains: [String: Deque<WorkItem>] = [:]
    /// Commands accepted and not yet finished or dropped.
    private(set) var buffered = 0
    /// Commands whose processing started, per partition (revocation waits for them).
    private var started: [KafkaTopicPartition: Int] = [:]
    private var epochs: [KafkaTopicPartition: Int] = [:]
    private(set) var assigned: Set<KafkaTopicPartition> = []
    private(set) var draining = false
    private(set) var breakerOpen = false
    /// Whether we asked the consumer to pause every assigned partition.
    private(set) var paused = false
    private var waiters: [(id: Int, condition: Condition, continuation: CheckedContinuation<Void, Never>)] = []
    private var nextWaiterID = 0

    enum Condition {
        case idle
        case partitionsQuiet(Set<KafkaTopicPartition>)
    }

    init(maxBuffered: Int) {
        self.maxBuffered = max(1, maxBuffered)
    }

    /// What to do about fetching after a transition.
    enum FetchAction: Equatable {
        case none
        case pause(Set<KafkaTopicPartition>)
        case resume(Set<KafkaTopicPartition>)
    }

    private var shouldPause: Bool {
        if draining || breakerOpen { return true }
        // Hysteresis: pause when full, resume once half drained.
        return paused ? buffered > maxBuffered / 2 : buffered >= maxBuffered
    }

    private mutating func updateFetching() -> FetchAction {
        let pause = shouldPause
        guard pause != paused else { return .none }
        paused = pause
        return pause ? .pause(assigned) : .resume(assigned)
    }

    // MARK: Assignment

    mutating func assign(_ partitions: [KafkaTopicPartition]) -> FetchAction {
        assigned.formUnion(partitions)
        // New partitions join the current pause state.
        return paused ? .pause(Set(partitions)) : .none
    }

    /// Stops new work for `partitions`: their queued commands are dropped
    /// when reached. Commands already started still complete normally, so
    /// the revocation's commit covers them.
    mutating func beginRevocation(_ partitions: [KafkaTopicPartition]) {
        for partition in partitions {
            assigned.remove(partition)
        }
    }

    /// The revocation is committed: forget the partitions. A command of
    /// theirs that finishes later (after a drain timeout) is ignored.
    mutating func finishRevocation(_ partitions: [KafkaTopicPartition]) {
        tracker.remove(partitions)
        for partition in partitions {
            started[partition] = nil
            epochs[partition, default: 0] += 1
        }
    }

    func epoch(_ partition: KafkaTopicPartition) -> Int { epochs[partition, default: 0] }

    private func isCurrent(_ item: WorkItem) -> Bool {
        item.epoch == epochs[item.partition, default: 0] && assigned.contains(item.partition)
    }

    /// Whether a queued command may start: when draining, commands not yet
    /// started are handed back (left uncommitted for redelivery) instead.
    private func mayStart(_ item: WorkItem) -> Bool {
        !draining && isCurrent(item)
    }

    // MARK: Commands

    enum AcceptAction {
        /// Ignore the message (draining, or its partition is no longer ours).
        case ignore
        /// Queued behind a running chain.
        case queued(FetchAction)
        /// Start a chain for this key.
        case startChain(String, FetchAction)
    }

    mutating func accept(_ item: WorkItem) -> AcceptAction {
        guard !draining, isCurrent(item) else { return .ignore }
        tracker.track(item.partition, offset: item.message.offset)
        buffered += 1
        let key = item.chainKey
        let fetch = updateFetching()
        if chains[key] != nil {
            chains[key]!.append(item)
            return .queued(fetch)
        }
        chains[key] = [item]
        return .startChain(key, fetch)
    }

    /// The chain's next command to run, or nil when the chain is done (it is
    /// then removed, atomically, so a new command starts a new chain).
    /// Stale commands, and all not-yet-started ones while draining, are
    /// dropped on the way (their offsets stay uncommitted).
    mutating func nextItem(chain key: String) -> (WorkItem?, FetchAction, [CheckedContinuation<Void, Never>]) {
        var fetch = FetchAction.none
        while let item = chains[key]?.popFirst() {
            if mayStart(item) {
                started[item.partition, default: 0] += 1
                return (item, .none, [])
            }
            buffered -= 1
            fetch = merge(fetch, updateFetching())
        }
        chains[key] = nil
        return (nil, fetch, takeSatisfiedWaiters())
    }

    /// A started command ended: `completed` when its result was acknowledged.
    mutating func finish(_ item: WorkItem, completed: Bool) -> (FetchAction, [CheckedContinuation<Void, Never>]) {
        buffered -= 1
        if item.epoch == epochs[item.partition, default: 0] {
            started[item.partition, default: 1] -= 1
            if completed { tracker.complete(item.partition, offset: item.message.offset) }
        }
        return (updateFetching(), takeSatisfiedWaiters())
    }

    private func merge(_ first: FetchAction, _ second: FetchAction) -> FetchAction {
        second == .none ? first : second
    }

    // MARK: Breaker and draining

    mutating func setBreakerOpen(_ open: Bool) -> FetchAction {
        breakerOpen = open
        return updateFetching()
    }

    mutating func beginDraining() -> FetchAction {
        draining = true
        return updateFetching()
    }

    // MARK: Commits

    mutating func takeCommits(for partitions: Set<KafkaTopicPartition>? = nil, force: Bool = false) -> [KafkaTopicPartition: Int64] {
        tracker.takeCommits(for: partitions, force: force)
    }

    // MARK: Waiting

    private func isSatisfied(_ condition: Condition) -> Bool {
        switch condition {
        case .idle:
            return buffered == 0
        case .partitionsQuiet(let partitions):
            return partitions.allSatisfy { started[$0, default: 0] == 0 }
        }
    }

    /// Registers a waiter; returns false (and registers nothing) when the
    /// condition already holds.
    mutating func wait(
        for condition: Condition,
        id: Int,
        continuation: CheckedContinuation<Void, Never>
    ) -> Bool {
        guard !isSatisfied(condition) else { return false }
        waiters.append((id, condition, continuation))
        return true
    }

    mutating func makeWaiterID() -> Int {
        nextWaiterID += 1
        return nextWaiterID
    }

    mutating func cancelWaiter(id: Int) -> CheckedContinuation<Void, Never>? {
        guard let index = waiters.firstIndex(where: { $0.id == id }) else { return nil }
        return waiters.remove(at: index).continuation
    }

    private mutating func takeSatisfiedWaiters() -> [CheckedContinuation<Void, Never>] {
        var ready: [CheckedContinuation<Void, Never>] = []
        var remaining: [(id: Int, condition: Condition, continuation: CheckedContinuation<Void, Never>)] = []
        for waiter in waiters {
            if isSatisfied(waiter.condition) {
                ready.append(waiter.continuation)
            } else {
                remaining.append(waiter)
            }
        }
        waiters = remaining
        return ready
    }

    var chainCount: Int { chains.count }
}
