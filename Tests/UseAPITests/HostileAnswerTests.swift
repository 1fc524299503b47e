import Foundation
import Synchronization
import TestSupport
import Testing
import UseAPI
import UseAPISimulator

/// useapi answers the way misbehaving HTTP services do: the client never
/// follows, hangs, trusts an absurd number, or loses a final status.
@Suite("UseAPI client against hostile answers", .timeLimit(.minutes(2)))
struct HostileAnswerTests {
    @Test("redirects are never followed: a 3xx is a final API error, nothing is sent to Location", arguments: [301, 302, 303, 307, 308])
    func redirects(status: Int) async throws {
        var redirect = SimulatedFault()
        // Location points back at the simulator: a followed redirect would show in the journal.
        redirect.answer = SimulatedAnswer(status: status, headers: ["Location": "/v1/runwayml/accounts/elsewhere@x.io"])
        try await withSimulator(faults: [redirect]) { simulator, client in
            let upsert = await failure { _ = try await client.upsert(email: "a@x.io", password: "pw-Secret-1", maxJobs: 1) }
            #expect(upsert?.apiError?.statusCode == status)
            let delete = await failure { _ = try await client.delete(email: "a@x.io") }
            #expect(delete?.apiError?.statusCode == status)
            let requests = simulator.journal.requests
            #expect(requests.map(\.method) == ["POST", "DELETE"], "a redirect was followed: \(requests.map(\.rawPath))")
            #expect(requests.allSatisfy { $0.email == "a@x.io" })
        }
    }

    @Test(
        "a body that stalls or trickles after its headers times out near REQUEST_TIMEOUT_MS",
        arguments: [SimulatedSlowBody(declaredBytes: 200, initialBytes: 10), SimulatedSlowBody(declaredBytes: 200, initialBytes: 0, trickleEveryMs: 100)]
    )
    func slowBodies(slow: SimulatedSlowBody) async throws {
        var fault = SimulatedFault()
        fault.slowBody = slow
        fault.hangMs = 60_000
        try await withSimulator(faults: [fault], requestTimeout: .milliseconds(500)) { simulator, client in
            let started = ContinuousClock.now
            let error = await failure { _ = try await client.upsert(email: "a@x.io", password: "p", maxJobs: 1) }
            let elapsed = ContinuousClock.now - started
            #expect(error?.transportError?.kind == .timeout)
            #expect(elapsed >= .milliseconds(450) && elapsed < .milliseconds(2500), "took \(elapsed) for a 500 ms timeout")
            #expect(simulator.journal.requests.first?.status == 200, "the head did arrive: the body is what stalled")
        }
    }

    @Test("a request that hangs before its headers times out near REQUEST_TIMEOUT_MS")
    func hangBeforeHeaders() async throws {
        var hang = SimulatedFault()
        hang.hangRate = 1
        try await withSimulator(faults: [hang], requestTimeout: .milliseconds(300)) { _, client in
            let started = ContinuousClock.now
            let error = await failure { _ = try await client.upsert(email: "a@x.io", password: "p", maxJobs: 1) }
            let elapsed = ContinuousClock.now - started
            #expect(error?.transportError?.kind == .timeout)
            #expect(elapsed >= .milliseconds(250) && elapsed < .milliseconds(2000), "took \(elapsed) for a 300 ms timeout")
        }
    }

    @Test("an error answer over the size limit keeps its status (a 400 stays final); a 2xx over it is unreadable")
    func oversizeAnswers() async throws {
        var huge400 = SimulatedFault(emailPrefix: "huge400")
        huge400.answer = SimulatedAnswer(status: 400, body: #"{"error":"{padding}"}"#, bodyBytes: 3 << 20)
        var huge200 = SimulatedFault(emailPrefix: "huge200")
        huge200.answer = SimulatedAnswer(
            status: 200,
            body: #"{"email":"{email}","maxJobs":1,"jwt":{"exp":1,"iat":1,"id":1,"token":"{padding}"}}"#,
            bodyBytes: 2 << 20
        )
        try await withSimulator(faults: [huge400, huge200]) { _, client in
            let rejected = await failure { _ = try await client.upsert(email: "huge400@x.io", password: "p", maxJobs: 1) }
            let api = try #require(rejected?.apiError, "a huge 400 became \(String(describing: rejected))")
            #expect(api.statusCode == 400)
            #expect(api.error.hasPrefix("{\"error\":\"xxxx"), "a cut JSON body is kept as text")
            let unreadable = await failure { _ = try await client.upsert(email: "huge200@x.io", password: "p", maxJobs: 1) }
            #expect(unreadable?.transportError?.kind == .invalidResponse)
            #expect(unreadable?.transportError?.statusCode == 200)
        }
    }

    @Test("absurd numbers in a 200 never fail the call or trap")
    func absurdJWT() async throws {
        var absurd = SimulatedFault()
        absurd.answer = SimulatedAnswer(
            status: 200,
            body: #"{"email":"{email}","maxJobs":99999999999999999999,"jwt":{"exp":1e300,"iat":-1e300,"id":1e400,"token":"t"}}"#
        )
        try await withSimulator(faults: [absurd]) { _, client in
            let account = try await client.upsert(email: "a@x.io", password: "p", maxJobs: 1)
            #expect(account.maxJobs == nil)
            #expect(account.jwt?.exp == 1e300)
            #expect(account.jwt?.id == .string("1e400"))
        }
    }

    @Test("useapi echoing the password and token: both become *** in the error, its description and the logs")
    func echoedSecrets() async throws {
        let logs = LogCapture()
        let password = "Echo-Me-Passw0rd"
        var echo = SimulatedFault()
        echo.answer = SimulatedAnswer(
            status: 400,
            body: #"{"error":"Runway refused password {password} for {email}","errorDetails":"token {token}"}"#
        )
        try await withSimulator(faults: [echo], logs: logs) { _, client in
            let error = await failure { _ = try await client.upsert(email: "a@x.io", password: password, maxJobs: 1) }
            let api = try #require(error?.apiError)
            #expect(api.error == "Runway refused password *** for a@x.io")
            #expect(api.errorDetails == "token ***")
            for text in ["\(api)", String(reflecting: error!)] + logs.lines.withLock({ $0 }) {
                #expect(!text.contains(password))
                #expect(!text.contains(testToken))
            }
        }
    }
}
