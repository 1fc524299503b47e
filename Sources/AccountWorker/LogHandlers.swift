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
    case .dictionary(let values):
        "{" + values.sorted { $0.key < $1.key }.map { "\($0.key): \(flatten($0.value))" }.joined(separator: ", ") + "}"
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
        case _
        where scalar.value < 0x20 || scalar.value == 0x7F || (0x80...0x9F).contains(scalar.value)
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

/// The worker's log lines on standard output, as JSON lines (`{"ts",
/// "level", "msg", "logger", ...metadata}`) or as text for people
/// (`ts LEVEL msg key=value ...`). Control characters are always escaped.
public struct WorkerLogHandler: LogHandler {
    public enum Format: String, Sendable {
        case json
        case text
    }

    public var metadata: Logger.Metadata = [:]
    public var logLevel: Logger.Level = .info
    let label: String
    let format: Format
    let writer: LineWriter

    public init(label: String, format: Format, metadata: Logger.Metadata = [:]) {
        self.label = label
        self.format = format
        self.metadata = metadata
        self.writer = .standardOutput
    }

    public subscript(metadataKey key: String) -> Logger.Metadata.Value? {
        get { metadata[key] }
        set { metadata[key] = newValue }
    }

    public func log(event: LogEvent) {
        writer.write(render(event))
    }

    func render(_ event: LogEvent) -> String {
        let merged = metadata.merging(event.metadata ?? [:]) { $1 }.sorted { $0.key < $1.key }
        switch format {
        case .json:
            var fields: [(String, String)] = [
                ("ts", timestamp()), ("level", event.level.rawValue), ("msg", event.message.description), ("logger", label),
            ]
            fields += merged.map { ($0.key, flatten($0.value)) }
            return "{" + fields.map { "\"\(jsonEscaped($0.0))\":\"\(jsonEscaped($0.1))\"" }.joined(separator: ",") + "}"
        case .text:
            var line = "\(timestamp()) \(event.level.rawValue.uppercased()) \(jsonEscaped(event.message.description))"
            for (key, value) in merged {
                let text = jsonEscaped(flatten(value))
                line += text.contains(" ") || text.isEmpty ? " \(key)=\"\(text)\"" : " \(key)=\(text)"
            }
            return line
        }
    }
}
