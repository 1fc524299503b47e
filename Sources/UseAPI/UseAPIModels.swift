/// A JSON scalar kept as useapi sent it (the JWT's `id` may be a number or a string).
public enum UseAPIScalar: Codable, Sendable, Hashable {
    case int(Int64)
    case double(Double)
    case string(String)

    public init(from decoder: any Decoder) throws {
        let container = try decoder.singleValueContainer()
        if let value = try? container.decode(Int64.self) {
            self = .int(value)
        } else if let value = try? container.decode(Double.self) {
            self = .double(value)
        } else {
            self = .string(try container.decode(String.self))
        }
    }

    public func encode(to encoder: any Encoder) throws {
        var container = encoder.singleValueContainer()
        switch self {
        case .int(let value): try container.encode(value)
        case .double(let value): try container.encode(value)
        case .string(let value): try container.encode(value)
        }
    }
}

/// The Runway session useapi opened for an account. `token` is a secret: it
/// is never printed (see `description`) and never leaves the worker.
public struct UseAPIJWT: Decodable, Sendable, CustomStringConvertible {
    /// Expiry, fractional seconds since the epoch.
    public var exp: Double
    /// Issue time, fractional seconds since the epoch.
    public var iat: Double
    public var id: UseAPIScalar?
    public var token: String?

    public init(exp: Double, iat: Double, id: UseAPIScalar?, token: String?) {
        self.exp = exp
        self.iat = iat
        self.id = id
        self.token = token
    }

    public var description: String { "UseAPIJWT(exp: \(exp), iat: \(iat), id: \(String(describing: id)), token: <redacted>)" }
}

/// An account configuration as useapi returns it (the password is not kept).
public struct UseAPIAccount: Decodable, Sendable {
    public var email: String?
    public var maxJobs: Int?
    public var jwt: UseAPIJWT?

    public init(email: String?, maxJobs: Int?, jwt: UseAPIJWT?) {
        self.email = email
        self.maxJobs = maxJobs
        self.jwt = jwt
    }
}

/// The answer to a successful `DELETE`.
public struct UseAPIDeletion: Sendable {
    public var statusCode: Int
}

/// The optional `useWorkspace` field: `true`/`false`, or a team id.
public enum UseAPIWorkspace: Sendable, Hashable, Encodable {
    case enabled(Bool)
    case team(String)

    public func encode(to encoder: any Encoder) throws {
        var container = encoder.singleValueContainer()
        switch self {
        case .enabled(let value): try container.encode(value)
        case .team(let value): try container.encode(value)
        }
    }
}
