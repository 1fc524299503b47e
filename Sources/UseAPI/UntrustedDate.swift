/// Dates from outside (useapi's wait hints, records of the status topic,
/// operators' flags), read without Foundation's formatters: ICU, under
/// `DateFormatter` and `ISO8601DateFormatter`, stopped the process on hostile input (a trap on non-ASCII bytes, and SIGFPE inside
/// `SimpleDateFormat::parse` on a fuzzed ASCII timestamp). Every form has a
/// fixed shape, so each is checked byte by byte and converted with integer
/// arithmetic on bounded fields: nothing here can trap.
public enum UntrustedDate {
    /// Seconds since 1970 of an ISO-8601 timestamp in RFC 3339's shape:
    /// `2024-11-22T09:10:28Z`, with an optional fraction (`.5`, up to 9
    /// digits) and `Z`, `+02:00` or `-0530`. nil when anything else.
    public static func iso8601(_ text: String) -> Double? {
        var reader = Reader(Array(text.utf8))
        guard let year = reader.number(digits: 4), reader.skip("-"), let month = reader.number(digits: 2), reader.skip("-"),
            let day = reader.number(digits: 2), reader.skip("T") || reader.skip("t") || reader.skip(" "),
            let time = reader.time()
        else { return nil }
        var fraction = 0.0
        if reader.skip(".") || reader.skip(",") {
            var scale = 0.1
            var digits = 0
            while let digit = reader.digit() {
                digits += 1
                guard digits <= 9 else { return nil }
                fraction += Double(digit) * scale
                scale /= 10
            }
            guard digits > 0 else { return nil }
        }
        var offset: Int64 = 0
        if reader.skip("Z") || reader.skip("z") {
        } else if let sign: Int64 = reader.skip("+") ? 1 : (reader.skip("-") ? -1 : nil) {
            guard let hours = reader.number(digits: 2), hours <= 23 else { return nil }
            _ = reader.skip(":")
            guard let minutes = reader.number(digits: 2), minutes <= 59 else { return nil }
            offset = sign * (hours * 3_600 + minutes * 60)
        } else {
            return nil
        }
        guard reader.isAtEnd, let seconds = epochSeconds(year: year, month: month, day: day, time: time) else { return nil }
        return Double(seconds - offset) + fraction
    }

    /// Seconds since 1970 of an HTTP-date (RFC 9110): IMF-fixdate
    /// `Sun, 06 Nov 1994 08:49:37 GMT`, RFC 850 `Sunday, 06-Nov-94 08:49:37 GMT`
    /// or asctime `Sun Nov  6 08:49:37 1994`. The weekday is not checked
    /// against the date (a sender's mistake there changes nothing).
    public static func http(_ text: String) -> Double? {
        var reader = Reader(Array(text.utf8))
        guard reader.letters() != nil else { return nil }
        if reader.skip(",") {
            guard reader.skip(" "), let day = reader.number(digits: 2) else { return nil }
            if reader.skip(" ") {
                // IMF-fixdate
                guard let month = reader.month(), reader.skip(" "), let year = reader.number(digits: 4), reader.skip(" "),
                    let time = reader.time(), reader.skip(" "), reader.skipGMT(), reader.isAtEnd
                else { return nil }
                return epochSeconds(year: year, month: month, day: day, time: time).map(Double.init)
            }
            // RFC 850: a two-digit year; RFC 9110 reads one more than 50
            // years ahead as the past century, here simply 70-99 as 19xx.
            guard reader.skip("-"), let month = reader.month(), reader.skip("-"), let shortYear = reader.number(digits: 2),
                reader.skip(" "), let time = reader.time(), reader.skip(" "), reader.skipGMT(), reader.isAtEnd
            else { return nil }
            let year = shortYear + (shortYear >= 70 ? 1_900 : 2_000)
            return epochSeconds(year: year, month: month, day: day, time: time).map(Double.init)
        }
        // asctime: the day is padded with a space, or has two digits.
        guard reader.skip(" "), let month = reader.month(), reader.skip(" ") else { return nil }
        let day: Int64?
        if reader.skip(" ") { day = reader.number(digits: 1) } else { day = reader.number(digits: 2) }
        guard let day, reader.skip(" "), let time = reader.time(), reader.skip(" "), let year = reader.number(digits: 4), reader.isAtEnd
        else { return nil }
        return epochSeconds(year: year, month: month, day: day, time: time).map(Double.init)
    }

    /// Seconds since 1970 of a proleptic Gregorian date and time of day;
    /// nil when a field is out of range (a leap second, 60, counts as 59).
    private static func epochSeconds(year: Int64, month: Int64, day: Int64, time: (Int64, Int64, Int64)) -> Int64? {
        let (hour, minute, second) = time
        guard (1...12).contains(month), (1...31).contains(day), (0...23).contains(hour), (0...59).contains(minute),
            (0...60).contains(second)
        else { return nil }
        let daysInMonth: [Int64] = [31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31]
        let isLeap = year % 4 == 0 && (year % 100 != 0 || year % 400 == 0)
        guard day <= daysInMonth[Int(month - 1)] + (month == 2 && isLeap ? 1 : 0) else { return nil }
        // Howard Hinnant's days_from_civil; the year has at most four digits.
        let shiftedYear = month <= 2 ? year - 1 : year
        let era = (shiftedYear >= 0 ? shiftedYear : shiftedYear - 399) / 400
        let yearOfEra = shiftedYear - era * 400
        let dayOfYear = (153 * (month > 2 ? month - 3 : month + 9) + 2) / 5 + day - 1
        let dayOfEra = yearOfEra * 365 + yearOfEra / 4 - yearOfEra / 100 + dayOfYear
        let days = era * 146_097 + dayOfEra - 719_468
        return days * 86_400 + hour * 3_600 + minute * 60 + min(second, 59)
    }

    private struct Reader {
        let bytes: [UInt8]
        var index = 0

        init(_ bytes: [UInt8]) { self.bytes = bytes }

        var isAtEnd: Bool { index == bytes.count }

        mutating func skip(_ character: Unicode.Scalar) -> Bool {
            guard index < bytes.count, bytes[index] == UInt8(ascii: character) else { return false }
            index += 1
            return true
        }

        mutating func digit() -> Int64? {
            guard index < bytes.count, (0x30...0x39).contains(bytes[index]) else { return nil }
            index += 1
            return Int64(bytes[index - 1] - 0x30)
        }

        /// Exactly `digits` decimal digits.
        mutating func number(digits: Int) -> Int64? {
            var value: Int64 = 0
            for _ in 0..<digits {
                guard let digit = digit() else { return nil }
                value = value * 10 + digit
            }
            return value
        }

        /// `HH:MM:SS`.
        mutating func time() -> (Int64, Int64, Int64)? {
            guard let hour = number(digits: 2), skip(":"), let minute = number(digits: 2), skip(":"), let second = number(digits: 2)
            else { return nil }
            return (hour, minute, second)
        }

        /// One or more ASCII letters (a weekday name; not checked further).
        mutating func letters() -> Int? {
            let start = index
            while index < bytes.count, (0x41...0x5A).contains(bytes[index]) || (0x61...0x7A).contains(bytes[index]) { index += 1 }
            return index > start ? index - start : nil
        }

        /// A three-letter English month name, as HTTP-dates write it.
        mutating func month() -> Int64? {
            guard index + 3 <= bytes.count else { return nil }
            let name = String(decoding: bytes[index..<index + 3], as: UTF8.self)
            let months = ["Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"]
            guard let position = months.firstIndex(of: name) else { return nil }
            index += 3
            return Int64(position + 1)
        }

        mutating func skipGMT() -> Bool {
            skip("G") && skip("M") && skip("T")
        }
    }
}
