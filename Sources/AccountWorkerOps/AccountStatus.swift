import Foundation

/// One record of the account status topic (compacted, keyed by email).
public struct AccountStatusView: Sendable, Decodable {
    public struct JWT: Sendable, Decodable {
        public var exp: Double?
        public var iat: Double?
    }

    public var email: String?
    public var status: String?
    public var code: Int?
    public var maxJobs: Int?
    public var jwt: JWT?
    public var jwtExpiresAt: String?
    public var commandId: String?
    public var updatedAt: String?
    public var error: String?

    public static func decode(_ bytes: [UInt8]) -> AccountStatusView? {
        try? JSONDecoder().decode(AccountStatusView.self, from: Data(bytes))
    }

    /// When the account's JWT expires: `jwt.exp`, else `jwtExpiresAt`.
    public var expiresAt: Date? {
        if let exp = jwt?.exp { return Date(timeIntervalSince1970: exp) }
        return jwtExpiresAt.flatMap { OperatorTime.instant($0) }
    }
}

/// The latest state of every account, from the status topic read from its
/// beginning: the latest record per key wins, a tombstone forgets the key.
public struct AccountStatusReport: Sendable {
    public struct Entry: Sendable {
        public var key: String
        public var status: AccountStatusView
        public var expiresAt: Date
    }

    private var latest: [String: AccountStatusView] = [:]
    /// Records read (tombstones included).
    public private(set) var records = 0

    public init() {}

    /// Adds one record in topic order; `value == nil` is a tombstone.
    public mutating func add(key: [UInt8]?, value: [UInt8]?) {
        records += 1
        guard let key else { return }
        let email = String(decoding: key, as: UTF8.self)
        guard let value else {
            latest[email] = nil
            return
        }
        latest[email] = AccountStatusView.decode(value)
    }

    /// Accounts currently known (tombstoned ones excluded).
    public var accounts: Int { latest.count }

    /// Accounts with a known JWT expiry at or before `deadline`, soonest first.
    public func expiring(before deadline: Date) -> [Entry] {
        withExpiry.filter { $0.expiresAt <= deadline }
    }

    /// Accounts with a known JWT expiry, soonest first.
    public var withExpiry: [Entry] {
        latest.compactMap { key, status in
            guard status.status == "ok", let expiresAt = status.expiresAt else { return nil }
            return Entry(key: key, status: status, expiresAt: expiresAt)
        }.sorted { ($0.expiresAt, $0.key) < ($1.expiresAt, $1.key) }
    }

    /// Accounts whose latest command failed (their expiry is unknown here).
    public var failing: Int { latest.values.filter { $0.status != "ok" }.count }
}

/// Renders status entries for `results --expiring`.
public enum ExpiringTable {
    static let columns: [(title: String, width: Int)] = [
        ("EMAIL", 30), ("JWT EXPIRES (UTC)", 17), ("IN", 7), ("MAX JOBS", 8), ("COMMAND ID", 24), ("UPDATED", 24),
    ]

    public static var header: String { ResultTable.row(columns.map(\.title), columns: columns) }

    public static func row(_ entry: AccountStatusReport.Entry, now: Date = Date()) -> String {
        let expires = String(OperatorTime.format(entry.expiresAt).prefix(16))
        return ResultTable.row(
            [
                ResultTable.sanitized(entry.status.email ?? entry.key), expires, ResultTable.relative(entry.expiresAt.timeIntervalSince(now)),
                entry.status.maxJobs.map(String.init) ?? "-", ResultTable.sanitized(entry.status.commandId ?? "-"),
                ResultTable.sanitized(entry.status.updatedAt ?? "-"),
            ],
            columns: columns
        )
    }
}
