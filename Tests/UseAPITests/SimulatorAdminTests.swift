import AsyncHTTPClient
import Foundation
import NIOCore
import NIOHTTP1
import Testing
import UseAPI
import UseAPISimulator

@Suite("Simulator admin endpoint and journal", .timeLimit(.minutes(2)))
struct SimulatorAdminTests {
    func admin(_ method: HTTPMethod, _ path: String, body: String? = nil, baseURL: String) async throws -> (Int, String) {
        var request = HTTPClientRequest(url: baseURL + path)
        request.method = method
        if let body { request.body = .bytes(ByteBuffer(string: body)) }
        let response = try await HTTPClient.shared.execute(request, timeout: .seconds(5))
        let bytes = try await response.body.collect(upTo: 1 << 20)
        return (Int(response.status.code), String(buffer: bytes))
    }

    @Test("faults and account behaviours change at run time; the journal is served masked and resettable")
    func adminEndpoint() async throws {
        try await withSimulator { simulator, client in
            let baseURL = await simulator.baseURL()
            let (faultStatus, _) = try await admin(
                .PUT,
                "/_admin/faults",
                body: #"[{"emailPrefix":"flaky","failFirst":1}]"#,
                baseURL: baseURL
            )
            #expect(faultStatus == 200)
            let flaky = await failure { _ = try await client.upsert(email: "flaky@x.io", password: "hunter2-pw", maxJobs: 1) }
            #expect(flaky?.apiError?.statusCode == 503)

            let (behaviorStatus, _) = try await admin(.PUT, "/_admin/accounts/gone%40x.io", body: #"{"suspended":{}}"#, baseURL: baseURL)
            #expect(behaviorStatus == 200)
            let suspended = await failure { _ = try await client.upsert(email: "gone@x.io", password: "hunter2-pw", maxJobs: 1) }
            #expect(suspended?.apiError?.error == "This account has been suspended.")

            let (journalStatus, journalText) = try await admin(.GET, "/_admin/journal", baseURL: baseURL)
            #expect(journalStatus == 200)
            let journal = try JSONDecoder().decode(SimulatorJournal.self, from: Data(journalText.utf8))
            #expect(journal.requests.map(\.email) == ["flaky@x.io", "gone@x.io"])
            #expect(journal.requests.map(\.status) == [503, 401])
            #expect(!journalText.contains(testToken))
            #expect(!journalText.contains("hunter2-pw"))

            let (resetStatus, _) = try await admin(.DELETE, "/_admin/journal", baseURL: baseURL)
            #expect(resetStatus == 200)
            #expect(simulator.journal.totalRequests == 0)
        }
    }

    @Test("the journal records peak concurrency and overlapping calls for one email")
    func concurrencyTracking() async throws {
        var slow = SimulatedFault()
        slow.latencyMs = 300
        try await withSimulator(faults: [slow]) { simulator, client in
            try await withThrowingTaskGroup(of: Void.self) { group in
                for index in 0..<4 {
                    group.addTask { _ = try await client.upsert(email: "user\(index)@x.io", password: "p", maxJobs: 1) }
                }
                try await group.waitForAll()
            }
            #expect(simulator.journal.maxConcurrentRequests == 4)
            #expect(simulator.journal.overlappingEmails.isEmpty)

            try await withThrowingTaskGroup(of: Void.self) { group in
                for _ in 0..<2 {
                    group.addTask { _ = try await client.upsert(email: "same@x.io", password: "p", maxJobs: 1) }
                }
                try await group.waitForAll()
            }
            #expect(simulator.journal.overlappingEmails == ["same@x.io"])
        }
    }
}
