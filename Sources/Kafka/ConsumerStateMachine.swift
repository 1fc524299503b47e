import DequeModule

/// The consumer's shared state: the event buffer between the poll thread and
/// the Swift iterator, the revocation handshake, and the close sequence.
/// Transitions return what to do; the caller does it outside the lock.
struct ConsumerStateMachine {
    enum Phase {
        case running
        case closing
        case closed
    }

    private(set) var phase: Phase = .running
    private var buffer = Deque<KafkaConsumerEvent>()
    private var waiter: CheckedContinuation<KafkaConsumerEvent?, any Error>?
    private var waiterCancelled = false
    /// A revocation was surfaced; the poll thread waits until it is acknowledged.
    private(set) var revocationPending = false
    private var revocationHandedOut = false
    private(set) var assignment: Set<KafkaTopicPartition> = []
    private var closeWaiters: [CheckedContinuation<Void, Never>] = []
    private var failure: KafkaError?
    let bufferLimit: Int
    /// Whether the application wants fetching paused, and the generation of
    /// that request (requests made concurrently apply in generation order).
    private var desiredPaused = false
    private var desiredGeneration: UInt64 = 0
    /// What the poll thread last applied to the assignment.
    private(set) var appliedPaused = false

    /// Records the application may still be handed (nil: unlimited).
    private(set) var credits: Int?
    /// Out of credits for longer than `creditPauseDelay`: fetching stays
    /// paused until half of them are back, so a trickle of returned credits
    /// does not pause and resume per record.
    private(set) var creditPaused = false
    private let resumeCredits: Int
    /// Uptime (ns) at which the poll thread found the credits used up; nil
    /// while some are left.
    private var exhaustedSince: UInt64?
    private let creditPauseDelayNanoseconds: UInt64

    init(bufferLimit: Int, credits: Int? = nil, creditPauseDelay: Duration = .seconds(1)) {
        self.bufferLimit = max(1, bufferLimit)
        self.credits = credits.map { max(1, $0) }
        self.resumeCredits = max(1, (credits ?? 2) / 2)
        let (nanoseconds, overflow) = UInt64(clamping: max(0, creditPauseDelay.milliseconds)).multipliedReportingOverflow(by: 1_000_000)
        self.creditPauseDelayNanoseconds = overflow ? .max : nanoseconds
    }

    /// Whether fetching must pause: asked by the application, or out of
    /// credits for longer than the credit pause delay.
    private var effectivePaused: Bool {
        desiredPaused || creditPaused
    }

    /// The application gave back `count` credits. Returns true when the poll
    /// thread must act (fetching may resume).
    mutating func returnCredits(_ count: Int) -> Bool {
        guard let current = credits, count > 0 else { return false }
        let updated = current.addingReportingOverflow(count)
        credits = updated.overflow ? Int.max : updated.partialValue
        guard phase == .running else { return false }
        if creditPaused {
            guard credits! >= resumeCredits else { return false }
            creditPaused = false
            exhaustedSince = nil
            return effectivePaused != appliedPaused
        }
        // The poll thread may be waiting for this first credit.
        guard current <= 0, credits! > 0 else { return false }
        exhaustedSince = nil
        return true
    }

    // MARK: Poll thread

    enum PollAction: Equatable {
        case poll
        case waitForRoom
        /// Out of credits: wait at most this long for one to come back.
        case waitForCredits(nanoseconds: UInt64)
        /// The fetch state to apply changed: reconcile before polling.
        case reconcile
        case close
    }

    /// What the poll thread does next; `now` is its uptime in nanoseconds.
    mutating func nextPollAction(now: UInt64) -> PollAction {
        switch phase {
        case .running:
            if buffer.count >= bufferLimit { return .waitForRoom }
            guard let credits, credits <= 0, !creditPaused else { return .poll }
            // Not polling keeps librdkafka's prefetch queue as it is (bounded
            // by queued.min.messages); only a long wait pauses fetching.
            let since = exhaustedSince ?? now
            exhaustedSince = since
            let waited = now >= since ? now - since : 0
            guard waited >= creditPauseDelayNanoseconds else {
                return .waitForCredits(nanoseconds: min(creditPauseDelayNanoseconds - waited, 100_000_000))
            }
            creditPaused = true
            return .reconcile
        case .closing, .closed:
            return .close
        }
    }

    /// Adds an event; returns the iterator to resume with it, if one waits.
    mutating func enqueue(
        _ event: KafkaConsumerEvent
    ) -> CheckedContinuation<KafkaConsumerEvent?, any Error>? {
        guard phase == .running else { return nil }
        switch event {
        case .partitionsAssigned(let partitions):
            assignment.formUnion(partitions)
        case .partitionsRevoked:
            revocationPending = true
        case .message:
            // Spends a credit. The poll thread polls only with credits left or
            // fetching paused, so only a record racing a pause overdraws.
            if let current = credits {
                credits = current - 1
            }
        case .endOfPartition:
            break
        }
        if let waiter {
            self.waiter = nil
            markHandedOut(event)
            return waiter
        }
        buffer.append(event)
        return nil
    }

    mutating func revoked(_ partitions: [KafkaTopicPartition]) {
        assignment.subtract(partitions)
    }

    /// Whether the poll thread should keep waiting for the revocation handshake.
    var mustWaitForRevocation: Bool {
        revocationPending && phase == .running
    }

    mutating func fail(_ error: KafkaError) {
        if failure == nil { failure = error }
        if phase == .running { phase = .closing }
    }

    /// The poll thread has closed the consumer: returns everyone to wake.
    mutating func closed() -> (
        waiter: CheckedContinuation<KafkaConsumerEvent?, any Error>?,
        closeWaiters: [CheckedContinuation<Void, Never>],
        failure: KafkaError?
    ) {
        phase = .closed
        buffer.removeAll()
        assignment.removeAll()
        revocationPending = false
        let result = (waiter, closeWaiters, failure)
        waiter = nil
        closeWaiters = []
        return result
    }

    // MARK: Fetching

    /// Records the fetch state the application wants. Returns true when the
    /// poll thread must act (it applies the change on its next turn).
    mutating func requestFetching(paused: Bool, generation: UInt64) -> Bool {
        guard generation > desiredGeneration else { return false }
        desiredGeneration = generation
        desiredPaused = paused
        return effectivePaused != appliedPaused && phase == .running
    }

    /// Poll thread: the pause or resume to apply to the whole assignment
    /// now, if the wanted state differs from the applied one.
    mutating func fetchReconciliation() -> (paused: Bool, partitions: [KafkaTopicPartition])? {
        guard phase == .running, effectivePaused != appliedPaused else { return nil }
        appliedPaused = effectivePaused
        return (appliedPaused, Array(assignment))
    }

    // MARK: Iterator

    enum NextAction {
        case event(KafkaConsumerEvent)
        case finished(KafkaError?)
        case suspended
    }

    /// Called at the start of every `next()`: the previous revocation, if
    /// any, is now acknowledged. Returns true when the poll thread must be woken.
    mutating func acknowledgeRevocation() -> Bool {
        guard revocationHandedOut else { return false }
        revocationHandedOut = false
        revocationPending = false
        return true
    }

    mutating func next(_ continuation: CheckedContinuation<KafkaConsumerEvent?, any Error>) -> NextAction {
        if let event = buffer.popFirst() {
            markHandedOut(event)
            return .event(event)
        }
        if phase == .closed {
            return .finished(failure)
        }
        if waiterCancelled {
            waiterCancelled = false
            return .finished(nil)
        }
        precondition(waiter == nil, "KafkaConsumer events can only be iterated by one task at a time")
        waiter = continuation
        return .suspended
    }

    mutating func cancelWaiter() -> CheckedContinuation<KafkaConsumerEvent?, any Error>? {
        guard let waiter else {
            waiterCancelled = true
            return nil
        }
        self.waiter = nil
        return waiter
    }

    /// Whether the buffer just dropped below its limit (the poll thread may resume).
    var hasRoom: Bool { buffer.count < bufferLimit }

    private mutating func markHandedOut(_ event: KafkaConsumerEvent) {
        if case .partitionsRevoked = event { revocationHandedOut = true }
    }

    // MARK: Close

    enum CloseAction {
        case wait
        case alreadyClosed
    }

    mutating func close(_ continuation: CheckedContinuation<Void, Never>) -> CloseAction {
        switch phase {
        case .closed:
            return .alreadyClosed
        case .running, .closing:
            phase = .closing
            closeWaiters.append(continuation)
            return .wait
        }
    }

    mutating func requestClose() {
        if phase == .running { phase = .closing }
    }
}
