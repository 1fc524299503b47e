import Foundation
import Kafka
import StrictJSON
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

        /// Always the three keys: `id` is null when useapi sent none.
        public func encode(to encoder: any Encoder) throws {
            var container = encoder.container(keyedBy: CodingKeys.self)
            try container.encode(exp, forKey: .exp)
            try container.encode(iat, forKey: .iat)
            try container.encode(id, forKey: .id)
        }
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

    /// The most characters `error` and `errorDetails` carry; longer texts are
    /// cut to this length, ending with `…`.
    public static let maxTextLength = 1024

    /// Encodes exactly the contract's fields for this status and type, so no
    /// code path can drop or add one: every result has the common fields
    /// (`commandId` and `email` null when unreadable); an error has `error`,
    /// `errorDetails` (null when absent) and `stage`; an ok upsert has
    /// `maxJobs`, `jwt` and `jwtExpiresAt` (null when useapi sent no readable
    /// JWT); an ok delete has nothing more. Texts are cut to ``maxTextLength``.
    public func encode(to encoder: any Encoder) throws {
        var container = encoder.container(keyedBy: CodingKeys.self)
        try container.encode(commandId, forKey: .commandId)
        try container.encode(type, forKey: .type)
        try container.encode(email, forKey: .email)
        try container.encode(status, forKey: .status)
        try container.encode(code, forKey: .code)
        switch (status, type) {
        case (.error, _):
            try container.encode(Self.cut(error ?? "HTTP \(code)"), forKey: .error)
            try container.encode(errorDetails.map { Self.cut($0) }, forKey: .errorDetails)
            try container.encode(stage ?? .api, forKey: .stage)
        case (.ok, .upsert):
            try container.encode(maxJobs, forKey: .maxJobs)
            try container.encode(jwt, forKey: .jwt)
            try container.encode(jwtExpiresAt, forKey: .jwtExpiresAt)
        case (.ok, .delete):
            break
        }
        try container.encode(attempts, forKey: .attempts)
        try container.encode(durationMs, forKey: .durationMs)
        try container.encode(source, forKey: .source)
        try container.encode(worker, forKey: .worker)
        try container.encode(processedAt, forKey: .processedAt)
    }

    /// Makes this an error result. `error` and `errorDetails` may hold
    /// useapi's words: every secret in `redacting` is replaced by `***`
    /// before the texts are cut, so no part of a secret survives the cut.
    public mutating func fail(code: Int, stage: Stage, error: String, errorDetails: String?, redacting secrets: SecretRedactor) {
        status = .error
        self.code = code
        self.stage = stage
        self.error = Self.cut(secrets.redact(error))
        self.errorDetails = errorDetails.map { Self.cut(secrets.redact($0)) }
    }

    /// Sets the JWT of an ok upsert; `jwtExpiresAt` only when `exp` is a date
    /// an ISO-8601 timestamp can hold (years 1970-9999), else null.
    public mutating func setJWT(exp: Double, iat: Double, id: UseAPIScalar?) {
        jwt = JWTInfo(exp: exp, iat: iat, id: id)
        jwtExpiresAt = (0...Self.latestTimestamp).contains(exp) ? Self.iso8601(Date(timeIntervalSince1970: exp)) : nil
    }

    static let latestTimestamp = UTCTimestamp.latest

    /// For a record Kafka refused as too large or invalid: texts cut to a
    /// quarter of their limit, a string JWT id cut likewise.
    mutating func degrade() {
        let limit = Self.maxTextLength / 4
        error = error.map { Self.cut($0, to: limit) }
        errorDetails = errorDetails.map { Self.cut($0, to: limit) }
        if case .string(let id)? = jwt?.id { jwt?.id = .string(Self.cut(id, to: limit)) }
    }

    /// `text` cut to ``maxTextLength`` Unicode scalars (what JSON Schema's
    /// `maxLength` counts), ending with `…` when cut.
    static func cut(_ text: String, to limit: Int = maxTextLength) -> String {
        guard text.utf8.count > limit else { return text }
        let scalars = text.unicodeScalars
        guard let end = scalars.index(scalars.startIndex, offsetBy: limit - 1, limitedBy: scalars.endIndex),
            scalars.distance(from: end, to: scalars.endIndex) > 1
        else { return text }
        var cut = String(scalars[..<end])
        cut.unicodeScalars.append("…")
        return cut
    }

    /// The result's JSON: the bytes ``encode(to:)`` gives with `JSONEncoder`
    /// (`.sortedKeys`, `.withoutEscapingSlashes`), written directly, at a
    /// fraction of the CPU (a test holds the two equal). Members in key order.
    public var jsonBytes: [UInt8] {
        var json = JSONObjectWriter()
        json.write("attempts", integer: Int64(attempts))
        json.write("code", integer: Int64(code))
        json.write("commandId", string: commandId)
        json.write("durationMs", integer: durationMs)
        json.write("email", string: email)
        if status == .error {
            json.write("error", string: Self.cut(error ?? "HTTP \(code)"))
            json.write("errorDetails", string: errorDetails.map { Self.cut($0) })
        }
        if status == .ok, type == .upsert {
            json.writeJWT(jwt)
            json.write("jwtExpiresAt", string: jwtExpiresAt)
            json.write("maxJobs", integer: maxJobs.map(Int64.init))
        }
        json.write("processedAt", string: processedAt)
        json.write("source") { source in
            source.write("offset", integer: self.source.offset)
            source.write("partition", integer: Int64(self.source.partition))
            source.write("topic", string: self.source.topic)
        }
        if status == .error {
            json.write("stage", string: (stage ?? .api).rawValue)
        }
        json.write("status", string: status.rawValue)
        json.write("type", string: type.rawValue)
        json.write("worker", string: worker)
        return json.finish()
    }

    /// The record to publish: keyed by email, with the contract's headers.
    public func producerMessage(topic: String, fallbackKey: [UInt8]?, traceparent: String?) -> KafkaProducerMessage {
        let value = jsonBytes
        var headers: [KafkaHeader] = []
        if let commandId { headers.append(KafkaHeader(key: "command-id", value: commandId)) }
        headers.append(KafkaHeader(key: "content-type", value: "application/json"))
        headers.append(KafkaHeader(key: "result-status", value: status.rawValue))
        if let traceparent { headers.append(KafkaHeader(key: "traceparent", value: traceparent)) }
        return KafkaProducerMessage(topic: topic, key: email.map { Array($0.utf8) } ?? fallbackKey, value: value, headers: headers)
    }

    static func iso8601(_ date: Date) -> String {
        UTCTimestamp.string(from: date)
    }
}

extension JSONObjectWriter {
    /// The `jwt` member: `{"exp","iat","id"}` (`id` null when useapi sent
    /// none), or null.
    mutating func writeJWT(_ jwt: CommandResult.JWTInfo?) {
        guard let jwt else { return writeNull("jwt") }
        write("jwt") { object in
            object.write("exp", number: jwt.exp)
            object.write("iat", number: jwt.iat)
            switch jwt.id {
            case .int(let value)?: object.write("id", integer: value)
            case .double(let value)?: object.write("id", number: value)
            case .string(let value)?: object.write("id", string: value)
            case nil: object.writeNull("id")
            }
        }
    }
}
