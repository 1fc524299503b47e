import Foundation
import Kafka
import UseAPI

/// One result event, exactly the contract's fields. It never holds the
/// password, the JWT token or the API token.
public struct CommandResult: Sendable, Encodable, Equatable {
    public enum Status: String, Sendable, Codable {
        case ok
        case error
    }

    public enum Stage: String, Sendable, Codable {
        case validation
        case api
        case transport
    }

    public struct JWTInfo: Sendable, Codable, Equatable {
        public var exp: Double
        public var iat: Double
        public var id: UseAPIScalar?
    }

    public struct Source: Sendable, Codable, Equatable {
        public var topic: String
        public var partition: Int32
        public var offset: Int64
    }

    public var commandId: String?
    public var type: CommandType
    public var email: String?
    public var status: Status
    public var code: Int
    public var maxJobs: Int?
    public var jwt: JWTInfo?
    public var jwtExpiresAt: String?
    public var error: String?
    public var errorDetails: String?
    public var stage: Stage?
    public var attempts: Int
    public var durationMs: Int64
    public var source: Source
    public var worker: String
    public var processedAt: String

    enum CodingKeys: String, CodingKey {
        case commandId, type, email, status, code, maxJobs, jwt, jwtExpiresAt, error, errorDetails, stage
        case attempts, durationMs, source, worker, processedAt
    }

    public func encode(to encoder: any Encoder) throws {
        var container = encoder.container(keyedBy: CodingKeys.self)
        // `commandId` and `email` are always present, null when unreadable.
        try container.encode(commandId, forKey: .commandId)
        try container.encode(type, forKey: .type)
        try container.encode(email, forKey: .email)
        try container.encode(status, forKey: .status)
        try container.encode(code, forKey: .code)
        try container.encodeIfPresent(maxJobs, forKey: .maxJobs)
        try container.encodeIfPresent(jwt, forKey: .jwt)
        try container.encodeIfPresent(jwtExpiresAt, forKey: .jwtExpiresAt)
        try container.encodeIfPresent(error, forKey: .error)
        try container.encodeIfPresent(errorDetails, forKey: .errorDetails)
        try container.encodeIfPresent(stage, forKey: .stage)
        try container.encode(attempts, forKey: .attempts)
        try container.encode(durationMs, forKey: .durationMs)
        try container.encode(source, forKey: .source)
        try container.encode(worker, forKey: .worker)
        try container.encode(processedAt, forKey: .processedAt)
    }

    /// The record to publish: keyed by email, with the contract's headers.
    public func producerMessage(topic: String, fallbackKey: [UInt8]?, traceparent: String?) -> KafkaProducerMessage {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys, .withoutEscapingSlashes]
        let value = (try? encoder.encode(self)).map { Array($0) } ?? []
        var headers: [KafkaHeader] = []
        if let commandId { headers.append(KafkaHeader(key: "command-id", value: commandId)) }
        headers.append(KafkaHeader(key: "content-type", value: "application/json"))
        headers.append(KafkaHeader(key: "result-status", value: status.rawValue))
        if let traceparent { headers.append(KafkaHeader(key: "traceparent", value: traceparent)) }
        return KafkaProducerMessage(topic: topic, key: email.map { Array($0.utf8) } ?? fallbackKey, value: value, headers: headers)
    }

    /// A value-type format style: shared safely, unlike a formatter object,
    /// and built once rather than per result and per log line.
    private static let iso8601Style = Date.ISO8601FormatStyle(includingFractionalSeconds: true)

    static func iso8601(_ date: Date) -> String {
        iso8601Style.format(date)
    }
}
