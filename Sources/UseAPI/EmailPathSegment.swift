/// Percent-encodes an email as exactly one URL path segment.
///
/// Only RFC 3986 unreserved characters and `@` stay as they are; everything
/// else (`/ ? # % [ ]`, spaces, controls, non-ASCII as UTF-8 bytes) is
/// encoded, so no email can add a segment, a query or a fragment. A segment
/// that would read as `.` or `..` has its dots encoded too.
public func encodeEmailPathSegment(_ email: String) -> String {
    var encoded = ""
    encoded.reserveCapacity(email.utf8.count)
    for byte in email.utf8 {
        switch byte {
        case UInt8(ascii: "a")...UInt8(ascii: "z"), UInt8(ascii: "A")...UInt8(ascii: "Z"),
            UInt8(ascii: "0")...UInt8(ascii: "9"), UInt8(ascii: "-"), UInt8(ascii: "."),
            UInt8(ascii: "_"), UInt8(ascii: "~"), UInt8(ascii: "@"):
            encoded.unicodeScalars.append(Unicode.Scalar(byte))
        default:
            encoded += "%" + hexDigit(byte >> 4) + hexDigit(byte & 0x0F)
        }
    }
    if encoded == "." || encoded == ".." {
        return String(repeating: "%2E", count: encoded.count)
    }
    return encoded
}

private func hexDigit(_ value: UInt8) -> String {
    String(UnicodeScalar(value < 10 ? value + 48 : value + 55))
}
