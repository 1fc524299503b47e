/// An error raised by the Kafka client.
///
/// `code` is librdkafka's error code (negative values are local errors such
/// as ``Code-swift.struct/transport``, positive values are Kafka protocol
/// errors); `name` is its symbolic name, e.g. `MSG_SIZE_TOO_LARGE`.
public struct KafkaError: Error, Sendable, Hashable, CustomStringConvertible {
    /// A librdkafka / Kafka protocol error code (`rd_kafka_resp_err_t`), with
    /// named constants for the codes this library and its users act on. The
    /// mock cluster's error injection takes the same type.
    public struct Code: RawRepresentable, Hashable, Sendable, CustomStringConvertible {
        public var rawValue: Int32
        public init(rawValue: Int32) { self.rawValue = rawValue }

        /// librdkafka's symbolic name, e.g. `MSG_SIZE_TOO_LARGE` or `_TRANSPORT`.
        public var description: String { codeName(self) }
    }

    /// librdkafka's error code.
    public var code: Code
    /// librdkafka's symbolic name for `code`.
    public var name: String
    /// A readable explanation. Never contains a configuration value.
    public var message: String
    /// Whether the same operation may succeed when tried again.
    public var isRetriable: Bool
    /// Whether the client instance is unusable (e.g. a fatal idempotence error).
    public var isFatal: Bool
    /// For a configuration error: the librdkafka property at fault (its value is never kept).
    public var invalidProperty: String?

    public init(code: Code, name: String? = nil, message: String, isRetriable: Bool = false, isFatal: Bool = false) {
        self.code = code
        self.name = name ?? code.description
        self.message = message
        self.isRetriable = isRetriable
        self.isFatal = isFatal
    }

    public var description: String {
        "KafkaError(\(name), code: \(code.rawValue)): \(message)"
    }

    /// Whether this error concerns one record and will recur for it however
    /// often it is sent (too large, invalid, corrupt), as opposed to the
    /// cluster's state (brokers down, leader moves), which may pass.
    public var isPermanentForRecord: Bool {
        !isFatal && Self.permanentRecordCodes.contains(code)
    }

    /// Only what the record itself causes: an unknown topic or a missing
    /// ACL concerns every record and is waited out instead (an operator can
    /// fix it; dropping records meanwhile would lose them).
    static let permanentRecordCodes: Set<Code> = [
        .messageSizeTooLarge, .invalidRecord, .corruptMessage, .recordListTooLarge, .invalidMessageSize,
    ]

    // MARK: Errors raised by this library rather than librdkafka.

    /// A configuration property is unknown or its value is invalid.
    /// The message names the property but never echoes the value (it may be a secret).
    public static func invalidConfiguration(property: String, reason: String) -> KafkaError {
        var error = KafkaError(
            code: .invalidArgument,
            name: "INVALID_CONFIGURATION",
            message: "invalid Kafka configuration property \"\(property)\": \(reason)"
        )
        error.invalidProperty = property
        return error
    }

    /// The caller's task was cancelled while it waited (e.g. for a delivery report).
    public static let cancelled = KafkaError(code: .fail, name: "CANCELLED", message: "the wait was cancelled")

    /// The client was closed before or during the operation.
    public static func closed(_ what: String) -> KafkaError {
        KafkaError(code: .destroy, message: "\(what) is closed")
    }
}
