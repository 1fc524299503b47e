/// What a ``KafkaConsumer`` delivers, in the order librdkafka produced it.
public enum KafkaConsumerEvent: Sendable {
    /// A record from an assigned partition.
    case message(KafkaMessage)
    /// Partitions were added to this member's assignment (incrementally under
    /// `cooperative-sticky`, the whole assignment under eager strategies).
    case partitionsAssigned([KafkaTopicPartition])
    /// Partitions are being taken away. librdkafka does not complete the
    /// revocation until the consumer asks for its next event, so finish or
    /// abandon their work and commit their offsets before iterating further.
    /// `lost` is true when the assignment was lost (session timeout): commits
    /// for these partitions will then fail.
    case partitionsRevoked([KafkaTopicPartition], lost: Bool)
    /// The consumer caught up with the end of a partition (only when
    /// ``KafkaConsumerConfiguration/reportEndOfPartition`` is set). `offset`
    /// is the next offset to be written there.
    case endOfPartition(KafkaTopicPartition, offset: Int64)
}
