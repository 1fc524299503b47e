import Foundation
import Logging
import Synchronization

/// Writes whole lines to standard output, one writer at a time.
final class LineWriter: Sendable {
    static let standardOutput = LineWriter()
    private let lock = Mutex(())

    func write(_ line: String) {
        lock.withLock { _ in
            var line = line
            line.append("\n")
            line.withUTF8 { bytes in
                var offset = 0
                while offset < bytes.count {
                    let written = Foundation.write(STDOUT_FILENO, bytes.baseAddress! + offset, bytes.count - offset)
                    if written <= 0 { break }
                    offset += written
                }
            }
        }
    }
}

/// The metadata value as one string (arrays and dictionaries flattened).
func flatten(_ value: Logger.MetadataValue) -> String {
    switch value {
    case .string(let text): text
    case .stringConvertible(let convertible): convertible.description
    case .array(let values): "[" + values.map(flatten).joined(separator: ", ") + "]"
    case .dictionary(let values): "{" + values.sorted { $0.key < $1.key }.map { "\($0.key): \(flatten($0.value))" }.joined(separator: ", ") + "}"
    }
}

/// Escapes a string for a JSON string literal (control characters, CR/LF,
/// quotes and backslashes), so message content can never break a log line.
func jsonEscaped(_ text: String) -> String {
    var escaped = ""
    escaped.reserveCapacity(text.utf8.count + 2)
    for scalar in text.unicodeScalars {
        switch scalar {
        case "\"": escaped += "\\\""
        case "\\": escaped += "\\\\"
        case "\n": escaped += "\\n"
        case "\r": escaped += "\\r"
        case "\t": escaped += "\\t"
        case _ where scalar.value < 0x20 || scalar.value == 0x7F || (0x80...0x9F).contains(scalar.value)
            || scalar == "\u{2028}" || scalar == "\u{2029}":
            escaped += String(format: "\\u%04X", scalar.value)
        default: escaped.unicodeScalars.append(scalar)
        }
    }
    return escaped
}

private func timestamp() -> String {
    CommandResult.iso8601(Date())
}

/// JSON lines: `{"ts", "level", "msg", "logger", "worker", ...metadata}`.
public struct JSONLogHandler: LogHandler {
    public var metadata: Logger.Metadata = [:]
    public var logLevel: Logger.Level = .info
    let label: String
    let writer: LineWriter

    public init(label: String, metadata: Logger.Metadata = [:]) {
        self.label = label
        self.metadata = metadata
        self.writer = .standardOutput
    }

    public subscript(metadataKey key: String) -> Logger.Metadata.Value? {
        get { metadata[key] }
        set { metadata[key] = newValue }
    }

    public func log(event: LogEvent) {
        var fields: [(String, String)] = [
            ("ts", timestamp()), ("level", event.level.rawValue), ("msg", event.message.description), ("logger", label),
        ]
        let merged = metadata.merging(event.metadata ?? [:]) { $1 }
        for (key, value) in merged.sorted(by: { $0.key < $1.key }) {
            fields.append((key, flatten(value)))
        }
        writer.write("{" + fields.map { "\"\(jsonEscaped($0.0))\":\"\(jsonEscaped($0.1))\"" }.joined(separator: ",") + "}")
    }
}

/// Text lines for people: `ts LEVEL msg key=value ...`, control characters escaped.
public struct TextLogHandler: LogHandler {
    public var metadata: Logger.Metadata = [:]
    public var logLevel: Logger.Level = .info
    let label: String
    let writer: LineWriter

    public init(label: String, metadata: Logger.Metadata = [:]) {
        self.label = label
        self.metadata = metadata
        self.writer = .standardOutput
    }

    public subscript(metadataKey key: String) -> Logger.Metadata.Value? {
        get { metadata[key] }
        set { metadata[key] = newValue }
    }

    public func log(event: LogEvent) {
        let merged = metadata.merging(event.metadata ?? [:]) { $1 }
        var line = "\(timestamp()) \(event.level.rawValue.uppercased()) \(jsonEscaped(event.message.description))"
        for (key, value) in merged.sorted(by: { $0.key < $1.key }) {
            let text = jsonEscaped(flatten(value))
            line += text.contains(" ") || text.isEmpty ? " \(key)=\"\(text)\"" : " \(key)=\(text)"
        }
        writer.write(line)
    }
}
