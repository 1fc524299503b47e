internal import CRdKafka
import Foundation
import Logging

/// Receives librdkafka callbacks that concern one client. Implementations
/// must be cheap: they run on librdkafka's threads or the client's poll thread.
protocol RDKafkaEventDelegate: AnyObject, Sendable {
    func rebalance(
        _ rk: OpaquePointer,
        _ err: rd_kafka_resp_err_t,
        _ partitions: UnsafeMutablePointer<rd_kafka_topic_partition_list_t>
    )
    func delivered(_ message: UnsafePointer<rd_kafka_message_t>)
    func committed(_ err: rd_kafka_resp_err_t, _ offsets: UnsafeMutablePointer<rd_kafka_topic_partition_list_t>?)
}

extension RDKafkaEventDelegate {
    func rebalance(
        _ rk: OpaquePointer,
        _ err: rd_kafka_resp_err_t,
        _ partitions: UnsafeMutablePointer<rd_kafka_topic_partition_list_t>
    ) {}
    func delivered(_ message: UnsafePointer<rd_kafka_message_t>) {}
    func committed(_ err: rd_kafka_resp_err_t, _ offsets: UnsafeMutablePointer<rd_kafka_topic_partition_list_t>?) {}
}

/// What librdkafka's C callbacks find behind their opaque pointer.
///
/// It outlives the `rd_kafka_t` (the handle destroys the instance before
/// releasing it), so a callback fired during `rd_kafka_destroy` is safe.
final class RDKafkaCallbackContext: @unchecked Sendable {
    let logger: Logger
    /// Set once, before the client's poll thread starts; weak so that a
    /// delegate being deinitialised is seen as absent rather than revived.
    nonisolated(unsafe) weak var delegate: (any RDKafkaEventDelegate)?

    init(logger: Logger) {
        self.logger = logger
    }

    static func from(_ opaque: UnsafeMutableRawPointer?) -> RDKafkaCallbackContext? {
        guard let opaque else { return nil }
        return Unmanaged<RDKafkaCallbackContext>.fromOpaque(opaque).takeUnretainedValue()
    }
}

/// Moves a librdkafka pointer to the destroy queue. librdkafka's handles may
/// be used from any thread; the sender gives up its use.
struct HandOff: @unchecked Sendable {
    let value: OpaquePointer
    init(_ value: OpaquePointer) { self.value = value }
}

/// Owns one `rd_kafka_t` and destroys it in `deinit`.
final class RDKafkaHandle: @unchecked Sendable {
    let pointer: OpaquePointer
    let context: RDKafkaCallbackContext
    /// Metadata lookups block for up to their timeout: each client's own
    /// queue, so one client's lookups never wait behind another's, and never
    /// Swift's cooperative pool (the global queues also run Swift's tasks on Linux).
    let metadataQueue = DispatchQueue(label: "kafka.metadata")

    /// Creates a librdkafka instance. Every property is validated by
    /// librdkafka; the first invalid one is reported by name, never by value.
    init(
        type: rd_kafka_type_t,
        properties: [String: String],
        logger: Logger,
        configure: (OpaquePointer) -> Void = { _ in }
    ) throws(KafkaError) {
        let conf = try Self.makeConf(properties)
        let context = RDKafkaCallbackContext(logger: logger)
        rd_kafka_conf_set_opaque(conf, Unmanaged.passUnretained(context).toOpaque())
        rd_kafka_conf_set_log_cb(conf, rdKafkaLogCallback)
        rd_kafka_conf_set_error_cb(conf, rdKafkaErrorCallback)
        configure(conf)

        var errstr = [CChar](repeating: 0, count: 512)
        // On success rd_kafka_new takes ownership of conf; on failure it is ours.
        guard let rk = rd_kafka_new(type, conf, &errstr, errstr.count) else {
            rd_kafka_conf_destroy(conf)
            throw KafkaError(
                code: .invalidArgument,
                name: "INVALID_CONFIGURATION",
                message: "cannot create Kafka client: \(String(cBuffer: errstr))"
            )
        }
        self.pointer = rk
        self.context = context
    }

    /// Where `rd_kafka_destroy` runs: it blocks until librdkafka's threads
    /// end, and a `deinit` may run on Swift's cooperative pool.
    static let destroyQueue = DispatchQueue(label: "kafka.destroy")

    deinit {
        let pointer = HandOff(self.pointer)
        let context = self.context
        Self.destroyQueue.async {
            rd_kafka_destroy(pointer.value)
            // Callbacks fired during destroy still find their context.
            withExtendedLifetime(context) {}
        }
    }

    private static func makeConf(_ properties: [String: String]) throws(KafkaError) -> OpaquePointer {
        let conf = rd_kafka_conf_new()!
        var errstr = [CChar](repeating: 0, count: 512)
        for (name, value) in properties.sorted(by: { $0.key < $1.key }) {
            let result = rd_kafka_conf_set(conf, name, value, &errstr, errstr.count)
            guard result == RD_KAFKA_CONF_OK else {
                rd_kafka_conf_destroy(conf)
                var reason = String(cBuffer: errstr)
                if !value.isEmpty {
                    // librdkafka quotes the offending value; it may be a secret.
                    reason = reason.replacingOccurrences(of: value, with: "***")
                }
                if result == RD_KAFKA_CONF_UNKNOWN { reason = "no such property" }
                throw KafkaError.invalidConfiguration(property: name, reason: reason)
            }
        }
        return conf
    }

    /// The fatal error raised on this instance, if any.
    var fatalError: KafkaError? {
        var errstr = [CChar](repeating: 0, count: 512)
        let err = rd_kafka_fatal_error(pointer, &errstr, errstr.count)
        guard err != RD_KAFKA_RESP_ERR_NO_ERROR else { return nil }
        return KafkaError(err, message: String(cBuffer: errstr), isFatal: true)
    }
}

private let rdKafkaLogCallback: @convention(c) (OpaquePointer?, Int32, UnsafePointer<CChar>?, UnsafePointer<CChar>?) -> Void = {
    rk,
    level,
    facility,
    message in
    guard let rk, let context = RDKafkaCallbackContext.from(rd_kafka_opaque(rk)) else { return }
    let logLevel: Logger.Level =
        switch level {
        case 0...2: .critical
        case 3: .error
        case 4: .warning
        case 5: .notice
        case 6: .info
        default: .debug
        }
    context.logger.log(
        level: logLevel,
        "librdkafka",
        metadata: [
            "kafka.facility": .string(facility.map { String(cString: $0) } ?? ""),
            "kafka.message": .string(message.map { String(cString: $0) } ?? ""),
        ]
    )
}

private let rdKafkaErrorCallback: @convention(c) (OpaquePointer?, Int32, UnsafePointer<CChar>?, UnsafeMutableRawPointer?) -> Void = {
    _,
    code,
    reason,
    opaque in
    guard let context = RDKafkaCallbackContext.from(opaque) else { return }
    let err = rd_kafka_resp_err_t(rawValue: code)
    let isFatal = err == RD_KAFKA_RESP_ERR__FATAL
    context.logger.log(
        // Non-fatal errors are also logged by librdkafka itself (log callback).
        level: isFatal ? .error : .debug,
        "Kafka client error",
        metadata: [
            "kafka.error.name": .string(String(cString: rd_kafka_err2name(err))),
            "kafka.error.code": .stringConvertible(code),
            "kafka.error.reason": .string(reason.map { String(cString: $0) } ?? ""),
        ]
    )
}

// MARK: - Topic partition lists

extension KafkaTopicPartition {
    init(_ element: rd_kafka_topic_partition_t) {
        self.init(topic: String(cString: element.topic), partition: element.partition)
    }
}

/// Reads an `rd_kafka_topic_partition_list_t` into Swift values.
func topicPartitions(
    _ list: UnsafePointer<rd_kafka_topic_partition_list_t>?
) -> [(KafkaTopicPartition, offset: Int64, error: rd_kafka_resp_err_t)] {
    guard let list, let elems = list.pointee.elems else { return [] }
    return (0..<Int(list.pointee.cnt)).map { index in
        let element = elems[index]
        return (KafkaTopicPartition(element), element.offset, element.err)
    }
}

/// Builds a temporary `rd_kafka_topic_partition_list_t`, destroyed after `body`.
func withTopicPartitionList<T>(
    _ entries: [(KafkaTopicPartition, offset: Int64)],
    _ body: (UnsafeMutablePointer<rd_kafka_topic_partition_list_t>) throws -> T
) rethrows -> T {
    let list = rd_kafka_topic_partition_list_new(Int32(entries.count))!
    defer { rd_kafka_topic_partition_list_destroy(list) }
    for (topicPartition, offset) in entries {
        let element = rd_kafka_topic_partition_list_add(list, topicPartition.topic, topicPartition.partition)!
        element.pointee.offset = offset
    }
    return try body(list)
}

extension String {
    /// Reads a NUL-terminated C string out of an `errstr` buffer.
    init(cBuffer: [CChar]) {
        self.init(decoding: cBuffer.prefix { $0 != 0 }.map { UInt8(bitPattern: $0) }, as: UTF8.self)
    }
}
