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
        self.state = Mutex(WorkerStateMachine(maxBuffered: settings.maxBufferedCommands, breakerThreshold: settings.breakerThreshold))
        self.slots = AsyncSemaphore(permits: settings.maxInFlight)
        self.decoder = CommandDecoder(maxCommandBytes: settings.maxCommandBytes)
        self.policy = RetryPolicy(
            maxAttempts: settings.maxAttempts,
            baseDelay: settings.retryBaseDelay,
            maxDelay: settings.retryMaxDelay,
            retryAfterCap: settings.retryAfterCap
        )
        self.publisher = ResultPublisher(
            producer: producer,
            resultTopic: settings.resultTopic,
            dlqTopic: settings.dlqTopic,
            metrics: metrics,
            logger: logger
        )
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
        let alive = sincePoll < .seconds(30)
        let snapshot = health
        var reasons: [String] = []
        if !alive { reasons.append("the Kafka poll loop has not run for \(sincePoll.milliseconds) ms") }
        if !consumer.hasJoinedGroup { reasons.append("not a member of consumer group \(settings.groupID) yet") }
        if snapshot.isShuttingDown { reasons.append("shutting down") }
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
        let (stopRequests, requestStop) = AsyncStream<Void>.makeStream()
        await withGracefulShutdownHandler {
            await withTaskGroup(of: Void.self) { group in
                group.addTask {
                    await self.consume()
                    requestStop.finish()
                }
                group.addTask { await self.commitPeriodically() }
                group.addTask { await self.reportLagPeriodically() }
                for await _ in stopRequests {}
                shuttingDown.store(true, ordering: .relaxed)
                if !Task.isCancelled {
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
                    case .partitionsRevoked(let partitions, let lost):
                        await revoke(partitions, lost: lost)
                    case .endOfPartition:
                        break
                    }
                    if Task.isCancelled && state.withLock({ $0.draining }) { break }
                }
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
        guard case .accepted(let key, let fetch, let buffered) = action else { return }
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
            let step = state.withLock { $0.step(chain: key, finished: finished, completed: completed) }
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
        guard await publisher.publishResult(result, item: item) else { return false }
        metrics.result(status: result.status, code: result.code).increment()
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

    private func commitPeriodically() async {
        while !Task.isCancelled {
            try? await Task.sleep(for: settings.commitInterval)
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
            for (partition, lag) in consumer.lag() {
                metrics.lag(topic: partition.topic, partition: partition.partition).record(lag)
            }
            try? await Task.sleep(for: settings.lagInterval)
        }
    }

    // MARK: Shutdown

    private func drain() async {
        let (fetch, waiters) = state.withLock { $0.beginDraining() }
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

    private func commitAndClose() async {
        let commits = state.withLock { $0.takeCommits(force: true) }
        await commitSync(commits, reason: "shutdown")
        await consumer.close()
        do {
            try await producer.flush(timeout: .seconds(10))
        } catch {
            logger.warning("results still unacknowledged at exit", metadata: ["kafka.error.name": "\(error.name)"])
        }
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
    func acquireCall(for item: WorkItem) async -> Bool? {
        while !Task.isCancelled {
            guard await slots.acquire() else { return nil }
            switch state.withLock({ $0.permitCall(for: item, now: .now) }) {
            case .call(let isProbe):
                return isProbe
            case .abandon:
                slots.release()
                return nil
            case .wait(let delay):
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

    func endCall(for item: WorkItem, email: String, outage: Bool?, wasProbe: Bool) {
        let (change, fetch) = state.withLock { $0.callEnded(email: email, outage: outage, wasProbe: wasProbe, now: .now) }
        slots.release()
        apply(fetch)
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
