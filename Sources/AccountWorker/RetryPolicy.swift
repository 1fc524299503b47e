import UseAPI

/// How one useapi answer is treated.
public enum CallDisposition: Sendable, Equatable {
    /// Final: report it (success or error), never retry.
    case final
    /// Try again after a backoff (or the wait useapi asked for).
    case retry(retryAfter: Duration?)
}

/// The contract's retry rules: which answers are final, which are retried,
/// and how long to wait between attempts (exponential backoff with full
/// jitter, honouring `Retry-After`, every wait capped).
public struct RetryPolicy: Sendable {
    public var maxAttempts: Int
    public var baseDelay: Duration
    public var maxDelay: Duration
    /// The longest `Retry-After` / `retryAfter` wait honoured: the contract's
    /// 60 s (lower only in tests, to see a capped wait end).
    public var retryAfterCap: Duration
    public static let contractRetryAfterCap: Duration = .seconds(60)

    public init(
        maxAttempts: Int = 5,
        baseDelay: Duration = .milliseconds(500),
        maxDelay: Duration = .seconds(60),
        retryAfterCap: Duration = contractRetryAfterCap
    ) {
        self.maxAttempts = max(1, maxAttempts)
        self.baseDelay = baseDelay
        self.maxDelay = maxDelay
        self.retryAfterCap = min(max(retryAfterCap, .zero), Self.contractRetryAfterCap)
    }

    /// Final: 400, 401, 402, 403, 404, 409, 422 and other 4xx except 408 and
    /// 429, and useapi's 596. Retried: 408, 429, other 5xx, and every
    /// transport failure (connection, timeout, TLS, unreadable body).
    public static func disposition(of failure: UseAPIFailure) -> CallDisposition {
        switch failure {
        case .transport(let error):
            return error.kind == .cancelled ? .final : .retry(retryAfter: nil)
        case .api(let error):
            switch error.statusCode {
            case 408, 429: return .retry(retryAfter: error.retryAfter)
            case 596: return .final
            case 500...599: return .retry(retryAfter: error.retryAfter)
            default: return .final
            }
        }
    }

    /// Whether a failure counts towards opening the circuit: transport
    /// errors and 5xx other than 596.
    public static func countsAsOutage(_ failure: UseAPIFailure) -> Bool {
        switch failure {
        case .transport(let error): error.kind != .cancelled
        case .api(let error): (500...599).contains(error.statusCode) && error.statusCode != 596
        }
    }

    /// The wait before attempt `attempt + 1`, after `attempt` calls (1-based).
    /// `random` returns a value in `0..<1` (injectable for tests).
    public func delay(afterAttempt attempt: Int, retryAfter: Duration?, random: () -> Double = { Double.random(in: 0..<1) }) -> Duration {
        if let retryAfter {
            // useapi's own wait is honoured up to the contract's 60 s, even
            // when the backoff cap is set lower.
            return min(max(retryAfter, .zero), retryAfterCap)
        }
        let exponent = min(max(attempt - 1, 0), 30)
        let ceiling = min(baseDelay * (1 << exponent), maxDelay)
        return ceiling * random()
    }
}
