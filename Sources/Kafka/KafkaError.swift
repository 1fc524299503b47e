import CRdKafka

/// An error raised by the Kafka client.
///
/// `code` is librdkafka's `rd_kafka_resp_err_t` (negative values are local
/// errors such as `_TRANSPORT`, positive values are Kafka protocol errors);
/// `name` is its symbolic name, e.g. `MSG_SIZE_TOO_LARGE`.
public struct KafkaError: Error, Sendable, Hashable, CustomStringConvertible {
    /// librdkafka's numeric error code.
    public var code: Int32
    /// librdkafka's symbolic name for `code` (`rd_kafka_err2name`).
    public var name: String
    /// A readable explanation. Never contains a configuration value.
    public var message: String
    /// Whether the same operation may succeed when tried again.
    public var isRetriable: Bool
    /// Whether the client instance is unusable (e.g. a fatal idempotence error).
    public var isFatal: Bool

    public init(code: Int32, name: String, message: String, isRetriable: Bool = false, isFatal: Bool = false) {
        self.code = code
        self.name = name
        self.message = message
        self.isRetriable = isRetriable
        self.isFatal = isFatal
    }

    public var description: String {
        "KafkaError(\(name), code: \(code)): \(message)"
    }

    /// Codes that librdkafka itself treats as transient for produce and commit requests.
    static let transientCodes: Set<Int32> = [
        RD_KAFKA_RESP_ERR__TRANSPORT.rawValue,
        RD_KAFKA_RESP_ERR__TIMED_OUT.rawValue,
        RD_KAFKA_RESP_ERR__MSG_TIMED_OUT.rawValue,
        RD_KAFKA_RESP_ERR__QUEUE_FULL.rawValue,
        RD_KAFKA_RESP_ERR__ALL_BROKERS_DOWN.rawValue,
        RD_KAFKA_RESP_ERR__WAIT_COORD.rawValue,
        RD_KAFKA_RESP_ERR_REQUEST_TIMED_OUT.rawValue,
        RD_KAFKA_RESP_ERR_NOT_LEADER_FOR_PARTITION.rawValue,
        RD_KAFKA_RESP_ERR_LEADER_NOT_AVAILABLE.rawValue,
        RD_KAFKA_RESP_ERR_NOT_ENOUGH_REPLICAS.rawValue,
        RD_KAFKA_RESP_ERR_NOT_ENOUGH_REPLICAS_AFTER_APPEND.rawValue,
        RD_KAFKA_RESP_ERR_COORDINATOR_LOAD_IN_PROGRESS.rawValue,
        RD_KAFKA_RESP_ERR_COORDINATOR_NOT_AVAILABLE.rawValue,
        RD_KAFKA_RESP_ERR_NOT_COORDINATOR.rawValue,
        RD_KAFKA_RESP_ERR_REBALANCE_IN_PROGRESS.rawValue,
        RD_KAFKA_RESP_ERR_NETWORK_EXCEPTION.rawValue,
    ]

    /// Builds an error from a plain `rd_kafka_resp_err_t`.
    init(_ err: rd_kafka_resp_err_t, message: String? = nil, isFatal: Bool = false) {
        let name = String(cString: rd_kafka_err2name(err))
        let text = String(cString: rd_kafka_err2str(err))
        self.init(
            code: err.rawValue,
            name: name,
            message: message.map { "\($0): \(text)" } ?? text,
            isRetriable: !isFatal && Self.transientCodes.contains(err.rawValue),
            isFatal: isFatal || err == RD_KAFKA_RESP_ERR__FATAL
        )
    }

    /// Takes ownership of an `rd_kafka_error_t` and destroys it.
    init(consuming error: OpaquePointer, context: String? = nil) {
        defer { rd_kafka_error_destroy(error) }
        let text = String(cString: rd_kafka_error_string(error))
        self.init(
            code: rd_kafka_error_code(error).rawValue,
            name: String(cString: rd_kafka_error_name(error)),
            message: context.map { "\($0): \(text)" } ?? text,
            isRetriable: rd_kafka_error_is_retriable(error) != 0,
            isFatal: rd_kafka_error_is_fatal(error) != 0
        )
    }

    // MARK: Errors raised by this library rather than librdkafka.

    /// A configuration property is unknown or its value is invalid.
    /// The message names the property but never echoes the value (it may be a secret).
    public static func invalidConfiguration(property: String, reason: String) -> KafkaError {
        KafkaError(
            code: RD_KAFKA_RESP_ERR__INVALID_ARG.rawValue,
            name: "INVALID_CONFIGURATION",
            message: "invalid Kafka configuration property \"\(property)\": \(reason)"
        )
    }

    /// The client was closed before or during the operation.
    public static func closed(_ what: String) -> KafkaError {
        KafkaError(code: RD_KAFKA_RESP_ERR__DESTROY.rawValue, name: "_DESTROY", message: "\(what) is closed")
    }

    /// The code of a `KafkaError` built from `RD_KAFKA_RESP_ERR__MSG_TIMED_OUT`.
    public static let messageTimedOutCode = RD_KAFKA_RESP_ERR__MSG_TIMED_OUT.rawValue
}
