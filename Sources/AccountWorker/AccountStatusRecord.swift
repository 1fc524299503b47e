import StrictJSON

/// A record of the compacted account status topic (contract section
/// "Account status topic"): keyed by email, the latest state of the account
/// as its latest non-validation result left it. Every key is always present
/// (null where the state has no value); never a password or a token. An ok
/// delete is a tombstone (a null value) instead, so compaction forgets the account.
struct AccountStatusRecord: Encodable, Sendable {
    var email: String
    var status: CommandResult.Status
    var code: Int
    var maxJobs: Int?
    var jwt: CommandResult.JWTInfo?
    var jwtExpiresAt: String?
    var commandId: String?
    var updatedAt: String
    var error: String?

    enum CodingKeys: String, CodingKey {
        case email, status, code, maxJobs, jwt, jwtExpiresAt, commandId, updatedAt, error
    }

    func encode(to encoder: any Encoder) throws {
        var container = encoder.container(keyedBy: CodingKeys.self)
        try container.encode(email, forKey: .email)
        try container.encode(status, forKey: .status)
        try container.encode(code, forKey: .code)
        try container.encode(maxJobs, forKey: .maxJobs)
        try container.encode(jwt, forKey: .jwt)
        try container.encode(jwtExpiresAt, forKey: .jwtExpiresAt)
        try container.encode(commandId, forKey: .commandId)
        try container.encode(updatedAt, forKey: .updatedAt)
        try container.encode(error, forKey: .error)
    }
}

extension CommandResult {
    /// The status record this result leaves: nil for a validation error (or
    /// an unreadable email), which changes no account; `value` nil (a
    /// tombstone) for an ok delete.
    var statusRecord: (key: [UInt8], value: [UInt8]?)? {
        guard stage != .validation, let email else { return nil }
        let key = Array(email.utf8)
        if status == .ok, type == .delete { return (key, nil) }
        let record = AccountStatusRecord(
            email: email,
            status: status,
            code: code,
            maxJobs: status == .ok ? maxJobs : nil,
            jwt: status == .ok ? jwt : nil,
            jwtExpiresAt: status == .ok ? jwtExpiresAt : nil,
            commandId: commandId,
            updatedAt: processedAt,
            error: status == .error ? (error.map { Self.cut($0) } ?? "HTTP \(code)") : nil
        )
        return (key, record.jsonBytes)
    }
}

extension AccountStatusRecord {
    /// The bytes ``encode(to:)`` gives with `JSONEncoder` (`.sortedKeys`,
    /// `.withoutEscapingSlashes`), written directly (a test holds the two
    /// equal). Members in key order.
    var jsonBytes: [UInt8] {
        var json = JSONObjectWriter(reservingCapacity: 384)
        json.write("code", integer: Int64(code))
        json.write("commandId", string: commandId)
        json.write("email", string: email)
        json.write("error", string: error)
        json.writeJWT(jwt)
        json.write("jwtExpiresAt", string: jwtExpiresAt)
        json.write("maxJobs", integer: maxJobs.map(Int64.init))
        json.write("status", string: status.rawValue)
        json.write("updatedAt", string: updatedAt)
        return json.finish()
    }
}
