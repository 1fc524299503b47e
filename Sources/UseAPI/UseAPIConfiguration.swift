/// How to reach useapi.
public struct UseAPIConfiguration: Sendable {
    /// e.g. `https://api.useapi.net` (no trailing slash needed).
    public var baseURL: String
    /// The API token, sent as `Authorization: Bearer {token}` exactly as given.
    public var token: String
    /// The whole call, connect to last body byte.
    public var requestTimeout: Duration = .seconds(30)
    /// Bytes of an answer's body read at most: a larger 2xx body is
    /// unreadable (502); a larger error body is cut, and its status stands.
    public var maxResponseBytes: Int = 1 << 20
    /// Sent as `User-Agent: account-worker/{version}`.
    public var version: String = "dev"

    public init(baseURL: String, token: String) {
        self.baseURL = baseURL.hasSuffix("/") ? String(baseURL.dropLast()) : baseURL
        self.token = token
    }
}
