/// Writes one JSON object straight to UTF-8 bytes, member by member, byte
/// for byte as `JSONEncoder` with `[.sortedKeys, .withoutEscapingSlashes]`
/// writes it when the members come in key order.
///
/// For records with a fixed shape written once per command (results and
/// account status records): `JSONEncoder`'s generic keyed containers were
/// 11.5 % of the worker's CPU (see the README's "Performance"). Keys are
/// the caller's literals; values are escaped.
public struct JSONObjectWriter: Sendable {
    public private(set) var bytes: [UInt8]
    private var needsComma = false

    /// Starts an object; `capacity` is a hint in bytes.
    public init(reservingCapacity capacity: Int = 512) {
        bytes = []
        bytes.reserveCapacity(capacity)
        bytes.append(UInt8(ascii: "{"))
    }

    /// A string member; nil writes `null`.
    public mutating func write(_ key: StaticString, string value: String?) {
        writeKey(key)
        if let value { Self.appendString(value, to: &bytes) } else { appendNull() }
    }

    /// An integer member; nil writes `null`.
    public mutating func write(_ key: StaticString, integer value: Int64?) {
        writeKey(key)
        guard let value else { return appendNull() }
        bytes.append(contentsOf: String(value).utf8)
    }

    /// A number member as `JSONEncoder` writes a `Double` (shortest
    /// round-trip text, `1.0` as `1`, exponents as `e+300`); nil, and a
    /// value JSON cannot hold (infinite, NaN), write `null`.
    public mutating func write(_ key: StaticString, number value: Double?) {
        writeKey(key)
        guard let value, value.isFinite else { return appendNull() }
        var text = value.description
        if text.hasSuffix(".0") { text.removeLast(2) }
        bytes.append(contentsOf: text.utf8)
    }

    /// A nested object written by `body`.
    public mutating func write(_ key: StaticString, object body: (inout JSONObjectWriter) -> Void) {
        writeKey(key)
        var nested = JSONObjectWriter(reservingCapacity: 128)
        body(&nested)
        bytes.append(contentsOf: nested.finish())
    }

    /// A `null` member.
    public mutating func writeNull(_ key: StaticString) {
        writeKey(key)
        appendNull()
    }

    /// The object's bytes, closed.
    public consuming func finish() -> [UInt8] {
        bytes.append(UInt8(ascii: "}"))
        return bytes
    }

    private mutating func appendNull() {
        bytes.append(contentsOf: [0x6E, 0x75, 0x6C, 0x6C])  // null
    }

    private mutating func writeKey(_ key: StaticString) {
        if needsComma { bytes.append(UInt8(ascii: ",")) }
        needsComma = true
        bytes.append(UInt8(ascii: "\""))
        key.withUTF8Buffer { bytes.append(contentsOf: $0) }
        bytes.append(contentsOf: [UInt8(ascii: "\""), UInt8(ascii: ":")])
    }

    private static let hexDigits: [UInt8] = Array("0123456789abcdef".utf8)

    /// `text` as a JSON string literal: `"` and `\` escaped, control
    /// characters as `\b \f \n \r \t` or `\u00xx`; everything else as is.
    public static func appendString(_ text: String, to bytes: inout [UInt8]) {
        bytes.append(UInt8(ascii: "\""))
        for byte in text.utf8 {
            switch byte {
            case UInt8(ascii: "\""): bytes.append(contentsOf: [UInt8(ascii: "\\"), UInt8(ascii: "\"")])
            case UInt8(ascii: "\\"): bytes.append(contentsOf: [UInt8(ascii: "\\"), UInt8(ascii: "\\")])
            case 0x08: bytes.append(contentsOf: [UInt8(ascii: "\\"), UInt8(ascii: "b")])
            case 0x0C: bytes.append(contentsOf: [UInt8(ascii: "\\"), UInt8(ascii: "f")])
            case 0x0A: bytes.append(contentsOf: [UInt8(ascii: "\\"), UInt8(ascii: "n")])
            case 0x0D: bytes.append(contentsOf: [UInt8(ascii: "\\"), UInt8(ascii: "r")])
            case 0x09: bytes.append(contentsOf: [UInt8(ascii: "\\"), UInt8(ascii: "t")])
            case 0x00..<0x20:
                bytes.append(contentsOf: [UInt8(ascii: "\\"), UInt8(ascii: "u"), UInt8(ascii: "0"), UInt8(ascii: "0")])
                bytes.append(hexDigits[Int(byte >> 4)])
                bytes.append(hexDigits[Int(byte & 0xF)])
            default:
                // UTF-8 bytes of a Swift String are valid: multi-byte
                // sequences are copied whole, never split by an escape.
                bytes.append(byte)
            }
        }
        bytes.append(UInt8(ascii: "\""))
    }
}
