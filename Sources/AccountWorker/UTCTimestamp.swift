import Foundation

/// ISO-8601 UTC timestamps with milliseconds (`2026-11-29T10:00:00.123Z`),
/// the text `Date.ISO8601FormatStyle(includingFractionalSeconds: true)`
/// gives, computed from the date's number alone.
///
/// The format style resolves its GMT time zone through ICU, which loaded
/// about 3 MiB of ICU's time-zone data into every worker for a constant
/// offset of zero, and costs more CPU than this per result and per log line.
/// Dates are proleptic Gregorian, as ISO 8601 says (the format style
/// switches to the Julian calendar before 1582); callers keep to years
/// 1970-9999.
public enum UTCTimestamp {
    /// 9999-12-31T23:59:59.999Z, the last instant a four-digit year can write.
    public static let latest: Double = 253_402_300_799.999

    /// The timestamp; empty for a date more than about 31,000 years from 1970.
    public static func string(from date: Date) -> String {
        let interval = date.timeIntervalSince1970
        guard interval.isFinite, abs(interval) < 1e12 else { return "" }
        // Whole seconds, then the fraction's milliseconds rounded down, as
        // the format style does (1735689600.123 is stored as ...600.12299...: .122).
        let seconds = interval.rounded(.down)
        let millisecond = Int64(((interval - seconds) * 1_000).rounded(.down))
        let (days, secondOfDay) = floorDivision(Int64(seconds), 86_400)
        let millisecondOfDay = secondOfDay * 1_000 + min(millisecond, 999)
        let (year, month, day) = civilDate(daysSinceEpoch: days)
        var text = ""
        text.reserveCapacity(24)
        append(year, digits: 4, to: &text)
        text.append("-")
        append(month, digits: 2, to: &text)
        text.append("-")
        append(day, digits: 2, to: &text)
        text.append("T")
        append(millisecondOfDay / 3_600_000, digits: 2, to: &text)
        text.append(":")
        append(millisecondOfDay / 60_000 % 60, digits: 2, to: &text)
        text.append(":")
        append(millisecondOfDay / 1_000 % 60, digits: 2, to: &text)
        text.append(".")
        append(millisecondOfDay % 1_000, digits: 3, to: &text)
        text.append("Z")
        return text
    }

    private static func floorDivision(_ value: Int64, _ divisor: Int64) -> (quotient: Int64, remainder: Int64) {
        let remainder = value % divisor
        return remainder < 0 ? (value / divisor - 1, remainder + divisor) : (value / divisor, remainder)
    }

    /// The proleptic Gregorian date of a day count from 1970-01-01 (Howard
    /// Hinnant's `civil_from_days`).
    private static func civilDate(daysSinceEpoch days: Int64) -> (year: Int64, month: Int64, day: Int64) {
        let shifted = days + 719_468
        let era = floorDivision(shifted, 146_097).quotient
        let dayOfEra = shifted - era * 146_097
        let yearOfEra = (dayOfEra - dayOfEra / 1_460 + dayOfEra / 36_524 - dayOfEra / 146_096) / 365
        let dayOfYear = dayOfEra - (365 * yearOfEra + yearOfEra / 4 - yearOfEra / 100)
        let shiftedMonth = (5 * dayOfYear + 2) / 153
        let day = dayOfYear - (153 * shiftedMonth + 2) / 5 + 1
        let month = shiftedMonth < 10 ? shiftedMonth + 3 : shiftedMonth - 9
        return (yearOfEra + era * 400 + (month <= 2 ? 1 : 0), month, day)
    }

    private static func append(_ value: Int64, digits: Int, to text: inout String) {
        let digitsText = String(value)
        if digitsText.count < digits { text.append(String(repeating: "0", count: digits - digitsText.count)) }
        text.append(digitsText)
    }
}
