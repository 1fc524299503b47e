import Kafka
import Logging

/// Publishes a command's records, each until the brokers acknowledge it:
/// the DLQ copy of an undecodable message, then its result. The command's
/// offset may be committed only once both are acknowledged.
struct ResultPublisher: Sendable {
    let producer: KafkaProducer
    let resultTopic: String
    /// nil: dead letters are not kept.
    let dlqTopic: String?
    let metrics: WorkerMetrics
    let logger: Logger

    /// Publishes the DLQ copy of `item`'s message (original key, value and
    /// headers, then the `dlq-*` headers). True when acknowledged or when
    /// there is no DLQ; false when abandoned (cancelled, or a fatal error).
    func publishDeadLetter(_ item: WorkItem, reason: String) async -> Bool {
        guard let dlqTopic else { return true }
        let message = item.message
        // The worker's headers come first, so a reader taking the first
        // `dlq-source-offset` never gets one forged by the original record.
        let headers =
            [
                KafkaHeader(key: "dlq-source-topic", value: message.topic),
                KafkaHeader(key: "dlq-source-partition", value: String(message.partition)),
                KafkaHeader(key: "dlq-source-offset", value: String(message.offset)),
                KafkaHeader(key: "dlq-reason", value: reason),
            ] + message.headers
        let published = await publishUntilAcknowledged(
            KafkaProducerMessage(topic: dlqTopic, key: message.key, value: message.value, headers: headers),
            what: "dead letter"
        )
        if published { metrics.dlq.increment() }
        return published
    }

    /// Publishes `result`, keyed by its email (or the command's key when
    /// the email was unreadable). False when abandoned.
    func publishResult(_ result: CommandResult, item: WorkItem) async -> Bool {
        let message = result.producerMessage(
            topic: resultTopic,
            fallbackKey: item.message.key,
            traceparent: TraceParent.validated(item.message.headers.string(for: "traceparent"))
        )
        return await publishUntilAcknowledged(message, what: "result")
    }

    /// Kafka outages are waited out (the command's offset cannot be
    /// committed before); false when cancelled or the producer failed fatally.
    private func publishUntilAcknowledged(_ message: KafkaProducerMessage, what: String) async -> Bool {
        var delay = Duration.milliseconds(500)
        while !Task.isCancelled {
            do {
                try await producer.send(message)
                return true
            } catch {
                metrics.publishFailures.increment()
                logger.error(
                    "publishing failed; retrying",
                    metadata: ["publish.what": "\(what)", "kafka.topic": "\(message.topic)", "kafka.error.name": "\(error.name)"]
                )
                if error.isFatal { return false }
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
