import Foundation

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
    /// that long before `now` ("1h"); nil when neither.
    public static func instant(_ text: String, now: Date = Date()) -> Date? {
        if let seconds = duration(text) { return now.addingTimeInterval(-seconds) }
        let plain = ISO8601DateFormatter()
        if let date = plain.date(from: text) { return date }
        let fractional = ISO8601DateFormatter()
        fractional.formatOptions = [.withInternetDateTime, .withFractionalSeconds]
        return fractional.date(from: text)
    }

    /// "2026-11-29 10:00:00" in UTC.
    public static func format(_ date: Date) -> String {
        let formatter = DateFormatter()
        formatter.locale = Locale(identifier: "en_US_POSIX")
        formatter.timeZone = TimeZone(identifier: "UTC")
        formatter.dateFormat = "yyyy-MM-dd HH:mm:ss"
        return formatter.string(from: date)
    }
}
