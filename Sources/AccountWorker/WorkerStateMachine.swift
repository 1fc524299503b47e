import DequeModule
import Kafka

/// The one owner of the worker's facts: the assignment and its epochs,
/// per-account chains, the buffered count, offsets, draining, the circuit
/// breaker (state and probe pacing) and the fetch state the worker wants.
///
/// It lives behind one lock (`AccountWorkerService.state`). Every transition
/// is a `mutating func` that returns everything the caller must then do
/// outside the lock: start a chain, ask the consumer to pause or resume,
/// resume waiters, commit offsets. It performs no I/O and never suspends, so
/// tests drive it directly: given events, assert actions.
struct WorkerStateMachine {
    let maxBuffered: Int
    private var tracker = OffsetTracker()
    private var chains: [String: Deque<WorkItem>] = [:]
    /// Commands accepted and not yet finished or dropped.
    private(set) var buffered = 0
    /// Commands whose processing started, per partition (revocation waits for them).
    private var started: [KafkaTopicPartition: Int] = [:]
    /// Bumped when a partition's revocation completes: work from an earlier
    /// assignment is stale and makes no more calls.
    private var epochs: [KafkaTopicPartition: Int] = [:]
    private(set) var assigned: Set<KafkaTopicPartition> = []
    private(set) var draining = false
    /// Set when draining begins: per partition, the highest offset whose
    /// command had started or finished. A queued command below it still runs
    /// during the drain, or the final commit would stop at it and every
    /// finished command above it would be redelivered and reported twice.
    private var drainHorizons: [KafkaTopicPartition: Int64] = [:]
    /// Queued commands below a drain horizon start only before this instant,
    /// so the last of them still has a request timeout's time before the
    /// drain's own deadline.
    private var closeGapsUntil: ContinuousClock.Instant?
    /// A fatal Kafka error: no command starts and no call is permitted again.
    private(set) var halted = false
    private(set) var breaker: CircuitBreaker
    /// The fetch state last asked of the consumer, and that request's generation.
    private(set) var fetchPaused = false
    private var fetchGeneration: UInt64 = 0
    private var waiters: [Waiter] = []
    private var nextWaiterID = 0
    /// useapi calls on the wire, by ticket, with their start (health sees a stuck one).
    private var callsInFlight: [Int: ContinuousClock.Instant] = [:]
    private var nextCallID = 0
    /// `MAX_REQUESTS_PER_SECOND`'s share of this worker: one call per
    /// interval at most (nil: no limit), and when the next may start.
    private(set) var callInterval: Duration?
    private var nextCallAt: ContinuousClock.Instant?
    /// The concurrency useapi tolerates now (AIMD): halved on each 429,
    /// raised by 1/limit per other answer, never above `maxInFlight`.
    private(set) var concurrencyLimit: Double
    let maxInFlight: Int
    /// The whole limit last reported, and whether it changed since (for the gauge).
    private var reportedConcurrency: Int
    private var concurrencyChanged = false

    init(maxBuffered: Int, breakerThreshold: Int, maxInFlight: Int = 1_024) {
        self.maxBuffered = max(1, maxBuffered)
        self.breaker = CircuitBreaker(threshold: breakerThreshold)
        self.maxInFlight = max(1, maxInFlight)
        self.concurrencyLimit = Double(self.maxInFlight)
        self.reportedConcurrency = self.maxInFlight
    }

    /// The whole concurrency limit when it changed since last asked.
    mutating func takeConcurrencyChange() -> Int? {
        guard concurrencyChanged else { return nil }
        concurrencyChanged = false
        return reportedConcurrency
    }

    // MARK: Request rate

    /// Paces calls at `callsPerSecond` (nil or 0: no limit). Set on every
    /// rebalance to this worker's share of the group's limit.
    mutating func setRequestRate(_ callsPerSecond: Double?) {
        guard let callsPerSecond, callsPerSecond > 0, callsPerSecond.isFinite else {
            callInterval = nil
            return
        }
        // At least one call a minute: a tiny share must not stop the worker.
        callInterval = .nanoseconds(Int64(min(1e9 / callsPerSecond, 60e9)))
    }

    // MARK: Actions

    /// Ask the consumer to pause (or resume) fetching; apply with
    /// `KafkaConsumer.setFetchingPaused(_:generation:)`, which orders
    /// concurrent requests by generation.
    struct FetchChange: Equatable {
        var paused: Bool
        var generation: UInt64
    }

    typealias Continuation = CheckedContinuation<Void, Never>

    enum Condition: Equatable {
        /// Nothing buffered.
        case idle
        /// No started command of these partitions is still running.
        case partitionsQuiet(Set<KafkaTopicPartition>)
    }

    private struct Waiter {
        var id: Int
        var condition: Condition
        var continuation: Continuation
    }

    // MARK: Assignment

    /// New partitions. The consumer pauses them itself when fetching is paused.
    mutating func assign(_ partitions: [KafkaTopicPartition]) {
        assigned.formUnion(partitions)
    }

    /// Stops new work for `partitions`: their queued commands are dropped
    /// when reached. Commands already started go on, so the revocation's
    /// commit covers them.
    mutating func beginRevocation(_ partitions: [KafkaTopicPartition]) {
        assigned.subtract(partitions)
    }

    /// The revocation is over (committed, or timed out): forget the
    /// partitions. Their commands still running make no further call
    /// (``permitCall(for:now:)`` answers `.abandon`) and their results are dropped.
    mutating func finishRevocation(_ partitions: [KafkaTopicPartition]) -> [Continuation] {
        tracker.remove(partitions)
        for partition in partitions {
            started[partition] = nil
            epochs[partition, default: 0] += 1
        }
        return takeSatisfiedWaiters()
    }

    private func isCurrent(_ item: WorkItem) -> Bool {
        item.epoch == epochs[item.partition, default: 0] && assigned.contains(item.partition)
    }

    private func isSameEpoch(_ item: WorkItem) -> Bool {
        item.epoch == epochs[item.partition, default: 0]
    }

    // MARK: Commands

    enum AcceptAction: Equatable {
        /// Not taken (draining, or its partition is no longer ours): it stays
        /// uncommitted and is redelivered.
        case ignore
        /// Taken. `startChain` names a new chain to run (nil: queued behind
        /// the account's running chain).
        case accepted(startChain: String?, fetch: FetchChange?, buffered: Int)
    }

    /// A consumed record becomes a work item of the current epoch of its partition.
    mutating func accept(
        _ message: KafkaMessage,
        decoded: Result<AccountCommand, CommandRejection>,
        receivedAt: ContinuousClock.Instant
    ) -> (WorkItem, AcceptAction) {
        let item = WorkItem(message: message, decoded: decoded, epoch: epochs[message.topicPartition, default: 0], receivedAt: receivedAt)
        guard !draining, isCurrent(item) else { return (item, .ignore) }
        tracker.track(item.partition, offset: message.offset)
        buffered += 1
        let key = item.chainKey
        let fetch = updateFetching()
        if chains[key] != nil {
            chains[key]!.append(item)
            return (item, .accepted(startChain: nil, fetch: fetch, buffered: buffered))
        }
        chains[key] = [item]
        return (item, .accepted(startChain: key, fetch: fetch, buffered: buffered))
    }

    /// What a chain does next.
    struct ChainStep {
        /// The command to run now; nil when the chain is done (and removed).
        var next: WorkItem?
        var fetch: FetchChange?
        var resume: [Continuation]
        var buffered: Int
        /// Records that left the buffer in this step (finished or dropped):
        /// credits to give back to the consumer.
        var released: Int
    }

    /// Ends the chain's previous command (nil on the chain's first step;
    /// `completed` when its result was acknowledged) and picks the next one,
    /// in one transition. Stale commands are dropped on the way. While
    /// draining, every command not yet started that no drain horizon covers
    /// (or that comes after the gap-closing deadline) is dropped with the
    /// rest of its chain, and so is the rest of a chain whose previous
    /// command was abandoned: a later command of an account must not run
    /// before an earlier one that is handed back. Dropped offsets stay
    /// uncommitted, so they are redelivered.
    mutating func step(
        chain key: String,
        finished: WorkItem?,
        completed: Bool,
        now: ContinuousClock.Instant = .now
    ) -> ChainStep {
        var released = 0
        if let finished {
            buffered -= 1
            released += 1
            if isSameEpoch(finished) {
                started[finished.partition, default: 1] -= 1
                if completed { tracker.complete(finished.partition, offset: finished.message.offset) }
            }
            if draining, !completed || !isSameEpoch(finished) {
                released += dropChain(key)
            }
        }
        var next: WorkItem?
        while let item = chains[key]?.popFirst() {
            if isCurrent(item), !draining || isBelowDrainHorizon(item, now: now) {
                started[item.partition, default: 0] += 1
                next = item
                break
            }
            buffered -= 1
            released += 1
            if draining { released += dropChain(key) }
        }
        if next == nil { chains[key] = nil }
        return ChainStep(next: next, fetch: updateFetching(), resume: takeSatisfiedWaiters(), buffered: buffered, released: released)
    }

    /// Drops every queued command of a chain; returns how many.
    private mutating func dropChain(_ key: String) -> Int {
        guard let rest = chains.removeValue(forKey: key) else { return 0 }
        buffered -= rest.count
        return rest.count
    }

    // MARK: Calls and the circuit breaker

    enum CallPermit: Equatable {
        /// Call now; a probe runs while the circuit is open and costs no attempt.
        case call(isProbe: Bool)
        /// The circuit is open and another probe runs or is not due: ask again after this.
        case wait(Duration)
        /// The command's partition was revoked since it was consumed: make no
        /// further call and report nothing (the new owner replays it).
        case abandon
    }

    /// A call that may start now is registered under a ticket (end it with
    /// ``callEnded(ticket:email:outage:wasProbe:now:)``).
    mutating func permitCall(for item: WorkItem, now: ContinuousClock.Instant) -> (CallPermit, ticket: Int?) {
        let permit = permission(for: item, now: now)
        guard case .call = permit else { return (permit, nil) }
        nextCallID += 1
        callsInFlight[nextCallID] = now
        return (permit, nextCallID)
    }

    private mutating func permission(for item: WorkItem, now: ContinuousClock.Instant) -> CallPermit {
        guard isSameEpoch(item), !halted else { return .abandon }
        // Pacing and the AIMD limit come before the breaker, which would
        // otherwise hand out a probe that then waits.
        if let nextCallAt, now < nextCallAt { return .wait(nextCallAt - now) }
        if callsInFlight.count >= max(1, Int(concurrencyLimit)) { return .wait(Self.concurrencyRecheck) }
        switch breaker.permission(now: now) {
        case .call(let isProbe):
            if let callInterval { nextCallAt = max(now, nextCallAt ?? now) + callInterval }
            return .call(isProbe: isProbe)
        case .wait(let delay):
            return .wait(delay)
        }
    }

    /// How soon a call held back by the AIMD limit asks again.
    static let concurrencyRecheck: Duration = .milliseconds(10)

    /// What the breaker did after a call.
    enum BreakerChange: Equatable {
        case opened
        case closed
    }

    /// Records a call's outcome for the breaker. `outage`: a transport error
    /// or a 5xx other than 596; nil when the call was abandoned (cancelled),
    /// which judges nothing but frees the probe slot.
    mutating func callEnded(
        ticket: Int,
        email: String,
        outage: Bool?,
        wasProbe: Bool,
        rateLimited: Bool = false,
        now: ContinuousClock.Instant
    ) -> (BreakerChange?, FetchChange?) {
        callsInFlight[ticket] = nil
        if outage != nil {
            // AIMD: back off hard when useapi says "too many", recover slowly.
            concurrencyLimit =
                rateLimited
                ? max(1, concurrencyLimit / 2) : min(Double(maxInFlight), concurrencyLimit + 1 / max(1, concurrencyLimit))
            let whole = Int(concurrencyLimit)
            if whole != reportedConcurrency {
                reportedConcurrency = whole
                concurrencyChanged = true
            }
        }
        guard let outage else {
            if wasProbe { breaker.abandonProbe() }
            return (nil, nil)
        }
        guard breaker.record(email: email.lowercased(), outage: outage, wasProbe: wasProbe, now: now) else { return (nil, nil) }
        return (breaker.state == .open ? .opened : .closed, updateFetching())
    }

    // MARK: Fetching

    /// The buffer bound needs no pause here: the consumer hands out at most
    /// `maxBuffered` records until credits come back (``ChainStep/released``).
    private var shouldPause: Bool {
        draining || breaker.state == .open
    }

    private mutating func updateFetching() -> FetchChange? {
        let pause = shouldPause
        guard pause != fetchPaused else { return nil }
        fetchPaused = pause
        fetchGeneration += 1
        return FetchChange(paused: pause, generation: fetchGeneration)
    }

    // MARK: Draining

    /// Shutdown: pause fetching, take no new message, and from now on start
    /// only the queued commands that lie below a started or finished one of
    /// their partition (the gaps the final commit could not pass), and only
    /// until `closeGapsUntil`. The rest are handed back, uncommitted.
    mutating func beginDraining(closeGapsUntil deadline: ContinuousClock.Instant? = nil) -> (FetchChange?, [Continuation]) {
        if !draining {
            var unstarted: [KafkaTopicPartition: Set<Int64>] = [:]
            for chain in chains.values {
                for item in chain { unstarted[item.partition, default: []].insert(item.message.offset) }
            }
            drainHorizons = tracker.highestStartedOffsets(unstarted: unstarted)
            closeGapsUntil = deadline
        }
        draining = true
        return (updateFetching(), takeSatisfiedWaiters())
    }

    /// While draining: whether a queued command lies below a command of its
    /// partition that started or finished, so it must run for the final
    /// commit to cover that one, and there is still time to start it.
    private func isBelowDrainHorizon(_ item: WorkItem, now: ContinuousClock.Instant) -> Bool {
        guard !halted, let horizon = drainHorizons[item.partition] else { return false }
        if let closeGapsUntil, now >= closeGapsUntil { return false }
        return item.message.offset < horizon
    }

    /// A fatal Kafka error: nothing can be published or committed any more,
    /// so no command starts and no call is permitted (running calls get
    /// `.abandon` at their next permit), and every waiter is released: the
    /// drain and revocations stop waiting for work that cannot be reported.
    mutating func halt() -> [Continuation] {
        halted = true
        draining = true
        drainHorizons = [:]
        return takeSatisfiedWaiters()
    }

    // MARK: Offsets

    /// Offsets that moved since last taken (all known ones with `force`),
    /// optionally only of `partitions`.
    mutating func takeCommits(for partitions: Set<KafkaTopicPartition>? = nil, force: Bool = false) -> [KafkaTopicPartition: Int64] {
        tracker.takeCommits(for: partitions, force: force)
    }

    // MARK: Waiting

    private func isSatisfied(_ condition: Condition) -> Bool {
        switch condition {
        case .idle: halted || buffered == 0
        case .partitionsQuiet(let partitions): halted || partitions.allSatisfy { started[$0, default: 0] == 0 }
        }
    }

    /// Registers a waiter; false (nothing registered) when the condition already holds.
    mutating func wait(for condition: Condition, id: Int, continuation: Continuation) -> Bool {
        guard !isSatisfied(condition) else { return false }
        waiters.append(Waiter(id: id, condition: condition, continuation: continuation))
        return true
    }

    mutating func makeWaiterID() -> Int {
        nextWaiterID += 1
        return nextWaiterID
    }

    mutating func cancelWaiter(id: Int) -> Continuation? {
        guard let index = waiters.firstIndex(where: { $0.id == id }) else { return nil }
        return waiters.remove(at: index).continuation
    }

    private mutating func takeSatisfiedWaiters() -> [Continuation] {
        guard !waiters.isEmpty else { return [] }
        let current = waiters
        waiters = []
        var ready: [Continuation] = []
        for waiter in current {
            if isSatisfied(waiter.condition) {
                ready.append(waiter.continuation)
            } else {
                waiters.append(waiter)
            }
        }
        return ready
    }

    // MARK: Reading

    /// When the longest-running useapi call started, if any runs.
    var oldestCallStart: ContinuousClock.Instant? { callsInFlight.values.min() }

}
