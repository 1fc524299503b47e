import AsyncHTTPClient
import Foundation
import Logging
import Synchronization
import TestSupport
import Testing
import UseAPI
import UseAPISimulator

@Suite("UseAPI client against the simulator", .timeLimit(.minutes(2)))
struct UseAPIClientTests {
    @Test("upsert sends the contract's request and decodes the account")
    func upsert() async throws {
        try await withSimulator { simulator, client in
            let account = try await client.upsert(email: "alice@example.com", password: "pa55-w0rd", maxJobs: 5)
            #expect(account.email == "alice@example.com")
            #expect(account.maxJobs == 5)
            let jwt = try #require(account.jwt)
            #expect(abs(jwt.exp - jwt.iat - 30 * 86_400) < 0.001)
            #expect(abs(jwt.iat - Date().timeIntervalSince1970) < 60)
            #expect(jwt.token?.isEmpty == false)
            #expect(!"\(jwt)".contains(jwt.token!), "a JWT's description shows its token")

            let request = try #require(simulator.journal.requests.first)
            #expect(request.method == "POST")
            #expect(request.rawPath == "/v1/runwayml/accounts/alice@example.com")
            #expect(request.headers["authorization"] == "Bearer \(testToken)")
            #expect(request.headers["content-type"] == "application/json")
            #expect(request.headers["accept"] == "application/json")
            #expect(request.headers["user-agent"] == "account-worker/test")
            let body = try JSONSerialization.jsonObject(with: Data(request.body.utf8)) as? [String: Any]
            #expect(body?["email"] as? String == "alice@example.com")
            #expect(body?["password"] as? String == "pa55-w0rd")
            #expect(body?["maxJobs"] as? Int == 5)
            #expect(body?["useWorkspace"] == nil)
        }
    }

    @Test("useWorkspace is forwarded unchanged: a boolean or a team id")
    func useWorkspace() async throws {
        try await withSimulator { simulator, client in
            _ = try await client.upsert(email: "a@x.io", password: "p", maxJobs: 1, useWorkspace: .enabled(true))
            _ = try await client.upsert(email: "b@x.io", password: "p", maxJobs: 1, useWorkspace: .team("team-42"))
            let bodies = simulator.journal.requests.map {
                try? JSONSerialization.jsonObject(with: Data($0.body.utf8)) as? [String: Any]
            }
            #expect(bodies[0]?["useWorkspace"] as? Bool == true)
            #expect(bodies[1]?["useWorkspace"] as? String == "team-42")
        }
    }

    @Test("get and delete: stored accounts, then the plain-text 404")
    func getAndDelete() async throws {
        try await withSimulator { simulator, client in
            _ = try await client.upsert(email: "bob@example.com", password: "secret-1", maxJobs: 3)
            let answer2549 = try await client.get(email: "bob@example.com")
            #expect(answer2549.maxJobs == 3)
            let answer4817 = try await client.delete(email: "bob@example.com")
            #expect(answer4817.statusCode == 200)

            let missing = await failure { _ = try await client.get(email: "bob@example.com") }
            #expect(missing?.apiError?.statusCode == 404)
            #expect(missing?.apiError?.error == "Configuration not found. To create configuration use POST /accounts/email.")
            let deletedTwice = await failure { _ = try await client.delete(email: "bob@example.com") }
            #expect(deletedTwice?.apiError?.statusCode == 404)
            #expect(simulator.journal.requests.map(\.method) == ["POST", "GET", "DELETE", "GET", "DELETE"])
        }
    }

    @Test("useapi's error answers: 401, 400, wrong password, suspended, 596")
    func apiErrors() async throws {
        let accounts: [String: SimulatedAccountBehavior] = [
            "fixed@x.io": .password("right"),
            "suspended@x.io": .suspended,
            "broken@x.io": .errorState,
        ]
        // Passwords that appear in no message: an echoed password is masked wherever it appears.
        try await withSimulator(accounts: accounts) { _, client in
            let tooMany = await failure { _ = try await client.upsert(email: "a@x.io", password: "pw-7x", maxJobs: 11) }
            #expect(tooMany?.apiError?.statusCode == 400)
            #expect(tooMany?.apiError?.error.contains("maxJobs") == true)

            let wrong = await failure { _ = try await client.upsert(email: "fixed@x.io", password: "wrong", maxJobs: 1) }
            #expect(wrong?.apiError?.statusCode == 401)
            #expect(wrong?.apiError?.error == "Wrong username/password combination.")
            let answer8908 = try await client.upsert(email: "fixed@x.io", password: "right", maxJobs: 1)
            #expect(answer8908.maxJobs == 1)

            let suspended = await failure { _ = try await client.upsert(email: "suspended@x.io", password: "pw-7x", maxJobs: 1) }
            #expect(suspended?.apiError?.statusCode == 401)
            #expect(suspended?.apiError?.error == "This account has been suspended.")

            let broken = await failure { _ = try await client.upsert(email: "broken@x.io", password: "pw-7x", maxJobs: 1) }
            #expect(broken?.apiError?.statusCode == 596)
            #expect(broken?.apiError?.error.contains("error state") == true)
        }
        try await withSimulator(clientToken: "user:0-wrong") { _, client in
            let unauthorized = await failure { _ = try await client.upsert(email: "a@x.io", password: "pw-7x", maxJobs: 1) }
            #expect(unauthorized?.apiError?.statusCode == 401)
            #expect(unauthorized?.apiError?.error == "Unauthorized")
        }
    }

    @Test("no email can change the path or add a query")
    func hostileEmails() async throws {
        let hostile = [
            "a/b@x.io", "../../admin@x.io", "a?x=1@y.io", "a#frag@y.io", "a%2F..%2F@y.io", "a b@y.io",
            "ü@y.de", "a[1]@y.io", "a\\b@y.io", "a;b=c@y.io", "a+tag@y.io", "tab\t@y.io", "café@exämple.de",
        ]
        try await withSimulator { simulator, client in
            for email in hostile {
                let account = try await client.upsert(email: email, password: "p", maxJobs: 2)
                #expect(account.email == email)
            }
            let requests = simulator.journal.requests
            #expect(requests.count == hostile.count)
            for (request, email) in zip(requests, hostile) {
                #expect(request.rawPath.hasPrefix("/v1/runwayml/accounts/"))
                let segment = request.rawPath.dropFirst("/v1/runwayml/accounts/".count)
                #expect(!segment.contains("/") && !segment.contains("?") && !segment.contains("#"), "\(request.rawPath)")
                #expect(request.email == email, "the server decoded another email from \(request.rawPath)")
            }
        }
        #expect(encodeEmailPathSegment("..") == "%2E%2E")
        #expect(encodeEmailPathSegment(".") == "%2E")
        #expect(encodeEmailPathSegment("a/b?c#d%e") == "a%2Fb%3Fc%23d%25e")
    }

    @Test("429 carries Retry-After; dropped connections and refused connections are transport errors")
    func retryAfterAndTransport() async throws {
        var limited = SimulatedFault(emailPrefix: "limited")
        limited.rateLimitRate = 1
        limited.rateLimitRetryAfterSeconds = 7
        var dropped = SimulatedFault(emailPrefix: "dropped")
        dropped.dropRate = 1
        try await withSimulator(faults: [limited, dropped]) { _, client in
            let rateLimited = await failure { _ = try await client.upsert(email: "limited@x.io", password: "p", maxJobs: 1) }
            #expect(rateLimited?.apiError?.statusCode == 429)
            #expect(rateLimited?.apiError?.retryAfter == .seconds(7))

            let drop = await failure { _ = try await client.upsert(email: "dropped@x.io", password: "p", maxJobs: 1) }
            #expect(drop?.transportError?.kind == .connection)
        }
        // A port nobody listens on: bind one, then free it.
        let client = UseAPIClient.makeHTTPClient(maxConnectionsPerHost: 1)
        let refused = UseAPIClient(
            configuration: UseAPIConfiguration(baseURL: "http://127.0.0.1:1", token: testToken),
            httpClient: client,
            logger: .init(label: "test")
        )
        let error = await failure { _ = try await refused.get(email: "a@x.io") }
        #expect(error?.transportError?.kind == .connection)
        try await client.shutdown()
    }

    @Test("an answer over the size limit is unreadable, not trusted")
    func oversizeBody() async throws {
        try await withSimulator(maxResponseBytes: 64) { _, client in
            let error = await failure { _ = try await client.upsert(email: "a@x.io", password: "p", maxJobs: 1) }
            #expect(error?.transportError?.kind == .invalidResponse)
        }
    }

    @Test("flaky accounts fail their first N calls, then succeed")
    func failFirst() async throws {
        var flaky = SimulatedFault(emailPrefix: "flaky")
        flaky.failFirst = 2
        try await withSimulator(faults: [flaky]) { simulator, client in
            for _ in 0..<2 {
                let error = await failure { _ = try await client.upsert(email: "flaky@x.io", password: "p", maxJobs: 1) }
                #expect(error?.apiError?.statusCode == 503)
            }
            let answer6927 = try await client.upsert(email: "flaky@x.io", password: "p", maxJobs: 1)
            #expect(answer6927.maxJobs == 1)
            let answer5654 = try await client.upsert(email: "steady@x.io", password: "p", maxJobs: 1)
            #expect(answer5654.maxJobs == 1)
            #expect(simulator.journal.requests.map(\.status) == [503, 503, 200, 200])
        }
    }

    @Test("no password or token appears in an error description or a log line, even when useapi echoes them")
    func noSecrets() async throws {
        let logs = LogCapture()
        let password = "Sup3r-Secret-Passw0rd"
        var hang = SimulatedFault(emailPrefix: "hang")
        hang.hangRate = 1
        var limited = SimulatedFault(emailPrefix: "limited")
        limited.rateLimitRate = 1
        // useapi echoing both secrets: the redaction rule is exercised.
        var echo = SimulatedFault(emailPrefix: "echo")
        echo.answer = SimulatedAnswer(
            status: 500,
            body: #"{"error":"cannot log in with {password}","errorDetails":"Authorization: Bearer {token}"}"#
        )
        var descriptions: [String] = []
        var echoed: UseAPIResponseError?
        try await withSimulator(
            faults: [hang, limited, echo],
            accounts: ["fixed@x.io": .password("other")],
            requestTimeout: .milliseconds(200),
            logs: logs
        ) { _, client in
            for email in ["hang@x.io", "limited@x.io", "fixed@x.io", "echo@x.io", "ok@x.io"] {
                if let error = await failure({ _ = try await client.upsert(email: email, password: password, maxJobs: 1) }) {
                    descriptions.append("\(error)")
                    descriptions.append(String(reflecting: error))
                    if email == "echo@x.io" { echoed = error.apiError }
                }
            }
        }
        #expect(descriptions.count == 8)
        #expect(echoed?.error == "cannot log in with ***")
        #expect(echoed?.errorDetails == "Authorization: Bearer ***")
        let lines = logs.lines.withLock { $0 }
        // The client's logger goes with every request (the HTTP client logs
        // each one at debug and trace): an empty capture would check nothing.
        #expect(!lines.isEmpty, "no log line was captured: nothing was checked")
        for text in descriptions + lines {
            #expect(!text.contains(password))
            #expect(!text.contains(testToken))
        }
    }
}
