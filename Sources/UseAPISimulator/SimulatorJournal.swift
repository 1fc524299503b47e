/// One request as the simulator saw it.
public struct SimulatorRequestRecord: Sendable, Codable {
    public var method: String
    /// The path exactly as sent, percent-encoding included.
    public var rawPath: String
    /// The account segment, percent-decoded (nil for other paths).
    public var email: String?
    public var headers: [String: String]
    public var body: String
    public var status: Int?
    /// Seconds since the simulator started.
    public var startedAt: Double
    public var endedAt: Double?
}

/// What the simulator recorded: every request, the peak concurrency, and
/// whether two requests for one email ever overlapped.
public struct SimulatorJournal: Sendable, Codable {
    public var requests: [SimulatorRequestRecord] = []
    public var totalRequests = 0
    public var maxConcurrentRequests = 0
    /// Emails that had two requests in flight at the same time.
    public var overlappingEmails: [String] = []

    /// This journal with the Authorization header and passwords masked, for output.
    public var redacted: SimulatorJournal {
        var copy = self
        copy.requests = requests.map { record in
            var record = record
            if record.headers["authorization"] != nil { record.headers["authorization"] = "Bearer ***" }
            if record.body.contains("password") { record.body = "<redacted: contains a password>" }
            return record
        }
        return copy
    }
}
