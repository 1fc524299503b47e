import AccountWorkerOps
import Kafka
import Foundation
import Synchronization
import Testing

@Suite("The demo and result rendering", .timeLimit(.minutes(3)))
struct DemoTests {
    final class Lines: Sendable {
        let lines = Mutex<[String]>([])
    }

    @Test("the demo runs to completion and its summary matches the sample set")
    func demoSummary() async throws {
        let output = Lines()
        var options = Demo.Options()
        options.latencyMs = 20
        let summary = try await Demo.run(options) { line in output.lines.withLock { $0.append(line) } }
        let scenario = DemoScenario()
        #expect(scenario.commands.count == 30)
        #expect(summary == scenario.expectedSummary)
        #expect(summary.byCode == ["ok 200": 20, "ok 404": 1, "error 400": 5, "error 401": 2, "error 413": 1, "error 596": 1])
        #expect(summary.deadLetters == 2)
        let lines = output.lines.withLock { $0 }
        #expect(lines.contains { $0.hasPrefix("EMAIL") })
        #expect(lines.last == "summary: \(summary.text)")
        #expect(lines.contains { $0.hasPrefix("expiring soon (JWT within 7d): none; the soonest, ") && $0.hasSuffix("expires in 29d") }, "\(lines.suffix(3))")
        #expect(lines.contains { $0.hasPrefix("flaky@example.com") && $0.contains(" 3 ") })
        #expect(!lines.joined().contains("demo-pass-1"))
    }

    @Test("--count pads the sample with new accounts, or trims it")
    func count() {
        #expect(DemoScenario(count: 35).commands.count == 35)
        #expect(DemoScenario(count: 35).expectedSummary.byCode["ok 200"] == 25)
        #expect(DemoScenario(count: 5).commands.count == 5)
    }

    @Test("table rows: JWT expiry as a date and as 'in 29d', errors, no control characters")
    func rows() throws {
        let now = Date(timeIntervalSince1970: 1_732_266_598)
        let json =
            #"{"commandId":"c","type":"account.upsert","email":"a@x.io","status":"ok","code":200,"maxJobs":5,"jwt":{"exp":1734858598.864,"iat":1732266598.864,"id":1},"attempts":1}"#
        let ok = try #require(ResultView.decode(Array(json.utf8)))
        let row = ResultTable.row(ok, now: now)
        #expect(row.contains("2024-12-22 09:09"))
        #expect(row.contains("in 30d"))
        let bad =
            #"{"commandId":null,"type":"account.upsert","email":"evil\u001b[31m@x.io","status":"error","code":400,"error":"bad\nline","attempts":0}"#
        let error = try #require(ResultView.decode(Array(bad.utf8)))
        let errorRow = ResultTable.row(error, now: now)
        #expect(!errorRow.contains("\u{1B}") && !errorRow.contains("\n"))
        #expect(ResultTable.relative(3 * 3600) == "in 3h")
        #expect(ResultTable.relative(-5) == "expired")
    }
}

@Suite("Operator tool pieces: times, the status report, dead letters")
struct OperatorPieceTests {
    @Test("durations and --from times")
    func times() throws {
        #expect(OperatorTime.duration("7d") == 604_800.0)
        #expect(OperatorTime.duration("90s") == 90 && OperatorTime.duration("15m") == 900 && OperatorTime.duration("2h") == 7_200)
        #expect(OperatorTime.duration("120") == 120)
        for bad in ["", "d", "7x", "-1h", "1.5h", "99999999d"] { #expect(OperatorTime.duration(bad) == nil, "\(bad)") }
        let now = Date(timeIntervalSince1970: 1_800_000_000)
        #expect(OperatorTime.instant("1h", now: now) == now.addingTimeInterval(-3_600))
        #expect(OperatorTime.instant("2026-11-29T10:00:00Z")?.timeIntervalSince1970 == 1_795_946_400)
        #expect(OperatorTime.instant("2026-11-29T10:00:00.500Z")?.timeIntervalSince1970 == 1_795_946_400.5)
        #expect(OperatorTime.instant("yesterday") == nil)
    }

    @Test("times from records: hostile text and absurd dates give nil, empty or clamped values, never a trap")
    func hostileTimes() {
        // The bytes that made DateFormatter trap, as a record's jwtExpiresAt.
        let crash = String(decoding: [0x53, 0x75, 0xDF, 0xB1, 0x90, 0x89, 0x20, 0x20, 0x37, 0x20, 0x30, 0x3A, 0x34, 0x39] as [UInt8], as: UTF8.self)
        #expect(OperatorTime.instant(crash) == nil)
        #expect(OperatorTime.instant(String(repeating: "9", count: 10_000) + "-") == nil)
        let now = Date(timeIntervalSince1970: 1_800_000_000)
        for absurd in [1e300, -1e300, 1e12, -62_167_219_201] {
            let date = Date(timeIntervalSince1970: absurd)
            #expect(OperatorTime.format(date) == "" && OperatorTime.iso8601(date) == nil, "\(absurd)")
            #expect(abs(OperatorTime.secondsUntil(date, from: now)) <= 100 * 366 * 86_400)
            _ = ResultTable.relative(date.timeIntervalSince(now))
        }
        #expect(OperatorTime.format(Date(timeIntervalSince1970: 1_795_946_400.5)) == "2026-11-29 10:00:00")
        #expect(OperatorTime.iso8601(Date(timeIntervalSince1970: 1_795_946_400.5)) == "2026-11-29T10:00:00Z")
        #expect(ResultTable.relative(1e300) == "in 11574074d")
        #expect(ResultTable.relative(.infinity) == "in 11574074d")
        #expect(ResultTable.relative(.nan) == "expired" && ResultTable.relative(-.infinity) == "expired")
    }

    @Test("the status report: latest record per key wins, a tombstone forgets, only ok accounts with a JWT expire")
    func statusReport() throws {
        var report = AccountStatusReport()
        func add(_ key: String, _ json: String?) { report.add(key: Array(key.utf8), value: json.map { Array($0.utf8) }) }
        add("a@x.io", #"{"email":"a@x.io","status":"ok","code":200,"jwt":{"exp":1000,"iat":1,"id":1}}"#)
        add("a@x.io", #"{"email":"a@x.io","status":"ok","code":200,"jwt":{"exp":5000,"iat":1,"id":1}}"#)
        add("b@x.io", #"{"email":"b@x.io","status":"ok","code":200,"jwtExpiresAt":"1970-01-01T00:33:20Z"}"#)
        add("c@x.io", #"{"email":"c@x.io","status":"ok","code":200,"jwt":{"exp":10,"iat":1,"id":1}}"#)
        add("c@x.io", nil)
        add("d@x.io", #"{"email":"d@x.io","status":"error","code":596,"jwt":null}"#)
        #expect(report.accounts == 3 && report.records == 6 && report.failing == 1)
        #expect(report.withExpiry.map(\.key) == ["b@x.io", "a@x.io"])
        #expect(report.expiring(before: Date(timeIntervalSince1970: 3_000)).map(\.key) == ["b@x.io"])
    }

    @Test("a replayed dead letter keeps key, value and headers, minus dlq-*, plus dlq-replayed-from; a truncated one is not replayable")
    func deadLetterReplay() throws {
        let headers = [
            KafkaHeader(key: "traceparent", value: "00-x"), KafkaHeader(key: "dlq-source-topic", value: "cmd"),
            KafkaHeader(key: "dlq-source-partition", value: "2"), KafkaHeader(key: "dlq-source-offset", value: "41"),
            KafkaHeader(key: "dlq-reason", value: "not one JSON object"), KafkaHeader(key: "DLQ-Replayed-From", value: "old"),
        ]
        let letter = DeadLetter(KafkaMessage(topic: "dlq", partition: 0, offset: 5, key: Array("k".utf8), value: [1, 2], headers: headers))
        #expect(letter.sourceTopic == "cmd" && letter.sourcePartition == 2 && letter.sourceOffset == 41 && !letter.isTruncated)
        let record = try #require(letter.replay(to: "cmd", partition: 2))
        #expect(record.topic == "cmd" && record.partition == 2 && record.key == Array("k".utf8) && record.value == [1, 2])
        #expect(record.headers == [KafkaHeader(key: "traceparent", value: "00-x"), KafkaHeader(key: "dlq-replayed-from", value: "dlq/0/5")])
        var truncated = letter.message
        truncated.value = nil
        truncated.headers.append(KafkaHeader(key: "dlq-truncated", value: "true"))
        #expect(DeadLetter(truncated).replay(to: "cmd", partition: nil) == nil)
        #expect(DeadLetterTable.row(DeadLetter(truncated)).hasSuffix("truncated"))
    }
}
