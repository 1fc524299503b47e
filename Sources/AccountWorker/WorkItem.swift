import Kafka

/// A consumed command on its way through the worker.
struct WorkItem: Sendable {
    let message: KafkaMessage
    let decoded: Result<AccountCommand, CommandRejection>
    /// The partition's assignment epoch when consumed: work from an earlier
    /// assignment of the same partition is stale and dropped.
    let epoch: Int
    let receivedAt: ContinuousClock.Instant

    var partition: KafkaTopicPartition { message.topicPartition }

    /// Commands for one account share a chain (processed in offset order).
    /// Messages with no readable email get a chain of their own.
    var chainKey: String {
        switch decoded {
        case .success(let command): return command.email.lowercased()
        case .failure(let rejection):
            if let email = rejection.email { return email.lowercased() }
            return "\u{0}\(message.topic)/\(message.partition)/\(message.offset)"
        }
    }
}
