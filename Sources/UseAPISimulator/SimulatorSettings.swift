/// How a known account answers, whatever the request says.
public enum SimulatedAccountBehavior: Codable, Sendable, Hashable {
    /// Only this password is accepted; another gets 401 "Wrong username/password combination."
    case password(String)
    /// 401 "This account has been suspended."
    case suspended
    /// 596: the account is in an error state.
    case errorState
}

/// A fault applied to the requests it matches (all of them, or those whose
/// email starts with `emailPrefix`). The first matching rule wins.
public struct SimulatedFault: Codable, Sendable, Hashable {
    public var emailPrefix: String?
    /// Added before answering.
    public var latencyMs: Int = 0
    /// Uniform extra latency in `0...latencyJitterMs`.
    public var latencyJitterMs: Int = 0
    /// Probability of answering 500, 502 or 503 (picked at random).
    public var serverErrorRate: Double = 0
    /// Probability of answering 429 with `Retry-After: rateLimitRetryAfterSeconds`
    /// and a `retryAfter` body field.
    public var rateLimitRate: Double = 0
    public var rateLimitRetryAfterSeconds: Double = 1
    /// Probability of never answering (until the server stops or `hangMs` passes).
    public var hangRate: Double = 0
    public var hangMs: Int = 600_000
    /// Probability of closing the connection without an answer.
    public var dropRate: Double = 0
    /// The first N requests of each matching email answer `failFirstStatus`
    /// (deterministic flakiness: "needs N retries").
    public var failFirst: Int = 0
    public var failFirstStatus: Int = 503
    /// A canned answer instead of the API's (after latency): hostile
    /// headers, redirects, huge or secret-echoing bodies, absurd numbers.
    public var answer: SimulatedAnswer?
    /// Only the first N requests of each matching email get `answer` (0: all).
    public var answerFirst: Int = 0
    /// A body that stalls or trickles after the response head.
    public var slowBody: SimulatedSlowBody?

    public init(emailPrefix: String? = nil) {
        self.emailPrefix = emailPrefix
    }

    enum CodingKeys: String, CodingKey {
        case emailPrefix, latencyMs, latencyJitterMs, serverErrorRate, rateLimitRate, rateLimitRetryAfterSeconds
        case hangRate, hangMs, dropRate, failFirst, failFirstStatus, answer, answerFirst, slowBody
    }

    public init(from decoder: any Decoder) throws {
        let container = try decoder.container(keyedBy: CodingKeys.self)
        emailPrefix = try container.decodeIfPresent(String.self, forKey: .emailPrefix)
        latencyMs = try container.decodeIfPresent(Int.self, forKey: .latencyMs) ?? 0
        latencyJitterMs = try container.decodeIfPresent(Int.self, forKey: .latencyJitterMs) ?? 0
        serverErrorRate = try container.decodeIfPresent(Double.self, forKey: .serverErrorRate) ?? 0
        rateLimitRate = try container.decodeIfPresent(Double.self, forKey: .rateLimitRate) ?? 0
        rateLimitRetryAfterSeconds = try container.decodeIfPresent(Double.self, forKey: .rateLimitRetryAfterSeconds) ?? 1
        hangRate = try container.decodeIfPresent(Double.self, forKey: .hangRate) ?? 0
        hangMs = try container.decodeIfPresent(Int.self, forKey: .hangMs) ?? 600_000
        dropRate = try container.decodeIfPresent(Double.self, forKey: .dropRate) ?? 0
        failFirst = try container.decodeIfPresent(Int.self, forKey: .failFirst) ?? 0
        failFirstStatus = try container.decodeIfPresent(Int.self, forKey: .failFirstStatus) ?? 503
        answer = try container.decodeIfPresent(SimulatedAnswer.self, forKey: .answer)
        answerFirst = try container.decodeIfPresent(Int.self, forKey: .answerFirst) ?? 0
        slowBody = try container.decodeIfPresent(SimulatedSlowBody.self, forKey: .slowBody)
    }

    func matches(_ email: String?) -> Bool {
        guard let emailPrefix else { return true }
        return email?.hasPrefix(emailPrefix) ?? false
    }
}

/// A canned answer. In `body`, `{email}`, `{password}` (the request body's)
/// and `{token}` (the bearer token sent) are replaced, so an answer can echo
/// secrets as some services do; `{padding}` is replaced by as many `x` as
/// make the body `bodyBytes` long (a huge body).
public struct SimulatedAnswer: Codable, Sendable, Hashable {
    public var status: Int
    /// Sent as given, e.g. `Retry-After: 1e16` or `Location: http://elsewhere/`.
    public var headers: [String: String]
    public var body: String
    public var bodyBytes: Int

    public init(status: Int, headers: [String: String] = [:], body: String = "", bodyBytes: Int = 0) {
        self.status = status
        self.headers = headers
        self.body = body
        self.bodyBytes = bodyBytes
    }

    enum CodingKeys: String, CodingKey { case status, headers, body, bodyBytes }

    public init(from decoder: any Decoder) throws {
        let container = try decoder.container(keyedBy: CodingKeys.self)
        status = try container.decode(Int.self, forKey: .status)
        headers = try container.decodeIfPresent([String: String].self, forKey: .headers) ?? [:]
        body = try container.decodeIfPresent(String.self, forKey: .body) ?? ""
        bodyBytes = try container.decodeIfPresent(Int.self, forKey: .bodyBytes) ?? 0
    }
}

/// A 200 whose body does not arrive in time: `Content-Length: declaredBytes`,
/// `initialBytes` at once, then one more byte every `trickleEveryMs` (0: none,
/// the body stalls until `hangMs` of the fault passes or the server stops).
public struct SimulatedSlowBody: Codable, Sendable, Hashable {
    public var declaredBytes: Int
    public var initialBytes: Int
    public var trickleEveryMs: Int

    public init(declaredBytes: Int = 200, initialBytes: Int = 10, trickleEveryMs: Int = 0) {
        self.declaredBytes = declaredBytes
        self.initialBytes = initialBytes
        self.trickleEveryMs = trickleEveryMs
    }
}

/// The simulator's settings.
public struct UseAPISimulatorConfiguration: Sendable {
    /// The only API token accepted.
    public var token: String
    public var host: String = "127.0.0.1"
    /// 0 picks a free port.
    public var port: Int = 0
    /// `jwt.exp` is `iat` plus this.
    public var jwtTTL: Duration = .seconds(30 * 86_400)
    public var faults: [SimulatedFault] = []
    /// Emails (as decoded from the path) with a fixed behaviour.
    public var accounts: [String: SimulatedAccountBehavior] = [:]
    /// Requests kept in the journal (older ones are dropped; counters go on).
    public var journalLimit: Int = 100_000

    public init(token: String) {
        self.token = token
    }
}
