/// A JSON value as it was written, for input the worker does not trust
/// (command records, useapi's answers).
///
/// Numbers keep their text, so a value no machine type can hold (`1e400`,
/// `99999999999999999999`) is still a valid JSON number: the reader decides
/// whether it needs it. Objects keep the keys they repeat, so a reader can
/// reject a document whose meaning depends on which value wins.
public enum JSONValue: Sendable, Equatable {
    case null
    case bool(Bool)
    case number(JSONNumber)
    case string(String)
    case array([JSONValue])
    case object(JSONObject)
    /// A valid array or object nested deeper than the parser builds values
    /// for (``JSONParser/maxDepth``), kept as its JSON text.
    case nested(String)

    /// The member `key` of an object (the first, if repeated); nil otherwise.
    public subscript(key: String) -> JSONValue? {
        if case .object(let object) = self { object[key] } else { nil }
    }

    public var string: String? { if case .string(let value) = self { value } else { nil } }
    public var number: JSONNumber? { if case .number(let value) = self { value } else { nil } }
    public var bool: Bool? { if case .bool(let value) = self { value } else { nil } }
    public var object: JSONObject? { if case .object(let value) = self { value } else { nil } }
    public var isNull: Bool { self == .null }
    /// A whole number within `Int` (see ``JSONNumber/int64``).
    public var int: Int? { number?.int64.flatMap { Int(exactly: $0) } }
    /// A finite number as a `Double`.
    public var double: Double? { number?.finiteDouble }

    /// "a string", "a number", ...: for messages that name what was found.
    public var typeName: String {
        switch self {
        case .null: "null"
        case .bool: "a boolean"
        case .number: "a number"
        case .string: "a string"
        case .array: "an array"
        case .object: "an object"
        case .nested: "a deeply nested value"
        }
    }
}

/// A JSON number, kept as its (already validated) text.
public struct JSONNumber: Sendable, Hashable, CustomStringConvertible {
    /// The number exactly as written, e.g. `-12`, `5.0`, `1e400`.
    public let text: String

    init(text: String) {
        self.text = text
    }

    /// The value when it is a whole number within `Int64` (`5`, `5.0`, `5e0`
    /// and `0.5e1` are; `5.5`, `10.000000000000000001`, `1e19` and `1e400`
    /// are not). Decided on the decimal text, exactly, never through a
    /// `Double`; never traps.
    public var int64: Int64? {
        if let exact = Int64(text) { return exact }
        var bytes = Array(text.utf8)[...]
        let negative = bytes.first == UInt8(ascii: "-")
        if negative { bytes = bytes.dropFirst() }
        var digits: [UInt8] = []
        var fractionDigits = 0
        var exponentBytes: ArraySlice<UInt8> = []
        var inFraction = false
        for index in bytes.indices {
            let byte = bytes[index]
            if byte == UInt8(ascii: ".") {
                inFraction = true
            } else if byte == UInt8(ascii: "e") || byte == UInt8(ascii: "E") {
                exponentBytes = bytes[(index + 1)...]
                break
            } else {
                digits.append(byte)
                if inFraction { fractionDigits += 1 }
            }
        }
        let exponentText = String(decoding: exponentBytes, as: UTF8.self)
        if digits.allSatisfy({ $0 == UInt8(ascii: "0") }) { return 0 }
        // A longer exponent decides nothing for an Int64: out of range, or a fraction.
        guard exponentText.utf8.count <= 8, let exponent = exponentText.isEmpty ? 0 : Int(exponentText) else { return nil }
        while let last = digits.last, last == UInt8(ascii: "0"), digits.count > 1 {
            digits.removeLast()
            fractionDigits -= 1
        }
        while digits.first == UInt8(ascii: "0"), digits.count > 1 { digits.removeFirst() }
        let scale = exponent - fractionDigits
        guard scale >= 0, digits.count + scale <= 19 else { return nil }
        let integer = String(decoding: digits, as: UTF8.self) + String(repeating: "0", count: scale)
        return Int64((negative ? "-" : "") + integer)
    }

    /// The value as a `Double` when it is finite (`1e400` is not).
    public var finiteDouble: Double? {
        guard let value = Double(text), value.isFinite else { return nil }
        return value
    }

    public var description: String { text }
}

/// A JSON object's members. Lookups see the first occurrence of a key;
/// ``repeatedKeys`` lists every key written more than once.
public struct JSONObject: Sendable, Equatable {
    public private(set) var members: [String: JSONValue] = [:]
    /// Keys that occur more than once, in the order their repetition was met.
    public private(set) var repeatedKeys: [String] = []

    public init() {}

    public subscript(key: String) -> JSONValue? { members[key] }

    public var keys: Dictionary<String, JSONValue>.Keys { members.keys }

    mutating func add(_ key: String, _ value: JSONValue) {
        if members[key] == nil {
            members[key] = value
        } else if !repeatedKeys.contains(key) {
            repeatedKeys.append(key)
        }
    }
}
