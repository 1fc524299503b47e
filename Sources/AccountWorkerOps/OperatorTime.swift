import AccountWorker
import Foundation
import UseAPI

/// Times and durations as operators type them.
public enum OperatorTime {
    /// "90s", "15m", "1h", "7d" (a bare number is seconds); nil when malformed.
    public static func duration(_ text: String) -> TimeInterval? {
        let trimmed = text.trimmingCharacters(in: .whitespaces).lowercased()
        guard let last = trimmed.last else { return nil }
        let units: [Character: Double] = ["s": 1, "m": 60, "h": 3_600, "d": 86_400, "w": 604_800]
        let (number, unit) = last.isNumber ? (Substring(trimmed), 1.0) : (trimmed.dropLast(), units[last] ?? -1)
        guard unit > 0, !number.isEmpty, number.allSatisfy(\.isNumber), let value = Double(number), value <= 3_650 * 86_400 / unit else {
            return nil
        }
        return value * unit
    }

    /// An ISO-8601 time (fractional seconds allowed), or a duration meaning
    /// that long before `now` ("1h"); nil when neither. Read by
    /// `UntrustedDate`: the text may come from a record of the status topic.
    public static func instant(_ text: String, now: Date = Date()) -> Date? {
        if let seconds = duration(text) { return now.addingTimeInterval(-seconds) }
        let trimmed = text.trimmingCharacters(in: .whitespaces)
        guard trimmed.utf8.count <= 64 else { return nil }
        return UntrustedDate.iso8601(trimmed).map(Date.init(timeIntervalSince1970:))
    }

    /// "2026-11-29 10:00:00" in UTC; empty for a date no four-digit year can
    /// write (a JWT's `exp` is whatever useapi sent).
    public static func format(_ date: Date) -> String {
        iso8601(date).map { String($0.dropLast()).replacingOccurrences(of: "T", with: " ") } ?? ""
    }

    /// "2026-11-29T10:00:00Z"; nil for a date outside years 1970-9999.
    public static func iso8601(_ date: Date) -> String? {
        guard (0...UTCTimestamp.latest).contains(date.timeIntervalSince1970) else { return nil }
        return UTCTimestamp.string(from: date).prefix(19) + "Z"
    }

    /// Whole seconds from `now` to `date`, clamped to ±100 years: `date` may
    /// come from a record (`jwt.exp: -1e300`), and `Int(_:)` would trap.
    public static func secondsUntil(_ date: Date, from now: Date) -> Int {
        let limit = 100 * 366 * 86_400.0
        let seconds = min(max(date.timeIntervalSince(now), -limit), limit)
        return seconds.isNaN ? 0 : Int(seconds)
    }
}
