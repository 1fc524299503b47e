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
/// On graceful shutdown it stops fetching, lets in-flight work finish within
/// `shutdownTimeout` (abandoning the rest unreported and uncommitted, so it
/// is redelivered), commits, and leaves the group.
public final class AccountWorkerService: Service, Sendable {
    let settings: WorkerSettings
    let consumer: KafkaConsumer
    let producer: KafkaProducer
    let useapi: UseAPIClient
    let logger: Logger
    let metrics: WorkerMetrics
    let state: Mutex<WorkerState>
    let breaker: Mutex<CircuitBreaker>
    let slots: AsyncSemaphore
    let decoder: CommandDecoder
    let policy: RetryPolicy
    /// Serialises pause/resume calls; holds whether fetching is paused now.
    private let fetching = Mutex(false)
    private let failure = Mutex<(any Error)?>(nil)
    /// Readiness as seen by health checks.
    public let health = WorkerHealth()

    /// Alive: the consumer's poll thread turned within the last 30 s.
    /// Ready: alive, the group gave this member an assignment, and not shutting down.
    public func healthReport() -> WorkerHealthReport {
        let sincePoll = consumer.timeSinceLastPoll
        let alive = sincePoll < .seconds(30)
        var reasons: [String] = []
        if !alive { reasons.append("the Kafka poll loop has not run for \(sincePoll.milliseconds) ms") }
        if !consumer.hasJoinedGroup { reasons.append("not a member of consumer group \(settings.groupID) yet") }
        if health.isShuttingDown { reasons.append("shutting down") }
        return WorkerHealthReport(
            alive: alive,
            ready: reasons.isEmpty,
            reasons: reasons,
            assignedPartitions: health.assignedPartitions,
            breakerOpen: breaker.withLock { $0.state == .open },
            buffered: state.withLock { $0.buffered }
        )
    }

    public init(
        settings: WorkerSettings,
        consumer: KafkaConsumer,
        producer: KafkaProducer,
        useapi: UseAPIClient,
        logger: Logger,
        metricsFactory: any MetricsFactory = MetricsSystem.factory
    ) {
        self.metrics = WorkerMetrics(factory: metricsFactory, workerID: settings.workerID)
        self.settings = settings
        self.consumer = consumer
        self.producer = producer
        self.useapi = useapi
        self.logger = logger
        self.state = Mutex(WorkerState(maxBuffered: settings.maxBufferedCommands))
        self.breaker = Mutex(CircuitBreaker(threshold: settings.breakerThreshold))
        self.slots = AsyncSemaphore(permits: settings.maxInFlight)
        self.decoder = CommandDecoder(maxCommandBytes: settings.maxCommandBytes)
        self.policy = RetryPolicy(
            maxAttempts: settings.maxAttempts,
            baseDelay: settings.retryBaseDelay,
            maxDelay: settings.retryMaxDelay,
            retryAfterCap: settings.retryAfterCap
        )
    }

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
                health.setShuttingDown()
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
                        let paused = state.withLock { state in
                            _ = state.assign(partitions)
                            return state.paused
                        }
                        health.setAssigned(state.withLock { $0.assigned.count })
                        if paused { try? consumer.pause(partitions) }
                    case .partitionsRevoked(let partitions, let lost):
                        await revoke(partitions, lost: lost)
                        health.setAssigned(state.withLock { $0.assigned.count })
                    case .endOfPartition:
                        break
                    }
                    if state.withLock({ $0.draining }) && Task.isCancelled { break }
                }
            } catch {
                logger.error("Kafka consumer failed", metadata: ["error": "\(error)"])
                failure.withLock { $0 = $0 ?? error }
            }
        }
    }

    private func accept(_ message: KafkaMessage, chains: inout DiscardingTaskGroup) {
        metrics.consumed.increment()
        let item = WorkItem(
            message: message,
            decoded: decoder.decode(message.value),
            epoch: state.withLock { $0.epoch(message.topicPartition) },
            receivedAt: .now
        )
        switch state.withLock({ $0.accept(item) }) {
        case .ignore:
            return
        case .queued(let fetch):
            syncFetching(fetch)
        case .startChain(let key, let fetch):
            syncFetching(fetch)
            chains.addTask { await self.runChain(key) }
        }
        metrics.buffered.record(state.withLock { $0.buffered })
    }

    /// Runs one account's commands in offset order until its queue is empty.
    private func runChain(_ key: String) async {
        while true {
            let (next, fetch, waiters) = state.withLock { $0.nextItem(chain: key) }
            syncFetching(fetch)
            for waiter in waiters { waiter.resume() }
            guard let item = next else { return }
            let completed = await process(item)
            let (fetchAfter, waitersAfter) = state.withLock { $0.finish(item, completed: completed) }
            syncFetching(fetchAfter)
            for waiter in waitersAfter { waiter.resume() }
            metrics.buffered.record(state.withLock { $0.buffered })
        }
    }

    // MARK: Rebalancing

    private func revoke(_ partitions: [KafkaTopicPartition], lost: Bool) async {
        state.withLock { $0.beginRevocation(partitions) }
        let quiet = await wait(for: .partitionsQuiet(Set(partitions)), timeout: settings.shutdownTimeout)
        if !quiet {
            logger.warning(
                "revoked partitions still have commands in flight; their results may be reported twice",
                metadata: ["kafka.partitions": "\(partitions.sorted())"]
            )
        }
        if !lost {
            let commits = state.withLock { $0.takeCommits(for: Set(partitions), force: true) }
            await commitSync(commits, reason: "revocation")
        }
        state.withLock { $0.finishRevocation(partitions) }
    }

    // MARK: Fetching

    /// Brings the consumer's pause state in line with the worker state.
    /// Idempotent, so concurrent callers cannot leave it inverted.
    func syncFetching(_ hint: WorkerState.FetchAction) {
        guard hint != .none else { return }
        fetching.withLock { applied in
            let (paused, assigned) = state.withLock { ($0.paused, $0.assigned) }
            guard paused != applied else { return }
            applied = paused
            let partitions = Array(assigned)
            do {
                if paused { try consumer.pause(partitions) } else { try consumer.resume(partitions) }
                logger.info(
                    paused ? "fetching paused" : "fetching resumed",
                    metadata: ["worker.buffered": "\(state.withLock { $0.buffered })"]
                )
            } catch {
                logger.warning("pause/resume failed", metadata: ["error": "\(error)"])
            }
        }
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
        let fetch = state.withLock { $0.beginDraining() }
        syncFetching(fetch)
        let buffered = state.withLock { $0.buffered }
        logger.info(
            "draining",
            metadata: ["worker.buffered": "\(buffered)", "shutdown.timeout_ms": "\(settings.shutdownTimeout.milliseconds)"]
        )
        if !(await wait(for: .idle, timeout: settings.shutdownTimeout)) {
            logger.warning(
                "shutdown timeout reached: abandoning unfinished commands (they are not committed and will be redelivered)",
                metadata: ["worker.buffered": "\(state.withLock { $0.buffered })"]
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
    private func wait(for condition: WorkerState.Condition, timeout: Duration) async -> Bool {
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

/// The version reported in `User-Agent` and logs.
public let accountWorkerVersion = "0.1.0"
