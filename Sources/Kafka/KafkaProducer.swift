import Dispatch
import Foundation
import Logging
import Synchronization

/// A record to publish.
public struct KafkaProducerMessage: Sendable {
    public var topic: String
    public var key: [UInt8]?
    /// `nil` publishes a null value (a tombstone).
    public var value: [UInt8]?
    public var headers: [KafkaHeader]
    /// A fixed partition; `nil` lets the partitioner choose from the key.
    public var partition: Int32?

    public init(topic: String, key: [UInt8]?, value: [UInt8]?, headers: [KafkaHeader] = [], partition: Int32? = nil) {
        self.topic = topic
        self.key = key
        self.value = value
        self.headers = headers
        self.partition = partition
    }
}

/// An idempotent, `acks=all` Kafka producer whose ``send(_:)`` returns once
/// the brokers have acknowledged the record.
///
/// Delivery reports are served by a dedicated poll thread; `flush` runs on a
/// dedicated queue. Nothing blocks Swift's cooperative pool.
public final class KafkaProducer: Sendable {
    let core: RDKafkaProducerCore

    public init(configuration: KafkaProducerConfiguration, logger: Logger) throws(KafkaError) {
        core = try RDKafkaProducerCore(configuration: configuration, logger: logger)
    }

    deinit {
        core.stop()
    }

    /// The fatal error librdkafka raised on this producer (e.g. the
    /// idempotent producer out of sequence or fenced), if any: it can then
    /// never deliver again, and its owner must stop.
    public var fatalError: KafkaError? { core.handle.fatalError }

    /// Publishes a record and waits for its delivery report.
    ///
    /// Cancelling the calling task stops the wait and throws
    /// ``KafkaError/cancelled``; it does not withdraw a record already handed
    /// to librdkafka, which may still be delivered.
    @discardableResult
    public func send(_ message: KafkaProducerMessage) async throws(KafkaError) -> KafkaDeliveryReport {
        try await core.send(message)
    }

    /// Publishes a record and waits for its delivery report.
    @discardableResult
    public func send(
        topic: String,
        key: [UInt8]?,
        value: [UInt8]?,
        headers: [KafkaHeader] = []
    ) async throws(KafkaError) -> KafkaDeliveryReport {
        try await core.send(KafkaProducerMessage(topic: topic, key: key, value: value, headers: headers))
    }

    /// The number of partitions of `topic` from the brokers' metadata, or nil
    /// when it cannot be had within `timeout` (no such topic, not allowed,
    /// brokers unreachable). Asking before the first record also primes the
    /// producer's metadata cache, so that first record does not wait for a lookup
    /// (and a broker that auto-creates topics creates it now).
    public func partitionCount(of topic: String, timeout: Duration = .seconds(5)) async -> Int? {
        await core.handle.partitionCount(of: topic, timeout: timeout)
    }

    /// Waits until every queued record is delivered or failed, up to `timeout`.
    public func flush(timeout: Duration) async throws(KafkaError) {
        try await core.flush(timeout: timeout)
    }

    /// Flushes, then fails whatever is still undelivered and stops the poll thread.
    public func close(timeout: Duration = .seconds(10)) async {
        await core.close(timeout: timeout)
    }
}
