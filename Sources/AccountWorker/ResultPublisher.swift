import CoreMetrics
import Kafka
import Logging
import Synchronization

/// Publishes a command's records, each until the brokers acknowledge it:
/// the DLQ copy of an undecodable message, then its result. The command's
/// offset may be committed only once both are acknowledged.
///
/// Kafka's refusals are told apart: a transient one (brokers down, a leader
/// moving, an ACL being fixed) is waited out; one that concerns the record
/// itself (too large, invalid) would recur for ever, so a degraded copy is
/// published instead, once; a fatal one (the idempotent producer fenced or
/// out of sequence) stops the worker through `onFatal`.
final class ResultPublisher: Sendable {
    let producer: KafkaProducer
    let resultTopic: String
    /// nil: dead letters are not kept.
    let dlqTopic: String?
    /// nil: no account status topic.
    let statusTopic: String?
    let metrics: WorkerMetrics
    let logger: Logger
    /// Called once per fatal error; the worker stops consuming and calling useapi.
    let onFatal: @Sendable (KafkaError) -> Void
    /// Records being published, by number, with when each began: a record
    /// unacknowledged for long (brokers down: librdkafka keeps retrying
    /// inside `send`) makes the worker not ready.
    private let outstanding = Mutex<(next: Int, started: [Int: ContinuousClock.Instant])>((0, [:]))

    /// When the oldest record still unacknowledged began publishing.
    var oldestUnacknowledged: ContinuousClock.Instant? {
        outstanding.withLock { $0.started.values.min() }
    }

    init(
        producer: KafkaProducer,
        resultTopic: String,
        dlqTopic: String?,
        statusTopic: String?,
        metrics: WorkerMetrics,
        logger: Logger,
        onFatal: @escaping @Sendable (KafkaError) -> Void
    ) {
        self.producer = producer
        self.resultTopic = resultTopic
        self.dlqTopic = dlqTopic
        self.statusTopic = statusTopic
        self.metrics = metrics
        self.logger = logger
        self.onFatal = onFatal
    }

    /// What a DLQ copy keeps of the original at most when it must be degraded.
    static let degradedKeyBytes = 4096
    static let degradedHeaderBytes = 16 * 1024

    /// Publishes the DLQ copy of `item`'s message (the `dlq-*` headers, then
    /// the original key, value and headers). True when acknowledged or when
    /// there is no DLQ; false when abandoned (cancelled, or a fatal error).
    func publishDeadLetter(_ item: WorkItem, reason: String) async -> Bool {
        guard let dlqTopic else { return true }
        let message = item.message
        // The worker's headers come first, so a reader taking the first
        // `dlq-source-offset` never gets one forged by the original record.
        let dlqHeaders = [
            KafkaHeader(key: "dlq-source-topic", value: message.topic),
            KafkaHeader(key: "dlq-source-partition", value: String(message.partition)),
            KafkaHeader(key: "dlq-source-offset", value: String(message.offset)),
            KafkaHeader(key: "dlq-reason", value: reason),
        ]
        let full = KafkaProducerMessage(topic: dlqTopic, key: message.key, value: message.value, headers: dlqHeaders + message.headers)
        let published = await publish(full, what: "dead letter") {
            // The value does not fit: the copy says so and keeps what is small.
            let headerBytes = message.headers.reduce(0) { $0 + $1.key.utf8.count + ($1.value?.count ?? 0) }
            return KafkaProducerMessage(
                topic: dlqTopic,
                key: (message.key?.count ?? 0) <= Self.degradedKeyBytes ? message.key : nil,
                value: nil,
                headers: dlqHeaders + [KafkaHeader(key: "dlq-truncated", value: "true")]
                    + (headerBytes <= Self.degradedHeaderBytes ? message.headers : [])
            )
        }
        if published { metrics.dlq.increment() }
        return published
    }

    /// Publishes `result`, keyed by its email (or the command's key when
    /// the email was unreadable). False when abandoned.
    func publishResult(_ result: CommandResult, item: WorkItem) async -> Bool {
        let traceparent = TraceParent.validated(item.message.headers.string(for: "traceparent"))
        let message = result.producerMessage(topic: resultTopic, fallbackKey: item.message.key, traceparent: traceparent)
        return await publish(message, what: "result") {
            // Texts cut shorter, no traceparent, the key only if small.
            var degraded = result
            degraded.degrade()
            var copy = degraded.producerMessage(topic: resultTopic, fallbackKey: nil, traceparent: nil)
            if (copy.key?.count ?? 0) > Self.degradedKeyBytes { copy.key = nil }
            return copy
        }
    }

    /// Publishes the account's new state to the status topic, alongside its
    /// result and in the same per-account order (the chain waits for both).
    /// True when acknowledged, or when there is nothing to publish.
    func publishStatus(_ result: CommandResult) async -> Bool {
        guard let statusTopic, let record = result.statusRecord else { return true }
        let message = KafkaProducerMessage(
            topic: statusTopic,
            key: record.key,
            value: record.value,
            headers: record.value == nil ? [] : [KafkaHeader(key: "content-type", value: "application/json")]
        )
        return await publish(message, what: "account status") {
            var degraded = result
            degraded.degrade()
            let copy = degraded.statusRecord
            return KafkaProducerMessage(topic: statusTopic, key: copy?.key, value: copy?.value)
        }
    }

    /// Sends until acknowledged. Transient errors are waited out (the
    /// command's offset cannot be committed before); a permanent refusal of
    /// the record sends `degraded()` instead, once, and if that is refused
    /// for good too the record is given up (logged and counted) so the
    /// partition moves on. False when cancelled or on a fatal error.
    private func publish(
        _ message: KafkaProducerMessage,
        what: String,
        degraded: () -> KafkaProducerMessage
    ) async -> Bool {
        var message = message
        var isDegraded = false
        var delay = Duration.milliseconds(500)
        let number = outstanding.withLock { state in
            state.next += 1
            state.started[state.next] = .now
            return state.next
        }
        defer { _ = outstanding.withLock { $0.started.removeValue(forKey: number) } }
        while !Task.isCancelled {
            do {
                try await producer.send(message)
                if isDegraded { metrics.publishDegraded.increment() }
                return true
            } catch {
                metrics.publishFailures.increment()
                if error.isFatal {
                    logger.critical(
                        "Kafka producer failed fatally: no result can be published",
                        metadata: ["publish.what": "\(what)", "kafka.error.name": "\(error.name)"]
                    )
                    onFatal(error)
                    return false
                }
                if error.isPermanentForRecord {
                    if isDegraded {
                        metrics.publishDropped.increment()
                        logger.error(
                            "Kafka refused the degraded record too: given up so that the partition moves on",
                            metadata: ["publish.what": "\(what)", "kafka.topic": "\(message.topic)", "kafka.error.name": "\(error.name)"]
                        )
                        return true
                    }
                    logger.warning(
                        "Kafka refused the record for good: publishing a degraded copy",
                        metadata: ["publish.what": "\(what)", "kafka.topic": "\(message.topic)", "kafka.error.name": "\(error.name)"]
                    )
                    message = degraded()
                    isDegraded = true
                    continue
                }
                logger.error(
                    "publishing failed; retrying",
                    metadata: ["publish.what": "\(what)", "kafka.topic": "\(message.topic)", "kafka.error.name": "\(error.name)"]
                )
                try? await Task.sleep(for: delay)
                delay = min(delay * 2, .seconds(30))
            }
        }
        return false
    }
}

/// The W3C Trace Context `traceparent` rule of the contract: version `00`,
/// exactly `00-<32 hex>-<16 hex>-<2 hex>` in lower case, ids not all zero.
/// Anything else under that name is dropped, never copied.
enum TraceParent {
    static func validated(_ value: String?) -> String? {
        guard let value, value.utf8.count == 55 else { return nil }
        let bytes = Array(value.utf8)
        func isHex(_ range: Range<Int>) -> Bool {
            bytes[range].allSatisfy { (0x30...0x39).contains($0) || (0x61...0x66).contains($0) }
        }
        func isZero(_ range: Range<Int>) -> Bool { bytes[range].allSatisfy { $0 == 0x30 } }
        guard bytes[0] == 0x30, bytes[1] == 0x30, bytes[2] == 0x2D, bytes[35] == 0x2D, bytes[52] == 0x2D,
            isHex(3..<35), isHex(36..<52), isHex(53..<55), !isZero(3..<35), !isZero(36..<52)
        else { return nil }
        return value
    }
}
