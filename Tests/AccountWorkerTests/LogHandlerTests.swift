import Foundation
import Logging
import Testing

@testable import AccountWorker

@Suite("Log lines")
struct LogHandlerTests {
    func event(_ metadata: Logger.Metadata) -> LogEvent {
        LogEvent(level: .info, message: "command processed", metadata: metadata, source: nil, file: #file, function: #function, line: #line)
    }

    @Test("JSON lines: one object per line, message content escaped, metadata as dotted keys")
    func json() throws {
        let handler = WorkerLogHandler(label: "account-worker", format: .json, metadata: ["worker": "w-1"])
        let hostile = "evil\r\nINFO forged line\u{1B}[31m\u{0}\"quoted\"\\"
        let line = handler.render(event(["account.email": .string(hostile), "kafka.offset": .stringConvertible(42)]))
        #expect(!line.contains("\n") && !line.contains("\r") && !line.contains("\u{1B}") && !line.contains("\u{0}"))
        let object = try #require(try JSONSerialization.jsonObject(with: Data(line.utf8)) as? [String: String])
        #expect(object["account.email"] == hostile)
        #expect(object["kafka.offset"] == "42")
        #expect(object["msg"] == "command processed")
        #expect(object["level"] == "info")
        #expect(object["worker"] == "w-1")
        #expect(object["ts"]?.hasSuffix("Z") == true)
    }

    @Test("text lines for people: key=value, control characters escaped")
    func text() {
        let handler = WorkerLogHandler(label: "account-worker", format: .text)
        let line = handler.render(event(["account.email": "a\nb@x.io", "result.code": "200", "note": "two words"]))
        #expect(line.contains("INFO command processed"))
        #expect(line.contains(#"account.email=a\nb@x.io"#))
        #expect(line.contains("result.code=200"))
        #expect(line.contains(#"note="two words""#))
        #expect(!line.contains("\n"))
    }
}
