import CoreMetrics
import Foundation
import Kafka
import Logging
import ServiceLifecycle
import Synchronization
import UseAPI

/// `account-worker run`: consumes commands, applies them to useapi with
/// bounded concurrency and per-account order, publishes one result per
/// command, and commits offsets only below commands whose results the
/// brokers acknowledged.
///
/// It only orchestrates: consume → accept → run chains → finish → commit.
/// The facts live in one ``WorkerStateMachine`` behind one lock; a command's
/// calls are a ``CommandExecutor``'s, its records a ``ResultPublisher``'s.
///
/// On graceful shutdown it stops fetching, lets in-flight work finish within
/// `shutdownTimeout` (abandoning the rest unreported and uncommitted, so it
/// is redelivered), commits, and leaves the group.
public final class AccountWorkerService: Service, Sendable {
    let settings: WorkerSettings
    let consumer: KafkaConsumer
    let producer: KafkaProducer
    let logger: Logger
    let metrics: WorkerMetrics
    let state: Mutex<WorkerStateMachine>
    /// Concurrency slots: at most `MAX_IN_FLIGHT` useapi calls at once.
    let slots: AsyncSemaphore
    let decoder: CommandDecoder
    let publisher: ResultPublisher
    private let useapi: UseAPIClient
    private let policy: RetryPolicy
    private let shuttingDown = Atomic<Bool>(false)
    private let failure = Mutex<(any Error)?>(nil)
    /// A Kafka client failed fatally: stop at once, report not alive, exit non-zero.
    private let failedFatally = Atomic<Bool>(false)
    /// Ends the wait for a stop request (set while `run` runs).
    private let stopRequest = Mutex<AsyncStream<Void>.Continuation?>(nil)

    public init(
        settings: WorkerSettings,
        consumer: KafkaConsumer,
        producer: KafkaProducer,
        useapi: UseAPIClient,
        logger: Logger,
        metricsFactory: any MetricsFactory = MetricsSystem.factory
    ) {
        let metrics = WorkerMetrics(factory: metricsFactory, workerID: settings.workerID)
        self.metrics = metrics
        self.settings = settings
        self.consumer = consumer
        self.producer = producer
        self.useapi = useapi
        self.logger = logger
        self.state = Mutex(
            WorkerStateMachine(
                maxBuffered: settings.maxBufferedCommands,
                breakerThreshold: settings.breakerThreshold,
                maxInFlight: settings.maxInFlight
            )
        )
        self.slots = AsyncSemaphore(permits: settings.maxInFlight)
        metrics.concurrencyLimit.record(settings.maxInFlight)
        metrics.requestRateLimit.record(0)
        self.decoder = CommandDecoder(maxCommandBytes: settings.maxCommandBytes)
        self.policy = RetryPolicy(
            maxAttempts: settings.maxAttempts,
            baseDelay: settings.retryBaseDelay,
            maxDelay: settings.retryMaxDelay,
            retryAfterCap: settings.retryAfterCap
        )
        let failFatally = FatalHandler()
        self.fatalHandler = failFatally
        self.publisher = ResultPublisher(
            producer: producer,
            resultTopic: settings.resultTopic,
            dlqTopic: settings.dlqTopic,
            statusTopic: settings.statusTopic,
            metrics: metrics,
            logger: logger,
            onFatal: { failFatally.report($0) }
        )
        failFatally.service.withLock { $0 = WeakService(self) }
    }

    /// Lets the publisher report a fatal error to the service that owns it
    /// without a reference cycle.
    private let fatalHandler: FatalHandler

    final class WeakService: Sendable {
        weak let service: AccountWorkerService?
        init(_ service: AccountWorkerService) { self.service = service }
    }

    final class FatalHandler: Sendable {
        let service = Mutex<WeakService?>(nil)
        func report(_ error: KafkaError) {
            service.withLock { $0 }?.service?.failFatally(error)
        }
    }

    /// A Kafka client can never work again: stop consuming and calling
    /// useapi now (no drain: no result could be published), report not
    /// alive, and make `run` throw so the process exits non-zero. What was
    /// not committed is redelivered to the next owner.
    func failFatally(_ error: KafkaError) {
        guard !failedFatally.exchange(true, ordering: .acquiringAndReleasing) else { return }
        failure.withLock { $0 = $0 ?? error }
        // No command starts and no call is permitted from here on; a drain
        // or revocation waiting for running work stops waiting.
        let waiters = state.withLock { $0.halt() }
        for waiter in waiters { waiter.resume() }
        logger.critical(
            "Kafka client failed fatally: stopping (uncommitted commands are redelivered to the next owner)",
            metadata: ["kafka.error.name": "\(error.name)", "kafka.error.message": "\(error.message)"]
        )
        stopRequest.withLock { $0 }?.finish()
    }

    private var executor: CommandExecutor {
        CommandExecutor(useapi: useapi, policy: policy, gate: self, metrics: metrics, logger: logger)
    }

    // MARK: Health

    /// What `/healthz` and `/readyz` answer. Alive: the consumer's poll
    /// thread turned within the last 30 s. Ready: alive, the group gave this
    /// member an assignment, and not shutting down.
    public func healthReport() -> WorkerHealthReport {
        let sincePoll = consumer.timeSinceLastPoll
        let fatal = failedFatally.load(ordering: .relaxed)
        let alive = sincePoll < .seconds(30) && !fatal
        let snapshot = health
        var reasons: [String] = []
        if fatal { reasons.append("a Kafka client failed fatally") }
        if sincePoll >= .seconds(30) { reasons.append("the Kafka poll loop has not run for \(sincePoll.milliseconds) ms") }
        if !consumer.hasJoinedGroup { reasons.append("not a member of consumer group \(settings.groupID) yet") }
        if snapshot.isShuttingDown { reasons.append("shutting down") }
        if let since = publisher.oldestUnacknowledged, ContinuousClock.now - since > settings.publishStallThreshold {
            reasons.append("results cannot be published: one has waited \((ContinuousClock.now - since).milliseconds) ms")
        }
        if let started = state.withLock({ $0.oldestCallStart }), ContinuousClock.now - started > settings.requestTimeout * 3 {
            reasons.append("a useapi call has been outstanding for \((ContinuousClock.now - started).milliseconds) ms")
        }
        return WorkerHealthReport(
            alive: alive,
            ready: reasons.isEmpty,
            reasons: reasons,
            assignedPartitions: snapshot.assignedPartitions,
            breakerOpen: snapshot.breakerOpen,
            buffered: snapshot.buffered
        )
    }

    /// The worker's state as health checks and tests see it (one lock).
    public var health: WorkerHealthSnapshot {
        let isShuttingDown = shuttingDown.load(ordering: .relaxed)
        return state.withLock {
            WorkerHealthSnapshot(
                assignedPartitions: $0.assigned.count,
                breakerOpen: $0.breaker.state == .open,
                buffered: $0.buffered,
                isShuttingDown: isShuttingDown
            )
        }
    }

    // MARK: Running

    public func run() async throws {
        logger.info(
            "account worker starting",
            metadata: settings.redactedSummary.mapValues { .string($0) }.merging(["worker.version": "\(accountWorkerVersion)"]) { $1 }
        )
        // Not in the task group: a lookup blocks its queue for up to 5 s and
        // cannot be cancelled, and a stop must not wait for it.
        Task { await self.prepareOutputTopics() }
        let (stopRequests, requestStop) = AsyncStream<Void>.makeStream()
        stopRequest.withLock { $0 = requestStop }
        await withGracefulShutdownHandler {
            await withTaskGroup(of: Void.self) { group in
                group.addTask {
                    await self.consume()
                    requestStop.finish()
                }
                group.addTask { await self.commitPeriodically() }
                group.addTask { await self.reportLagPeriodically() }
                group.addTask { await self.watchForFatalErrors() }
                for await _ in stopRequests {}
                shuttingDown.store(true, ordering: .relaxed)
                if !Task.isCancelled && !failedFatally.load(ordering: .relaxed) {
                    await drain()
                }
                group.cancelAll()
                await group.waitForAll()
            }
            await commitAndClose()
        } onGracefulShutdown: {
            requestStop.finish()
        }
        if let error = failure.withLock({ $0 }) {
            throw error
        }
        logger.info("account worker stopped")
    }

    /// Looks up the output topics while the group forms: the first results
    /// then do not wait for metadata (about a second per new topic), and an
    /// operator learns at start-up that a topic is missing or not allowed.
    private func prepareOutputTopics() async {
        for topic in [settings.resultTopic, settings.statusTopic, settings.dlqTopic].compactMap({ $0 }) {
            if shuttingDown.load(ordering: .relaxed) { return }
            if await producer.partitionCount(of: topic) == nil, !shuttingDown.load(ordering: .relaxed) {
                logger.warning(
                    "output topic has no metadata yet: it may not exist or not be allowed; results wait until it is",
                    metadata: ["kafka.topic": "\(topic)"]
                )
            }
        }
    }

    // MARK: Consuming

    private func consume() async {
        await withDiscardingTaskGroup { chains in
            do {
                for try await event in consumer.events {
                    switch event {
                    case .message(let message):
                        accept(message, chains: &chains)
                    case .partitionsAssigned(let partitions):
                        state.withLock { $0.assign(partitions) }
                        await updateRequestRate()
                    case .partitionsRevoked(let partitions, let lost):
                        await revoke(partitions, lost: lost)
                        await updateRequestRate()
                    case .endOfPartition:
                        break
                    }
                    if Task.isCancelled && state.withLock({ $0.draining }) { break }
                }
            } catch let error as KafkaError {
                failFatally(error)
            } catch {
                logger.error("Kafka consumer failed", metadata: ["error": "\(error)"])
                failure.withLock { $0 = $0 ?? error }
            }
        }
    }

    private func accept(_ message: KafkaMessage, chains: inout DiscardingTaskGroup) {
        metrics.consumed.increment()
        // Decoding needs no lock: it happens before the one transition.
        let decoded = decoder.decode(message.value)
        let (_, action) = state.withLock { $0.accept(message, decoded: decoded, receivedAt: .now) }
        guard case .accepted(let key, let fetch, let buffered) = action else {
            // Not held: its credit goes straight back.
            consumer.returnCredits(1)
            return
        }
        apply(fetch)
        metrics.buffered.record(buffered)
        if let key {
            chains.addTask { await self.runChain(key) }
        }
    }

    /// Runs one account's commands in offset order until its queue is empty.
    private func runChain(_ key: String) async {
        var finished: WorkItem?
        var completed = false
        while true {
            let step = state.withLock { $0.step(chain: key, finished: finished, completed: completed, now: .now) }
            consumer.returnCredits(step.released)
            apply(step.fetch)
            for waiter in step.resume { waiter.resume() }
            metrics.buffered.record(step.buffered)
            guard let item = step.next else { return }
            completed = await process(item)
            finished = item
        }
    }

    /// Handles one command start to finish. True once its result (and DLQ
    /// copy) is acknowledged; false when abandoned (shutdown, revocation):
    /// it then stays uncommitted and is redelivered.
    private func process(_ item: WorkItem) async -> Bool {
        var result: CommandResult
        switch item.decoded {
        case .failure(let rejection):
            if rejection.isUndecodable {
                guard await publisher.publishDeadLetter(item, reason: rejection.dlqReason) else { return false }
            }
            result = .rejected(rejection, item: item, worker: settings.workerID, token: settings.useapiToken)
        case .success(let command):
            guard let execution = await executor.execute(command, item: item) else { return false }
            result = .executed(execution, command: command, item: item, worker: settings.workerID, token: settings.useapiToken)
        }
        result.durationMs = (ContinuousClock.now - item.receivedAt).milliseconds
        // Both records in flight at once: one wait for the brokers, not two.
        // The account's next command starts only after both are acknowledged.
        async let statusPublished = publisher.publishStatus(result)
        let resultPublished = await publisher.publishResult(result, item: item)
        guard await statusPublished, resultPublished else { return false }
        metrics.result(status: result.status, code: result.code, type: result.type, stage: result.stage).increment()
        logProcessed(result, item: item)
        return true
    }

    private func logProcessed(_ result: CommandResult, item: WorkItem) {
        var metadata: Logger.Metadata = [
            "command.id": .string(result.commandId ?? ""),
            "command.type": .string(result.type.rawValue),
            "account.email": .string(result.email ?? ""),
            "kafka.partition": .stringConvertible(item.message.partition),
            "kafka.offset": .stringConvertible(item.message.offset),
            "result.status": .string(result.status.rawValue),
            "result.code": .stringConvertible(result.code),
            "result.attempts": .stringConvertible(result.attempts),
            "result.duration_ms": .stringConvertible(result.durationMs),
        ]
        if result.status == .error {
            // Already masked and cut (CommandResult.fail): useapi's words are safe to log.
            metadata["result.stage"] = .string(result.stage?.rawValue ?? "")
            metadata["result.error"] = .string(result.error ?? "")
        }
        logger.info("command processed", metadata: metadata)
    }

    // MARK: Request rate

    /// This worker's share of `MAX_REQUESTS_PER_SECOND`: the fraction of the
    /// command topic's partitions assigned to it, recomputed on every
    /// rebalance, less 5 % so that the group, one call of slack per replica
    /// included, stays under the limit in any window. Every call counts,
    /// retries and probes too.
    private func updateRequestRate() async {
        guard settings.maxRequestsPerSecond > 0 else { return }
        let assigned = state.withLock { $0.assigned.filter { $0.topic == settings.commandTopic }.count }
        let total = await consumer.partitionCount(of: settings.commandTopic)
        // Unknown partition count: the whole limit for each worker would
        // break it, so take the smallest share that makes progress.
        let share = total.map { settings.maxRequestsPerSecond * Double(assigned) / Double($0) } ?? settings.maxRequestsPerSecond / 100
        let rate = share * 0.95
        state.withLock { $0.setRequestRate(assigned == 0 ? nil : rate) }
        metrics.requestRateLimit.record(assigned == 0 ? 0 : rate)
        logger.info(
            "request rate share",
            metadata: [
                "rate.group_per_second": "\(settings.maxRequestsPerSecond)", "rate.worker_per_second": "\(rate)",
                "kafka.partitions.assigned": "\(assigned)", "kafka.partitions.total": "\(total.map(String.init) ?? "unknown")",
            ]
        )
    }

    // MARK: Rebalancing

    private func revoke(_ partitions: [KafkaTopicPartition], lost: Bool) async {
        state.withLock { $0.beginRevocation(partitions) }
        let quiet = await wait(for: .partitionsQuiet(Set(partitions)), timeout: settings.shutdownTimeout)
        if !quiet {
            logger.warning(
                "revoked partitions still have commands in flight: they make no further call and report nothing",
                metadata: ["kafka.partitions": "\(partitions.sorted())"]
            )
        }
        if !lost {
            let commits = state.withLock { $0.takeCommits(for: Set(partitions), force: true) }
            await commitSync(commits, reason: "revocation")
        }
        let waiters = state.withLock { $0.finishRevocation(partitions) }
        for waiter in waiters { waiter.resume() }
    }

    // MARK: Fetching

    /// The only place fetching is paused or resumed: a non-blocking request
    /// the consumer's poll thread applies (newest generation wins).
    private func apply(_ change: WorkerStateMachine.FetchChange?) {
        guard let change else { return }
        consumer.setFetchingPaused(change.paused, generation: change.generation)
        logger.info(change.paused ? "fetching paused" : "fetching resumed", metadata: ["fetch.generation": "\(change.generation)"])
    }

    // MARK: Offsets

    /// librdkafka raises a fatal error on its own threads; a worker with no
    /// record to publish at that moment must notice it too.
    private func watchForFatalErrors() async {
        while !Task.isCancelled {
            if let error = producer.fatalError ?? consumer.fatalError {
                failFatally(error)
                return
            }
            try? await Task.sleep(for: .milliseconds(500))
        }
    }

    private func commitPeriodically() async {
        var reportedFailures = 0
        while !Task.isCancelled {
            try? await Task.sleep(for: settings.commitInterval)
            // Refusals of asynchronous commits arrive in librdkafka's callback.
            let failed = consumer.failedCommits
            if failed > reportedFailures {
                metrics.commitFailures.increment(by: Int64(failed - reportedFailures))
                reportedFailures = failed
            }
            let commits = state.withLock { $0.takeCommits() }
            guard !commits.isEmpty else { continue }
            do {
                try consumer.commitAsync(commits)
                metrics.commitsAsync.increment()
            } catch {
                metrics.commitFailures.increment()
                logger.warning("offset commit failed", metadata: ["kafka.error.name": "\(error.name)"])
            }
        }
    }

    private func commitSync(_ commits: [KafkaTopicPartition: Int64], reason: String) async {
        guard !commits.isEmpty else { return }
        do {
            try await consumer.commit(commits)
            metrics.commitsSync.increment()
            logger.info(
                "offsets committed",
                metadata: [
                    "commit.reason": "\(reason)", "kafka.offsets": "\(commits.sorted { $0.key < $1.key }.map { "\($0.key)=\($0.value)" })",
                ]
            )
        } catch {
            metrics.commitFailures.increment()
            logger.warning("offset commit failed", metadata: ["commit.reason": "\(reason)", "kafka.error.name": "\(error.name)"])
        }
    }

    private func reportLagPeriodically() async {
        while !Task.isCancelled {
            let lags = await consumer.lag()
            // Partitions revoked meanwhile lose their series.
            metrics.recordLag(lags, assigned: consumer.assignment)
            try? await Task.sleep(for: settings.lagInterval)
        }
    }

    // MARK: Shutdown

    private func drain() async {
        // Queued commands below finished ones still run (so the final commit
        // covers those), but none starts later than a request timeout before
        // the drain's deadline.
        let closeGapsUntil = ContinuousClock.now + settings.shutdownTimeout - settings.requestTimeout
        let (fetch, waiters) = state.withLock { $0.beginDraining(closeGapsUntil: closeGapsUntil) }
        apply(fetch)
        for waiter in waiters { waiter.resume() }
        logger.info(
            "draining",
            metadata: ["worker.buffered": "\(health.buffered)", "shutdown.timeout_ms": "\(settings.shutdownTimeout.milliseconds)"]
        )
        if !(await wait(for: .idle, timeout: settings.shutdownTimeout)) {
            logger.warning(
                "shutdown timeout reached: abandoning unfinished commands (they are not committed and will be redelivered)",
                metadata: ["worker.buffered": "\(health.buffered)"]
            )
        }
    }

    /// Commits what is acknowledged, leaves the group and flushes the
    /// producer, each within a deadline, so a broker outage cannot hold the
    /// exit past `SHUTDOWN_TIMEOUT_MS` + 10 s: what is abandoned is logged
    /// and, being uncommitted, redelivered to the next owner.
    private func commitAndClose() async {
        let commits = state.withLock { $0.takeCommits(force: true) }
        let committed = await withDeadline(.seconds(3)) { await self.commitSync(commits, reason: "shutdown") }
        if !committed {
            logger.warning(
                "shutdown: the final commit did not complete in 3 s; its commands will be redelivered",
                metadata: ["kafka.offsets": "\(commits.sorted { $0.key < $1.key }.map { "\($0.key)=\($0.value)" })"]
            )
        }
        if !(await withDeadline(.seconds(3)) { await self.consumer.close() }) {
            logger.warning("shutdown: leaving the consumer group did not complete in 3 s; abandoning it")
        }
        // Every committed offset's records are acknowledged already: what is
        // still queued belongs to uncommitted commands, redelivered anyway.
        await producer.close(timeout: failedFatally.load(ordering: .relaxed) ? .zero : .seconds(1))
    }

    /// Runs `operation` for at most `timeout`; true when it finished. An
    /// unfinished operation is left running detached (its blocking work is
    /// on librdkafka's threads) and the caller goes on.
    private func withDeadline(_ timeout: Duration, _ operation: @escaping @Sendable () async -> Void) async -> Bool {
        let finished = AsyncStream<Bool>.makeStream()
        Task {
            await operation()
            finished.continuation.yield(true)
        }
        Task {
            try? await Task.sleep(for: timeout)
            finished.continuation.yield(false)
        }
        for await result in finished.stream {
            finished.continuation.finish()
            return result
        }
        return false
    }

    /// Waits until `condition` holds, at most `timeout`. Returns whether it held.
    private func wait(for condition: WorkerStateMachine.Condition, timeout: Duration) async -> Bool {
        let id = state.withLock { $0.makeWaiterID() }
        return await withTaskGroup(of: Bool.self) { group in
            group.addTask {
                await withCheckedContinuation { continuation in
                    let registered = self.state.withLock { $0.wait(for: condition, id: id, continuation: continuation) }
                    if !registered { continuation.resume() }
                }
                return true
            }
            group.addTask {
                try? await Task.sleep(for: timeout)
                return false
            }
            let held = await group.next() ?? false
            if !held {
                state.withLock { $0.cancelWaiter(id: id) }?.resume()
            }
            group.cancelAll()
            await group.waitForAll()
            return held
        }
    }
}

// MARK: - CallGate

extension AccountWorkerService: CallGate {
    func acquireCall(for item: WorkItem) async -> CallTicket? {
        while !Task.isCancelled {
            guard await slots.acquire() else { return nil }
            switch state.withLock({ $0.permitCall(for: item, now: .now) }) {
            case (.call(let isProbe), let id?):
                return CallTicket(id: id, isProbe: isProbe)
            case (.call, nil), (.abandon, _):
                slots.release()
                return nil
            case (.wait(let delay), _):
                slots.release()
                do {
                    try await Task.sleep(for: delay)
                } catch {
                    return nil
                }
            }
        }
        return nil
    }

    func endCall(_ ticket: CallTicket, email: String, outage: Bool?, rateLimited: Bool) {
        let (change, fetch, concurrency) = state.withLock {
            let (change, fetch) = $0.callEnded(
                ticket: ticket.id,
                email: email,
                outage: outage,
                wasProbe: ticket.isProbe,
                rateLimited: rateLimited,
                now: .now
            )
            return (change, fetch, $0.takeConcurrencyChange())
        }
        slots.release()
        apply(fetch)
        if let concurrency {
            metrics.concurrencyLimit.record(concurrency)
            if rateLimited {
                logger.info("useapi answered 429: fewer calls at once", metadata: ["concurrency.limit": "\(concurrency)"])
            }
        }
        switch change {
        case .opened?:
            metrics.breakerOpen.record(1)
            metrics.breakerOpenings.increment()
            logger.warning(
                "circuit opened: useapi looks down; pausing calls and fetching, probing",
                metadata: ["breaker.threshold": "\(settings.breakerThreshold)"]
            )
        case .closed?:
            metrics.breakerOpen.record(0)
            logger.info("circuit closed: useapi answers again; resuming")
        case nil:
            break
        }
    }
}

/// The worker's state at one moment, read under its lock.
public struct WorkerHealthSnapshot: Sendable {
    public var assignedPartitions: Int
    public var breakerOpen: Bool
    public var buffered: Int
    public var isShuttingDown: Bool
}

/// What the health endpoints answer.
public struct WorkerHealthReport: Sendable, Encodable {
    public var alive: Bool
    public var ready: Bool
    public var reasons: [String]
    public var assignedPartitions: Int
    public var breakerOpen: Bool
    public var buffered: Int
}

/// The version reported in `User-Agent` and logs.
public let accountWorkerVersion = "0.1.0"
