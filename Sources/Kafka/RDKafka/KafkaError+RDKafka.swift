internal import CRdKafka

extension KafkaError.Code {
    init(_ err: rd_kafka_resp_err_t) { self.init(rawValue: err.rawValue) }

    public static let noError = Self(RD_KAFKA_RESP_ERR_NO_ERROR)
    // Local errors (raised by librdkafka itself).
    public static let fail = Self(RD_KAFKA_RESP_ERR__FAIL)
    public static let transport = Self(RD_KAFKA_RESP_ERR__TRANSPORT)
    public static let destroy = Self(RD_KAFKA_RESP_ERR__DESTROY)
    public static let invalidArgument = Self(RD_KAFKA_RESP_ERR__INVALID_ARG)
    public static let timedOut = Self(RD_KAFKA_RESP_ERR__TIMED_OUT)
    public static let queueFull = Self(RD_KAFKA_RESP_ERR__QUEUE_FULL)
    public static let messageTimedOut = Self(RD_KAFKA_RESP_ERR__MSG_TIMED_OUT)
    public static let allBrokersDown = Self(RD_KAFKA_RESP_ERR__ALL_BROKERS_DOWN)
    public static let waitCoordinator = Self(RD_KAFKA_RESP_ERR__WAIT_COORD)
    public static let noOffset = Self(RD_KAFKA_RESP_ERR__NO_OFFSET)
    public static let partitionEOF = Self(RD_KAFKA_RESP_ERR__PARTITION_EOF)
    public static let fatal = Self(RD_KAFKA_RESP_ERR__FATAL)
    public static let invalidMessageSize = Self(RD_KAFKA_RESP_ERR_INVALID_MSG_SIZE)
    public static let unknownTopicLocal = Self(RD_KAFKA_RESP_ERR__UNKNOWN_TOPIC)
    public static let assignmentLost = Self(RD_KAFKA_RESP_ERR__ASSIGNMENT_LOST)
    // Kafka protocol errors (answered by a broker).
    public static let corruptMessage = Self(RD_KAFKA_RESP_ERR_INVALID_MSG)
    public static let unknownTopicOrPartition = Self(RD_KAFKA_RESP_ERR_UNKNOWN_TOPIC_OR_PART)
    public static let leaderNotAvailable = Self(RD_KAFKA_RESP_ERR_LEADER_NOT_AVAILABLE)
    public static let notLeaderForPartition = Self(RD_KAFKA_RESP_ERR_NOT_LEADER_FOR_PARTITION)
    public static let requestTimedOut = Self(RD_KAFKA_RESP_ERR_REQUEST_TIMED_OUT)
    public static let messageSizeTooLarge = Self(RD_KAFKA_RESP_ERR_MSG_SIZE_TOO_LARGE)
    public static let networkException = Self(RD_KAFKA_RESP_ERR_NETWORK_EXCEPTION)
    public static let coordinatorLoadInProgress = Self(RD_KAFKA_RESP_ERR_COORDINATOR_LOAD_IN_PROGRESS)
    public static let coordinatorNotAvailable = Self(RD_KAFKA_RESP_ERR_COORDINATOR_NOT_AVAILABLE)
    public static let notCoordinator = Self(RD_KAFKA_RESP_ERR_NOT_COORDINATOR)
    public static let invalidTopic = Self(RD_KAFKA_RESP_ERR_TOPIC_EXCEPTION)
    public static let recordListTooLarge = Self(RD_KAFKA_RESP_ERR_RECORD_LIST_TOO_LARGE)
    public static let notEnoughReplicas = Self(RD_KAFKA_RESP_ERR_NOT_ENOUGH_REPLICAS)
    public static let notEnoughReplicasAfterAppend = Self(RD_KAFKA_RESP_ERR_NOT_ENOUGH_REPLICAS_AFTER_APPEND)
    public static let invalidRequiredAcks = Self(RD_KAFKA_RESP_ERR_INVALID_REQUIRED_ACKS)
    public static let illegalGeneration = Self(RD_KAFKA_RESP_ERR_ILLEGAL_GENERATION)
    public static let unknownMemberID = Self(RD_KAFKA_RESP_ERR_UNKNOWN_MEMBER_ID)
    public static let rebalanceInProgress = Self(RD_KAFKA_RESP_ERR_REBALANCE_IN_PROGRESS)
    public static let topicAuthorizationFailed = Self(RD_KAFKA_RESP_ERR_TOPIC_AUTHORIZATION_FAILED)
    public static let unsupportedVersion = Self(RD_KAFKA_RESP_ERR_UNSUPPORTED_VERSION)
    public static let outOfOrderSequenceNumber = Self(RD_KAFKA_RESP_ERR_OUT_OF_ORDER_SEQUENCE_NUMBER)
    public static let duplicateSequenceNumber = Self(RD_KAFKA_RESP_ERR_DUPLICATE_SEQUENCE_NUMBER)
    public static let invalidProducerEpoch = Self(RD_KAFKA_RESP_ERR_INVALID_PRODUCER_EPOCH)
    public static let invalidRecord = Self(RD_KAFKA_RESP_ERR_INVALID_RECORD)
    public static let producerFenced = Self(RD_KAFKA_RESP_ERR_PRODUCER_FENCED)
}

/// librdkafka's symbolic name for a code.
func codeName(_ code: KafkaError.Code) -> String {
    String(cString: rd_kafka_err2name(rd_kafka_resp_err_t(rawValue: code.rawValue)))
}

extension KafkaError {
    /// Codes that librdkafka itself treats as transient for produce and commit requests.
    static let transientCodes: Set<Code> = [
        .transport, .timedOut, .messageTimedOut, .queueFull, .allBrokersDown, .waitCoordinator, .requestTimedOut,
        .notLeaderForPartition, .leaderNotAvailable, .notEnoughReplicas, .notEnoughReplicasAfterAppend,
        .coordinatorLoadInProgress, .coordinatorNotAvailable, .notCoordinator, .rebalanceInProgress, .networkException,
    ]

    /// Builds an error from a plain `rd_kafka_resp_err_t`.
    init(_ err: rd_kafka_resp_err_t, message: String? = nil, isFatal: Bool = false) {
        let code = Code(err)
        let text = String(cString: rd_kafka_err2str(err))
        self.init(
            code: code,
            message: message.map { "\($0): \(text)" } ?? text,
            isRetriable: !isFatal && Self.transientCodes.contains(code),
            isFatal: isFatal || code == .fatal
        )
    }

    /// Takes ownership of an `rd_kafka_error_t` and destroys it.
    init(consuming error: OpaquePointer, context: String? = nil) {
        defer { rd_kafka_error_destroy(error) }
        let text = String(cString: rd_kafka_error_string(error))
        self.init(
            code: Code(rd_kafka_error_code(error)),
            name: String(cString: rd_kafka_error_name(error)),
            message: context.map { "\($0): \(text)" } ?? text,
            isRetriable: rd_kafka_error_is_retriable(error) != 0,
            isFatal: rd_kafka_error_is_fatal(error) != 0
        )
    }
}
