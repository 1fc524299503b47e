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

    /// The value when it is a whole number within `Int64` (`5`, `5.0` and
    /// `5e0` are; `5.5`, `1e19` and `1e400` are not). Never traps.
    public var int64: Int64? {
        if let exact = Int64(text) { return exact }
        guard let value = finiteDouble, value == value.rounded(.towardZero) else { return nil }
        // Int64(exactly:) rejects 2^63 and beyond instead of trapping.
        return Int64(exactly: value)
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
