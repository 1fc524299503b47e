/// Why a useapi call did not succeed: useapi answered with an error, or no
/// usable answer came at all. Descriptions never contain the API token or a password.
public enum UseAPIFailure: Error, Sendable, CustomStringConvertible {
    case api(UseAPIResponseError)
    case transport(UseAPITransportError)

    public var description: String {
        switch self {
        case .api(let error): error.description
        case .transport(let error): error.description
        }
    }
}

/// useapi answered with a non-2xx status.
public struct UseAPIResponseError: Error, Sendable, CustomStringConvertible {
    /// The HTTP status code (useapi also uses the non-standard 596).
    public var statusCode: Int
    /// useapi's `error` field, or the body text when it was not JSON.
    public var error: String
    /// useapi's `errorDetails` field, when present.
    public var errorDetails: String?
    /// How long useapi asked us to wait: the `Retry-After` header, or else
    /// the body's `retryAfter` field.
    public var retryAfter: Duration?

    public init(statusCode: Int, error: String, errorDetails: String? = nil, retryAfter: Duration? = nil) {
        self.statusCode = statusCode
        self.error = error
        self.errorDetails = errorDetails
        self.retryAfter = retryAfter
    }

    public var description: String { "useapi answered \(statusCode): \(error)" }
}

/// No usable answer: connection failure, timeout, TLS, or an unreadable body.
public struct UseAPITransportError: Error, Sendable, CustomStringConvertible {
    public enum Kind: String, Sendable {
        /// The request did not complete within its timeout.
        case timeout
        /// Connecting failed, or the connection was reset or closed early.
        case connection
        /// The TLS handshake or session failed.
        case tls
        /// An answer came but could not be read (malformed, or over the size limit).
        case invalidResponse
        /// The calling task was cancelled.
        case cancelled
    }

    public var kind: Kind
    public var message: String
    /// The status of an answer whose body could not be read, if any.
    public var statusCode: Int?

    public init(kind: Kind, message: String, statusCode: Int? = nil) {
        self.kind = kind
        self.message = message
        self.statusCode = statusCode
    }

    public var description: String { "useapi call failed (\(kind.rawValue)): \(message)" }
}
