import Foundation
import Synchronization

/// Parses the waits useapi asks for. Every hint is untrusted: a negative,
/// unparseable or non-finite value gives nil (ignored), and a huge one is
/// clamped to ``maximum``, so no header or body can trap or stall the caller.
public enum RetryAfter {
    /// The longest wait a hint can express (the worker caps it lower still).
    public static let maximum: Duration = .seconds(86_400)
    /// Longer hints are not numbers or dates anyone sends on purpose.
    static let maximumLength = 128

    /// A `Retry-After` header: delay-seconds (`120`, leniently `1.5` or `1e3`)
    /// or an HTTP-date (IMF-fixdate, RFC 850 or asctime).
    public static func parseHeader(_ value: String, now: Date = Date()) -> Duration? {
        let trimmed = value.trimmingCharacters(in: .whitespaces)
        guard !trimmed.isEmpty, trimmed.utf8.count <= maximumLength else { return nil }
        if trimmed.utf8.allSatisfy(isNumeral) {
            return Double(trimmed).flatMap(duration(seconds:))
        }
        // The three HTTP-date forms are 24 to 33 characters long.
        guard (20...40).contains(trimmed.utf8.count), let seconds = UntrustedDate.http(trimmed) else { return nil }
        return until(Date(timeIntervalSince1970: seconds), now: now)
    }

    /// A body `retryAfter`: an ISO-8601 timestamp, or an ISO-8601 duration such as `PT30S`.
    public static func parseISO8601(_ value: String, now: Date = Date()) -> Duration? {
        let trimmed = value.trimmingCharacters(in: .whitespaces)
        guard !trimmed.isEmpty, trimmed.utf8.count <= maximumLength else { return nil }
        if trimmed.hasPrefix("P") {
            return parseISODuration(trimmed)
        }
        guard let seconds = UntrustedDate.iso8601(trimmed) else { return nil }
        return until(Date(timeIntervalSince1970: seconds), now: now)
    }

    /// A wait of `seconds`, clamped to ``maximum`` (+infinity included); nil
    /// when negative or NaN. The only conversion of an outside number into a
    /// `Duration` here: the clamp comes before the multiplication, so it cannot overflow.
    public static func duration(seconds: Double) -> Duration? {
        guard !seconds.isNaN, seconds >= 0 else { return nil }
        let maximumSeconds = Double(maximum.components.seconds)
        return .milliseconds(Int64((min(seconds, maximumSeconds) * 1000).rounded(.up)))
    }

    private static func isNumeral(_ byte: UInt8) -> Bool {
        switch byte {
        case UInt8(ascii: "0")...UInt8(ascii: "9"), UInt8(ascii: "."), UInt8(ascii: "e"), UInt8(ascii: "E"), UInt8(ascii: "+"):
            true
        default:
            false
        }
    }

    private static func until(_ date: Date, now: Date) -> Duration? {
        duration(seconds: max(0, date.timeIntervalSince(now)))
    }

    /// `PnDTnHnMnS` (days and time parts only; years and months are meaningless here).
    private static func parseISODuration(_ text: String) -> Duration? {
        var seconds = 0.0
        var number = ""
        var inTime = false
        var components = 0
        var timeComponents = 0
        for character in text.dropFirst() {
            switch character {
            case "T":
                guard !inTime, number.isEmpty else { return nil }
                inTime = true
            case "0"..."9", ".", ",": number.append(character == "," ? "." : character)
            case "D", "H", "M", "S":
                // Double's parser accepts only what is left: digits and one dot.
                guard let value = Double(number) else { return nil }
                switch (character, inTime) {
                case ("D", false): seconds += value * 86_400
                case ("H", true): seconds += value * 3_600
                case ("M", true): seconds += value * 60
                case ("S", true): seconds += value
                default: return nil
                }
                number = ""
                components += 1
                if inTime { timeComponents += 1 }
            default: return nil
            }
        }
        guard number.isEmpty, components > 0, !inTime || timeComponents > 0 else { return nil }
        // `seconds` may be +infinity after `1e308` days: duration(seconds:) clamps it.
        return duration(seconds: seconds)
    }
}
