internal import CRdKafka
import Dispatch
import Foundation
import Logging
import Synchronization

/// Owns the librdkafka consumer and its poll thread.
final class RDKafkaConsumerCore: RDKafkaEventDelegate, @unchecked Sendable {
    let handle: RDKafkaHandle
    let logger: Logger
    let state: Mutex<ConsumerStateMachine>
    /// Wakes the poll thread: room in the buffer, a credit back, a revocation
    /// acknowledged, a fetch request, close.
    private let wake = PollThreadWaker()
    private let blockingQueue = DispatchQueue(label: "kafka.consumer.blocking")
    /// Lag queries block for up to their timeout: this consumer's own queue,
    /// never Swift's cooperative pool, the poll thread or another consumer's queries.
    let lagQueue = DispatchQueue(label: "kafka.consumer.lag")
    private let pollTimeoutMilliseconds: Int32
    /// `DispatchTime` uptime of the poll thread's last turn.
    let lastPollNanoseconds = Atomic<UInt64>(DispatchTime.now().uptimeNanoseconds)
    let joinedGroup = Atomic<Bool>(false)
    /// Commits that the coordinator refused, as reported by librdkafka's commit callback.
    let commitFailures = Atomic<Int>(0)

    init(configuration: KafkaConsumerConfiguration, logger: Logger) throws(KafkaError) {
        self.logger = logger
        self.pollTimeoutMilliseconds = Int32(clamping: configuration.pollTimeout.milliseconds)
        self.state = Mutex(
            ConsumerStateMachine(
                bufferLimit: configuration.eventBufferSize,
                credits: configuration.messageCredits,
                creditPauseDelay: configuration.creditPauseDelay
            )
        )
        self.handle = try RDKafkaHandle(
            type: RD_KAFKA_CONSUMER,
            properties: configuration.rdKafkaProperties,
            logger: logger
        ) { conf in
            rd_kafka_conf_set_rebalance_cb(conf, rdKafkaRebalanceCallback)
            rd_kafka_conf_set_offset_commit_cb(conf, rdKafkaOffsetCommitCallback)
        }
        handle.context.delegate = self
        // Serve every callback (errors, commits, rebalances) from the consumer queue.
        rd_kafka_poll_set_consumer(handle.pointer)

        let topics = configuration.topics.map { (KafkaTopicPartition(topic: $0, partition: RD_KAFKA_PARTITION_UA), offset: Int64(0)) }
        let err = withTopicPartitionList(topics) { rd_kafka_subscribe(handle.pointer, $0) }
        guard err == RD_KAFKA_RESP_ERR_NO_ERROR else {
            rd_kafka_consumer_close(handle.pointer)
            throw KafkaError(err, message: "cannot subscribe to \(configuration.topics)")
        }

        let thread = Thread { [self] in self.runPollLoop() }
        thread.name = "kafka-consumer-poll"
        thread.start()
    }

    // MARK: Poll thread

    private func runPollLoop() {
        let rk = handle.pointer
        loop: while true {
            lastPollNanoseconds.store(DispatchTime.now().uptimeNanoseconds, ordering: .relaxed)
            wake.reset()
            if let change = state.withLock({ $0.fetchReconciliation() }) {
                applyFetching(paused: change.paused, to: change.partitions)
            }
            switch state.withLock({ $0.nextPollAction(now: DispatchTime.now().uptimeNanoseconds) }) {
            case .close:
                break loop
            case .waitForRoom:
                _ = wake.wait(timeout: .now() + .milliseconds(100))
            case .waitForCredits(let nanoseconds):
                _ = wake.wait(timeout: .now() + .nanoseconds(Int(clamping: nanoseconds)))
            case .reconcile:
                continue
            case .poll:
                guard let message = rd_kafka_consumer_poll(rk, pollTimeoutMilliseconds) else { continue }
                handlePolled(message)
                rd_kafka_message_destroy(message)
            }
        }
        // Revocations during close run on this thread, in the rebalance
        // callback, and are not surfaced (the phase is no longer running).
        let err = rd_kafka_consumer_close(rk)
        if err != RD_KAFKA_RESP_ERR_NO_ERROR {
            logger.warning("Kafka consumer close failed", metadata: ["kafka.error.name": "\(String(cString: rd_kafka_err2name(err)))"])
        }
        let (waiter, closeWaiters, failure) = state.withLock { $0.closed() }
        if let failure {
            waiter?.resume(throwing: failure)
        } else {
            waiter?.resume(returning: nil)
        }
        for closeWaiter in closeWaiters { closeWaiter.resume() }
    }

    private func handlePolled(_ pointer: UnsafeMutablePointer<rd_kafka_message_t>) {
        let raw = pointer.pointee
        switch raw.err {
        case RD_KAFKA_RESP_ERR_NO_ERROR:
            deliver(.message(Self.makeMessage(pointer)))
        case RD_KAFKA_RESP_ERR__PARTITION_EOF:
            let partition = KafkaTopicPartition(topic: String(cString: rd_kafka_topic_name(raw.rkt)), partition: raw.partition)
            deliver(.endOfPartition(partition, offset: raw.offset))
        default:
            if let fatal = handle.fatalError {
                logger.error("Kafka consumer failed fatally", metadata: ["kafka.error.name": "\(fatal.name)"])
                state.withLock { $0.fail(fatal) }
                return
            }
            // Consumer errors are informational: librdkafka keeps retrying.
            logger.warning(
                "Kafka consumer error",
                metadata: [
                    "kafka.error.name": "\(String(cString: rd_kafka_err2name(raw.err)))",
                    "kafka.error.message": "\(String(cString: rd_kafka_err2str(raw.err)))",
                ]
            )
        }
    }

    private func deliver(_ event: KafkaConsumerEvent) {
        let waiter = state.withLock { $0.enqueue(event) }
        waiter?.resume(returning: event)
    }

    static func makeMessage(_ pointer: UnsafeMutablePointer<rd_kafka_message_t>) -> KafkaMessage {
        let raw = pointer.pointee
        let key = raw.key.map { Array(UnsafeRawBufferPointer(start: $0, count: raw.key_len)) }
        let value = raw.payload.map { Array(UnsafeRawBufferPointer(start: $0, count: raw.len)) }
        var headers: [KafkaHeader] = []
        var rawHeaders: OpaquePointer?
        if rd_kafka_message_headers(pointer, &rawHeaders) == RD_KAFKA_RESP_ERR_NO_ERROR, let rawHeaders {
            var index = 0
            var name: UnsafePointer<CChar>?
            var headerValue: UnsafeRawPointer?
            var size = 0
            while rd_kafka_header_get_all(rawHeaders, index, &name, &headerValue, &size) == RD_KAFKA_RESP_ERR_NO_ERROR {
                headers.append(
                    KafkaHeader(
                        key: name.map { String(cString: $0) } ?? "",
                        value: headerValue.map { Array(UnsafeRawBufferPointer(start: $0, count: size)) }
                    )
                )
                index += 1
            }
        }
        var timestampType = RD_KAFKA_TIMESTAMP_NOT_AVAILABLE
        let timestamp = rd_kafka_message_timestamp(pointer, &timestampType)
        return KafkaMessage(
            topic: String(cString: rd_kafka_topic_name(raw.rkt)),
            partition: raw.partition,
            offset: raw.offset,
            key: key,
            value: value,
            headers: headers,
            timestampMilliseconds: timestamp >= 0 ? timestamp : nil
        )
    }

    /// Runs inside `rd_kafka_consumer_poll` (or close) on the poll thread.
    func rebalance(
        _ rk: OpaquePointer,
        _ err: rd_kafka_resp_err_t,
        _ partitions: UnsafeMutablePointer<rd_kafka_topic_partition_list_t>
    ) {
        let cooperative = String(cString: rd_kafka_rebalance_protocol(rk)) == "COOPERATIVE"
        let list = topicPartitions(partitions).map(\.0)
        switch err {
        case RD_KAFKA_RESP_ERR__ASSIGN_PARTITIONS:
            joinedGroup.store(true, ordering: .relaxed)
            if cooperative {
                if let error = rd_kafka_incremental_assign(rk, partitions) {
                    logger.error("Kafka incremental assign failed", metadata: ["kafka.error.name": "\(KafkaError(consuming: error).name)"])
                }
            } else {
                let assignErr = rd_kafka_assign(rk, partitions)
                if assignErr != RD_KAFKA_RESP_ERR_NO_ERROR {
                    logger.error("Kafka assign failed", metadata: ["kafka.error.name": "\(KafkaError(assignErr).name)"])
                }
            }
            // Cooperative rebalances often assign nothing new: not an event.
            guard !list.isEmpty else { return }
            // librdkafka keeps a partition's pause across unassign and a later
            // assign; a new partition joins the fetch state that applies now
            // (this runs on the poll thread, as the reconciliation does).
            let paused = state.withLock { $0.appliedPaused }
            let fetchErr = paused ? rd_kafka_pause_partitions(rk, partitions) : rd_kafka_resume_partitions(rk, partitions)
            if fetchErr != RD_KAFKA_RESP_ERR_NO_ERROR {
                logger.warning("Kafka pause/resume of new partitions failed", metadata: ["kafka.error.name": "\(KafkaError(fetchErr).name)"])
            }
            logger.info("Kafka partitions assigned", metadata: ["kafka.partitions": "\(list.sorted())"])
            deliver(.partitionsAssigned(list))

        case RD_KAFKA_RESP_ERR__REVOKE_PARTITIONS:
            let lost = rd_kafka_assignment_lost(rk) != 0
            if lost { joinedGroup.store(false, ordering: .relaxed) }
            guard !list.isEmpty else {
                if !cooperative { rd_kafka_assign(rk, nil) }
                return
            }
            logger.info(
                "Kafka partitions revoked",
                metadata: ["kafka.partitions": "\(list.sorted())", "kafka.lost": "\(lost)"]
            )
            deliver(.partitionsRevoked(list, lost: lost))
            // Hold the revocation until Swift asks for its next event (it has
            // drained and committed by then) or the consumer closes.
            while state.withLock({ $0.mustWaitForRevocation }) {
                lastPollNanoseconds.store(DispatchTime.now().uptimeNanoseconds, ordering: .relaxed)
                _ = wake.wait(timeout: .now() + .milliseconds(100))
            }
            if cooperative {
                if let error = rd_kafka_incremental_unassign(rk, partitions) {
                    logger.error(
                        "Kafka incremental unassign failed",
                        metadata: ["kafka.error.name": "\(KafkaError(consuming: error).name)"]
                    )
                }
            } else {
                rd_kafka_assign(rk, nil)
            }
            state.withLock { $0.revoked(list) }

        default:
            // The assignment is gone: tell the application, as for a lost one.
            logger.error("Kafka rebalance failed", metadata: ["kafka.error.name": "\(KafkaError(err).name)"])
            rd_kafka_assign(rk, nil)
            let held = state.withLock { $0.assignment }
            if !held.isEmpty {
                joinedGroup.store(false, ordering: .relaxed)
                deliver(.partitionsRevoked(Array(held), lost: true))
            }
            state.withLock { $0.revoked(Array(held)) }
        }
    }

    func committed(_ err: rd_kafka_resp_err_t, _ offsets: UnsafeMutablePointer<rd_kafka_topic_partition_list_t>?) {
        guard err != RD_KAFKA_RESP_ERR_NO_ERROR, err != RD_KAFKA_RESP_ERR__NO_OFFSET else { return }
        commitFailures.add(1, ordering: .relaxed)
        logger.warning("Kafka offset commit failed", metadata: ["kafka.error.name": "\(KafkaError(err).name)"])
    }

    // MARK: Iterator

    func nextEvent() async throws -> KafkaConsumerEvent? {
        if state.withLock({ $0.acknowledgeRevocation() }) {
            wake.signal()
        }
        let event: KafkaConsumerEvent? = try await withTaskCancellationHandler {
            try await withCheckedThrowingContinuation { continuation in
                switch state.withLock({ $0.next(continuation) }) {
                case .event(let event): continuation.resume(returning: event)
                case .finished(let failure?): continuation.resume(throwing: failure)
                case .finished(nil): continuation.resume(returning: nil)
                case .suspended: break
                }
            }
        } onCancel: {
            state.withLock { $0.cancelWaiter() }?.resume(returning: nil)
        }
        // Taking an event may have made room for the poll thread.
        wake.signal()
        return event
    }

    // MARK: Operations

    func commitSync(_ offsets: [KafkaTopicPartition: Int64]) async throws(KafkaError) {
        guard !offsets.isEmpty else { return }
        let entries = offsets.map { ($0.key, offset: $0.value) }
        let result: Result<Void, KafkaError> = await withCheckedContinuation { continuation in
            blockingQueue.async { [self] in
                let rk = handle.pointer
                guard state.withLock({ $0.phase }) != .closed else {
                    continuation.resume(returning: .failure(.closed("consumer")))
                    return
                }
                let err = withTopicPartitionList(entries) { rd_kafka_commit(rk, $0, 0) }
                if err == RD_KAFKA_RESP_ERR_NO_ERROR || err == RD_KAFKA_RESP_ERR__NO_OFFSET {
                    continuation.resume(returning: .success(()))
                } else {
                    continuation.resume(returning: .failure(KafkaError(err, message: "offset commit failed")))
                }
            }
        }
        try result.get()
    }

    func commitAsync(_ offsets: [KafkaTopicPartition: Int64]) throws(KafkaError) {
        guard !offsets.isEmpty else { return }
        guard state.withLock({ $0.phase }) != .closed else { throw .closed("consumer") }
        let entries = offsets.map { ($0.key, offset: $0.value) }
        let err = withTopicPartitionList(entries) { rd_kafka_commit(handle.pointer, $0, 1) }
        guard err == RD_KAFKA_RESP_ERR_NO_ERROR else { throw KafkaError(err, message: "offset commit failed") }
    }

    func returnCredits(_ count: Int) {
        guard count > 0, state.withLock({ $0.returnCredits(count) }) else { return }
        wake.signal()
        rd_kafka_yield(handle.pointer)
    }

    func setFetchingPaused(_ paused: Bool, generation: UInt64) {
        guard state.withLock({ $0.requestFetching(paused: paused, generation: generation) }) else { return }
        wake.signal()
        // Interrupt a poll in progress so the change applies now, not after its timeout.
        rd_kafka_yield(handle.pointer)
    }

    /// Poll thread only.
    private func applyFetching(paused: Bool, to partitions: [KafkaTopicPartition]) {
        do {
            try pauseResume(partitions, pause: paused)
            logger.debug(paused ? "Kafka fetching paused" : "Kafka fetching resumed", metadata: ["kafka.partitions": "\(partitions.count)"])
        } catch {
            logger.warning("Kafka pause/resume failed", metadata: ["kafka.error.name": "\(error.name)"])
        }
    }

    func pauseResume(_ partitions: [KafkaTopicPartition], pause: Bool) throws(KafkaError) {
        guard !partitions.isEmpty else { return }
        guard state.withLock({ $0.phase }) != .closed else { throw .closed("consumer") }
        let entries = partitions.map { ($0, offset: Int64(RD_KAFKA_OFFSET_INVALID)) }
        let failed: KafkaError? = withTopicPartitionList(entries) { list in
            let err = pause ? rd_kafka_pause_partitions(handle.pointer, list) : rd_kafka_resume_partitions(handle.pointer, list)
            if err != RD_KAFKA_RESP_ERR_NO_ERROR { return KafkaError(err) }
            if let bad = topicPartitions(list).first(where: { $0.error != RD_KAFKA_RESP_ERR_NO_ERROR }) {
                return KafkaError(bad.error, message: "\(pause ? "pause" : "resume") \(bad.0)")
            }
            return nil
        }
        if let failed { throw failed }
    }

    func close() async {
        await withCheckedContinuation { (continuation: CheckedContinuation<Void, Never>) in
            switch state.withLock({ $0.close(continuation) }) {
            case .alreadyClosed: continuation.resume()
            case .wait: wake.signal()
            }
        }
    }

    func requestClose() {
        state.withLock { $0.requestClose() }
        wake.signal()
    }
}

private let rdKafkaRebalanceCallback:
    @convention(c) (
        OpaquePointer?, rd_kafka_resp_err_t, UnsafeMutablePointer<rd_kafka_topic_partition_list_t>?,
        UnsafeMutableRawPointer?
    ) -> Void = { rk, err, partitions, opaque in
        guard let rk, let partitions else { return }
        guard let delegate = RDKafkaCallbackContext.from(opaque)?.delegate else {
            // No Swift owner left: complete the rebalance so librdkafka can proceed.
            rd_kafka_assign(rk, nil)
            return
        }
        delegate.rebalance(rk, err, partitions)
    }

private let rdKafkaOffsetCommitCallback:
    @convention(c) (
        OpaquePointer?, rd_kafka_resp_err_t, UnsafeMutablePointer<rd_kafka_topic_partition_list_t>?,
        UnsafeMutableRawPointer?
    ) -> Void = { _, err, offsets, opaque in
        RDKafkaCallbackContext.from(opaque)?.delegate?.committed(err, offsets)
    }

/// Wakes the poll thread without letting wake-ups pile up: however often it
/// is signalled between two turns, the thread wakes once.
final class PollThreadWaker: Sendable {
    private let semaphore = DispatchSemaphore(value: 0)
    private let pending = Atomic<Bool>(false)

    func signal() {
        if !pending.exchange(true, ordering: .acquiringAndReleasing) {
            semaphore.signal()
        }
    }

    /// At the start of a poll-thread turn: forget wake-ups already seen.
    func reset() {
        // Drain first: a signal between the two steps then stays counted.
        while semaphore.wait(timeout: .now()) == .success {}
        pending.store(false, ordering: .releasing)
    }

    /// Sleeps until signalled or `timeout`; a signal racing the return is
    /// at worst seen one timeout later.
    func wait(timeout: DispatchTime) -> DispatchTimeoutResult {
        let result = semaphore.wait(timeout: timeout)
        pending.store(false, ordering: .releasing)
        return result
    }
}
