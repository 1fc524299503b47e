import Foundation

/// Parses the waits useapi asks for.
public enum RetryAfter {
    /// A `Retry-After` header: delay-seconds or an HTTP-date.
    public static func parseHeader(_ value: String, now: Date = Date()) -> Duration? {
        let trimmed = value.trimmingCharacters(in: .whitespaces)
        if let seconds = Double(trimmed), seconds.isFinite, seconds >= 0 {
            return .milliseconds(Int64(seconds * 1000))
        }
        for format in ["EEE, dd MMM yyyy HH:mm:ss zzz", "EEEE, dd-MMM-yy HH:mm:ss zzz", "EEE MMM d HH:mm:ss yyyy"] {
            let formatter = DateFormatter()
            formatter.locale = Locale(identifier: "en_US_POSIX")
            formatter.timeZone = TimeZone(identifier: "GMT")
            formatter.dateFormat = format
            if let date = formatter.date(from: trimmed) {
                return until(date, now: now)
            }
        }
        return nil
    }

    /// A body `retryAfter`: an ISO-8601 timestamp, or an ISO-8601 duration such as `PT30S`.
    public static func parseISO8601(_ value: String, now: Date = Date()) -> Duration? {
        let trimmed = value.trimmingCharacters(in: .whitespaces)
        if trimmed.hasPrefix("P") {
            return parseISODuration(trimmed)
        }
        let formatter = ISO8601DateFormatter()
        formatter.formatOptions = [.withInternetDateTime, .withFractionalSeconds]
        if let date = formatter.date(from: trimmed) { return until(date, now: now) }
        formatter.formatOptions = [.withInternetDateTime]
        if let date = formatter.date(from: trimmed) { return until(date, now: now) }
        return nil
    }

    private static func until(_ date: Date, now: Date) -> Duration {
        .milliseconds(Int64(max(0, date.timeIntervalSince(now)) * 1000))
    }

    /// `PnDTnHnMnS` (days and time parts only; years and months are meaningless here).
    private static func parseISODuration(_ text: String) -> Duration? {
        var seconds = 0.0
        var number = ""
        var inTime = false
        for character in text.dropFirst() {
            switch character {
            case "T": inTime = true
            case "0"..."9", ".", ",": number.append(character == "," ? "." : character)
            case "D", "H", "M", "S":
                guard let value = Double(number) else { return nil }
                switch (character, inTime) {
                case ("D", false): seconds += value * 86_400
                case ("H", true): seconds += value * 3_600
                case ("M", true): seconds += value * 60
                case ("S", true): seconds += value
                default: return nil
                }
                number = ""
            default: return nil
            }
        }
        guard number.isEmpty else { return nil }
        return .milliseconds(Int64(seconds * 1000))
    }
}
