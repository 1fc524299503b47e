import Foundation

/// A result event as operators read it (decoded from the result topic).
public struct ResultView: Sendable, Decodable {
    public struct JWT: Sendable, Decodable {
        public var exp: Double
        public var iat: Double
    }

    public var commandId: String?
    public var type: String
    public var email: String?
    public var status: String
    public var code: Int
    public var maxJobs: Int?
    public var jwt: JWT?
    public var jwtExpiresAt: String?
    public var error: String?
    public var errorDetails: String?
    public var stage: String?
    public var attempts: Int
    public var durationMs: Int?
    public var worker: String?
    public var processedAt: String?

    public static func decode(_ bytes: [UInt8]) -> ResultView? {
        try? JSONDecoder().decode(ResultView.self, from: Data(bytes))
    }
}

/// Renders results as a fixed-width table for terminals.
public enum ResultTable {
    static let columns: [(title: String, width: Int)] = [
        ("EMAIL", 30), ("OP", 6), ("STATUS", 6), ("CODE", 4), ("TRIES", 5), ("JWT EXPIRES (UTC)", 17), ("IN", 6), ("COMMAND ID", 24), ("ERROR", 44),
    ]

    public static var header: String {
        row(columns.map(\.title))
    }

    public static func row(_ result: ResultView, now: Date = Date()) -> String {
        var expires = ""
        var remaining = ""
        if let exp = result.jwt?.exp {
            let date = Date(timeIntervalSince1970: exp)
            expires = String(OperatorTime.format(date).prefix(16))
            remaining = relative(date.timeIntervalSince(now))
        }
        let error = [result.error, result.errorDetails].compactMap { $0 }.joined(separator: " — ")
        return row([
            sanitized(result.email ?? "(unreadable)"), result.type.replacingOccurrences(of: "account.", with: ""), result.status,
            String(result.code), String(result.attempts), expires, remaining,
            sanitized(result.commandId ?? "-"), sanitized(error),
        ])
    }

    /// "in 29d", "in 5h", "in 12m", or "expired".
    public static func relative(_ seconds: TimeInterval) -> String {
        if !(seconds > 0) { return "expired" }  // NaN included
        // `seconds` may come from a record (`jwt.exp: 1e300`): no Int(_:) trap.
        if seconds >= 86_400 { return "in \(Int(min(seconds, 1e12) / 86_400))d" }
        if seconds >= 3_600 { return "in \(Int(seconds / 3_600))h" }
        return "in \(max(1, Int(seconds / 60)))m"
    }

    static func row(_ cells: [String], columns: [(title: String, width: Int)] = ResultTable.columns) -> String {
        zip(cells, columns).map { cell, column in
            cell.count > column.width
                ? String(cell.prefix(column.width - 1)) + "…" : cell.padding(toLength: column.width, withPad: " ", startingAt: 0)
        }.joined(separator: " ").trimmingCharacters(in: .whitespaces)
    }

    /// Control characters from message content never reach the terminal.
    static func sanitized(_ text: String) -> String {
        String(String.UnicodeScalarView(text.unicodeScalars.map { $0.properties.generalCategory == .control ? "?" : $0 }))
    }
}

/// Counts by status and code.
public struct ResultSummary: Sendable, Equatable, Encodable {
    public var total = 0
    public var byStatus: [String: Int] = [:]
    public var byCode: [String: Int] = [:]
    public var deadLetters = 0

    public init() {}

    public mutating func add(_ result: ResultView) {
        total += 1
        byStatus[result.status, default: 0] += 1
        byCode["\(result.status) \(result.code)", default: 0] += 1
    }

    public var text: String {
        let statuses = byStatus.sorted { $0.key > $1.key }.map { status, count in
            let codes = byCode.filter { $0.key.hasPrefix(status + " ") }.sorted { $0.key < $1.key }
                .map { "\($0.key.dropFirst(status.count + 1)): \($0.value)" }.joined(separator: ", ")
            return "\(status) \(count) (\(codes))"
        }
        return "\(total) results: " + statuses.joined(separator: "; ") + "; \(deadLetters) sent to the DLQ"
    }
}
