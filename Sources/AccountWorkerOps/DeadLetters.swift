import Foundation
import Kafka

/// A record of the dead-letter topic, as `dlq list` and `dlq replay` see it.
public struct DeadLetter: Sendable {
    /// The header a replayed command carries: `<dlq topic>/<partition>/<offset>`.
    public static let replayedFromHeader = "dlq-replayed-from"

    public var message: KafkaMessage

    public init(_ message: KafkaMessage) {
        self.message = message
    }

    /// What `dlq-replayed-from` names for this record.
    public var reference: String { "\(message.topic)/\(message.partition)/\(message.offset)" }
    public var sourceTopic: String? { message.headers.string(for: "dlq-source-topic") }
    public var sourcePartition: Int32? { message.headers.string(for: "dlq-source-partition").flatMap { Int32($0) } }
    public var sourceOffset: Int64? { message.headers.string(for: "dlq-source-offset").flatMap { Int64($0) } }
    public var reason: String? { message.headers.string(for: "dlq-reason") }
    /// The worker kept no value (it did not fit): nothing to replay.
    public var isTruncated: Bool { message.headers.string(for: "dlq-truncated") == "true" || message.value == nil }

    /// The command to republish: the original key, value and headers, minus
    /// every `dlq-*` header, plus `dlq-replayed-from`. nil when truncated.
    public func replay(to topic: String, partition: Int32?) -> KafkaProducerMessage? {
        guard !isTruncated else { return nil }
        var headers = message.headers.filter { !$0.key.lowercased().hasPrefix("dlq-") }
        headers.append(KafkaHeader(key: Self.replayedFromHeader, value: reference))
        return KafkaProducerMessage(topic: topic, key: message.key, value: message.value, headers: headers, partition: partition)
    }
}

/// Renders dead letters for `dlq list`.
public enum DeadLetterTable {
    static let columns: [(title: String, width: Int)] = [
        ("PARTITION", 9), ("OFFSET", 8), ("TIME (UTC)", 19), ("SOURCE", 40), ("REASON", 36), ("KEY", 30), ("SIZE", 9),
    ]

    public static var header: String { ResultTable.row(columns.map(\.title), columns: columns) }

    public static func row(_ letter: DeadLetter) -> String {
        let message = letter.message
        let time = message.timestampMilliseconds.map { OperatorTime.format(Date(timeIntervalSince1970: Double($0) / 1000)) } ?? "-"
        let source = "\(letter.sourceTopic ?? "?")[\(letter.sourcePartition.map(String.init) ?? "?")]@\(letter.sourceOffset.map(String.init) ?? "?")"
        let key = message.key.map { String(decoding: $0, as: UTF8.self) } ?? "(none)"
        let size = letter.isTruncated ? "truncated" : "\(message.value?.count ?? 0) B"
        return ResultTable.row(
            [
                String(message.partition), String(message.offset), time, ResultTable.sanitized(source),
                ResultTable.sanitized(letter.reason ?? "-"), ResultTable.sanitized(key), size,
            ],
            columns: columns
        )
    }

    /// The value for `--show-values`, on its own line, control characters replaced.
    public static func value(_ letter: DeadLetter) -> String {
        guard let value = letter.message.value else { return "  value: (none)" }
        return "  value: " + ResultTable.sanitized(String(decoding: value, as: UTF8.self))
    }
}
