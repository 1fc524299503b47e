import StrictJSON

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

    /// A scalar from an answer: an integer within `Int64`, else a finite
    /// double, else the number's text; a string as is; nil for anything else.
    init?(_ value: JSONValue) {
        switch value {
        case .string(let text): self = .string(text)
        case .number(let number):
            if let integer = Int64(number.text) {
                self = .int(integer)
            } else if let double = number.finiteDouble {
                self = .double(double)
            } else {
                self = .string(number.text)
            }
        default: return nil
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
public struct UseAPIJWT: Sendable, CustomStringConvertible {
    /// Expiry, fractional seconds since the epoch (finite; any magnitude).
    public var exp: Double
    /// Issue time, fractional seconds since the epoch (finite; any magnitude).
    public var iat: Double
    public var id: UseAPIScalar?
    public var token: String?

    public init(exp: Double, iat: Double, id: UseAPIScalar?, token: String?) {
        self.exp = exp
        self.iat = iat
        self.id = id
        self.token = token
    }

    /// A JWT from an answer: nil unless `exp` and `iat` are finite numbers.
    init?(_ value: JSONValue) {
        guard let exp = value["exp"]?.number?.finiteDouble, let iat = value["iat"]?.number?.finiteDouble else { return nil }
        self.init(exp: exp, iat: iat, id: value["id"].flatMap(UseAPIScalar.init), token: value["token"]?.string)
    }

    public var description: String { "UseAPIJWT(exp: \(exp), iat: \(iat), id: \(String(describing: id)), token: <redacted>)" }
}

/// An account configuration as useapi returns it (the password is not kept).
/// Fields useapi sent in a shape that cannot be used are nil, not an error:
/// the 2xx status already says the change was applied.
public struct UseAPIAccount: Sendable {
    public var email: String?
    /// useapi's `maxJobs` when it is an integer in `Int`'s range.
    public var maxJobs: Int?
    /// nil when the answer had no JWT with finite numeric `exp` and `iat`.
    public var jwt: UseAPIJWT?
    /// The 2xx status useapi answered with.
    public var statusCode: Int

    public init(email: String?, maxJobs: Int?, jwt: UseAPIJWT?, statusCode: Int = 200) {
        self.email = email
        self.maxJobs = maxJobs
        self.jwt = jwt
        self.statusCode = statusCode
    }

    /// The account in a 2xx answer's body; nil when the body is not a JSON object.
    init?(body: some Collection<UInt8>) {
        guard let value = try? JSONParser().parse(body), case .object = value else { return nil }
        self.init(
            email: value["email"]?.string,
            maxJobs: value["maxJobs"]?.number?.int64.flatMap { Int(exactly: $0) },
            jwt: value["jwt"].flatMap(UseAPIJWT.init)
        )
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
