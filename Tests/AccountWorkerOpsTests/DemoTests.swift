import AccountWorkerOps
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
