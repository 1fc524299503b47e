import Foundation
import Kafka
import StrictJSON
import Synchronization
import TestSupport
import Testing
import UseAPI
import UseAPISimulator

@testable import AccountWorker

/// The worker against a useapi that misbehaves (issue: hostile answers): it
/// never crashes, hangs, leaks a secret or reports a false success, and each
/// command gets exactly the contract's result.
@Suite("Worker against hostile useapi answers", .timeLimit(.minutes(3)))
struct HostileUseAPITests {
    @Test("absurd Retry-After hints (header or body) are capped; the command is retried and succeeds")
    func absurdRetryAfter() async throws {
        let hints: [(String, SimulatedAnswer)] = [
            ("hdr-e", SimulatedAnswer(status: 429, headers: ["Retry-After": "1e16"])),
            ("hdr-digits", SimulatedAnswer(status: 429, headers: ["Retry-After": "99999999999999999999"])),
            ("body-iso", SimulatedAnswer(status: 429, body: #"{"retryAfter":"PT99999999999999999999S"}"#)),
            ("body-number", SimulatedAnswer(status: 503, body: #"{"retryAfter":1e400}"#)),
        ]
        let faults = hints.map { prefix, answer in
            var fault = SimulatedFault(emailPrefix: prefix)
            fault.answer = answer
            fault.answerFirst = 1
            return fault
        }
        let harness = try await WorkerHarness(faults: faults)
        // The contract's cap is 60 s; 1 s here shows the capped wait ends.
        let worker = try harness.startWorker(await harness.settings { $0.retryAfterCap = .seconds(1) })
        for (prefix, _) in hints {
            try await harness.sendUpsert(id: prefix, email: "\(prefix)@x.io")
        }
        let results = try await harness.waitForResults(hints.count)
        for result in results {
            expectContractShape(result)
            #expect(result.status == "ok", "\(result.raw)")
            #expect(result.attempts == 2)
        }
        for (prefix, _) in hints {
            let calls = harness.simulator.journal.requests.filter { $0.email == "\(prefix)@x.io" }
            if calls.count == 2, let firstEnd = calls[0].endedAt {
                // The backoff alone is at most 300 ms here: the wait was the capped hint.
                #expect(calls[1].startedAt - firstEnd >= 0.9, "\(prefix): waited \(calls[1].startedAt - firstEnd) s")
            }
        }
        try await worker.stop()
        await harness.shutdown()
    }

    @Test("a body that stalls after its headers: 504, stage transport, MAX_ATTEMPTS calls, and the worker moves on")
    func stalledBody() async throws {
        var stall = SimulatedFault(emailPrefix: "stall")
        stall.slowBody = SimulatedSlowBody(declaredBytes: 200, initialBytes: 10)
        var trickle = SimulatedFault(emailPrefix: "trickle")
        trickle.slowBody = SimulatedSlowBody(declaredBytes: 200, initialBytes: 0, trickleEveryMs: 200)
        let harness = try await WorkerHarness(partitions: 1, faults: [stall, trickle])
        let worker = try harness.startWorker(
            await harness.settings {
                $0.requestTimeout = .milliseconds(1000)
                $0.maxAttempts = 2
                $0.breakerThreshold = 100
            }
        )
        try await harness.sendUpsert(id: "s-1", email: "stall@x.io")
        try await harness.sendUpsert(id: "t-1", email: "trickle@x.io")
        // Same partition, after the stalled ones: it must not wait for ever.
        try await harness.sendUpsert(id: "after", email: "fine@x.io")
        let byID = Dictionary(uniqueKeysWithValues: try await harness.waitForResults(3).map { ($0.commandId!, $0) })
        for id in ["s-1", "t-1"] {
            let result = try #require(byID[id])
            expectContractShape(result)
            #expect(result.status == "error" && result.code == 504 && result.stage == "transport", "\(result.raw)")
            #expect(result.attempts == 2)
            // Two 1 s calls and a short backoff: about 2 s, far from "for ever".
            #expect((result["durationMs"]?.int ?? .max) < 8_000)
        }
        #expect(byID["after"]?.status == "ok")
        try await worker.stop()
        await harness.shutdown()
    }

    @Test("a 3xx is final (stage api, its status as code): no redirect is followed, no false success", arguments: [301, 302, 303, 307, 308])
    func redirects(status: Int) async throws {
        var redirect = SimulatedFault()
        redirect.answer = SimulatedAnswer(status: status, headers: ["Location": "/v1/runwayml/accounts/other@x.io"])
        let harness = try await WorkerHarness(partitions: 1, faults: [redirect])
        let worker = try harness.startWorker(await harness.settings())
        try await harness.sendUpsert(id: "u", email: "moved@x.io")
        try await harness.send(#"{"id":"d","type":"account.delete","email":"moved@x.io"}"#, key: "moved@x.io")
        let results = try await harness.waitForResults(2)
        for result in results {
            expectContractShape(result)
            #expect(result.status == "error" && result.code == status && result.stage == "api", "\(result.raw)")
            #expect(result.attempts == 1)
        }
        let requests = harness.simulator.journal.requests
        #expect(requests.map(\.method) == ["POST", "DELETE"], "a redirect was followed")
        try await worker.stop()
        await harness.shutdown()
    }

    @Test("a 3 MB error answer keeps its status: a 400 stays final, its texts are cut to 1024 characters")
    func hugeErrorAnswer() async throws {
        var huge = SimulatedFault()
        huge.answer = SimulatedAnswer(status: 400, body: #"{"error":"{padding}","errorDetails":"{padding}"}"#, bodyBytes: 3 << 20)
        let harness = try await WorkerHarness(partitions: 1, faults: [huge])
        let worker = try harness.startWorker(await harness.settings())
        try await harness.sendUpsert(id: "big", email: "big@x.io")
        let result = try #require(try await harness.waitForResults(1).first)
        expectContractShape(result)
        #expect(result.status == "error" && result.code == 400 && result.stage == "api", "\(result.raw.prefix(300))")
        #expect(result.attempts == 1, "a final answer was retried")
        let error = try #require(result["error"]?.string)
        #expect(error.count == 1024 && error.hasSuffix("…"))
        #expect(harness.simulator.journal.totalRequests == 1)
        try await worker.stop()
        await harness.shutdown()
    }

    @Test("useapi echoing the password and the token: *** in the result and the log line, never the secrets")
    func echoedSecrets() async throws {
        var echo = SimulatedFault()
        echo.answer = SimulatedAnswer(
            status: 400,
            body: #"{"error":"Runway refused password {password} for {email}","errorDetails":"token {token}"}"#
        )
        let harness = try await WorkerHarness(partitions: 1, faults: [echo])
        let worker = try harness.startWorker(await harness.settings())
        let password = "Echoed-Secret-Pw9"
        try await harness.sendUpsert(id: "echo", email: "a@example.com", password: password)
        let result = try #require(try await harness.waitForResults(1).first)
        expectContractShape(result)
        #expect(result["error"]?.string == "Runway refused password *** for a@example.com")
        #expect(result["errorDetails"]?.string == "token ***")
        #expect(!result.raw.contains(password) && !result.raw.contains(workerTestToken))
        try await worker.stop()
        let lines = harness.logs.lines.withLock { $0 }
        #expect(lines.contains { $0.contains("command processed") && $0.contains("refused password ***") }, "no log line for the result")
        for line in lines {
            #expect(!line.contains(password) && !line.contains(workerTestToken), "a secret in: \(line)")
        }
        await harness.shutdown()
    }

    @Test("an error answer without errorDetails still has the key, as null")
    func errorDetailsKey() async throws {
        var rejected = SimulatedFault()
        rejected.answer = SimulatedAnswer(status: 400, body: #"{"error":"Runway rejected the configuration","code":400}"#)
        let harness = try await WorkerHarness(partitions: 1, faults: [rejected])
        let worker = try harness.startWorker(await harness.settings())
        try await harness.sendUpsert(id: "nd", email: "a@x.io")
        let result = try #require(try await harness.waitForResults(1).first)
        expectContractShape(result)
        #expect(result["error"]?.string == "Runway rejected the configuration")
        #expect(result["errorDetails"] == .null)
        #expect(result.raw.contains(#""errorDetails":null"#))
        try await worker.stop()
        await harness.shutdown()
    }

    @Test("2xx answers: absurd JWT numbers stay ok; no readable JWT, another account or no JSON is 502; the status is kept")
    func twoHundreds() async throws {
        var absurd = SimulatedFault(emailPrefix: "far")
        absurd.answer = SimulatedAnswer(status: 200, body: #"{"email":"{email}","maxJobs":3,"jwt":{"exp":1e300,"iat":-1e300,"id":7}}"#)
        var created = SimulatedFault(emailPrefix: "created")
        created.answer = SimulatedAnswer(status: 201, body: #"{"email":"{email}","maxJobs":2,"jwt":{"exp":1798549821,"iat":1795957821,"id":"j-1"}}"#)
        var noJWT = SimulatedFault(emailPrefix: "nojwt")
        noJWT.answer = SimulatedAnswer(status: 200, body: #"{"email":"{email}","maxJobs":1e400,"jwt":{"exp":1e400,"iat":1}}"#)
        var empty = SimulatedFault(emailPrefix: "empty")
        empty.answer = SimulatedAnswer(status: 200, body: "{}")
        var other = SimulatedFault(emailPrefix: "other")
        other.answer = SimulatedAnswer(status: 200, body: #"{"email":"someone@else.io","maxJobs":1,"jwt":{"exp":1798549821,"iat":1795957821,"id":1}}"#)
        var echo = SimulatedFault(emailPrefix: "echo")
        echo.answer = SimulatedAnswer(status: 200, body: #"{"email":"{email}","maxJobs":1,"jwt":{"exp":1798549821,"iat":1795957821,"id":"{password}/{token}"}}"#)
        let harness = try await WorkerHarness(partitions: 1, faults: [absurd, created, noJWT, empty, other, echo])
        let worker = try harness.startWorker(await harness.settings { $0.maxAttempts = 2 })
        let password = "Jwt-Echo-Secret-1"
        for prefix in ["far", "created", "nojwt", "empty", "other", "echo"] {
            try await harness.sendUpsert(id: prefix, email: "\(prefix)@x.io", password: prefix == "echo" ? password : "pw-\(prefix)", maxJobs: 3)
        }
        let byID = Dictionary(uniqueKeysWithValues: try await harness.waitForResults(6).map { ($0.commandId!, $0) })
        let far = try #require(byID["far"])
        #expect(far.status == "ok" && far["jwt"]?["exp"]?.double == 1e300)
        #expect(far["jwtExpiresAt"] == .null)
        let createdResult = try #require(byID["created"])
        #expect(createdResult.status == "ok" && createdResult.code == 201, "useapi's status is the result's code")
        #expect(createdResult["jwtExpiresAt"]?.string?.hasPrefix("2026-12-29T") == true)
        for id in ["nojwt", "empty", "other"] {
            let result = try #require(byID[id])
            #expect(result.status == "error" && result.code == 502 && result.stage == "transport", "\(id): \(result.raw)")
            #expect(result.attempts == 2, "an unreadable 2xx is retried")
        }
        let echoed = try #require(byID["echo"])
        #expect(echoed["jwt"]?["id"]?.string == "***/***")
        #expect(!echoed.raw.contains(password) && !echoed.raw.contains(workerTestToken))
        try await worker.stop()
        await harness.shutdown()
    }

    @Test("traceparent: a valid W3C value is copied, anything else under that name is dropped")
    func traceparent() async throws {
        let harness = try await WorkerHarness(partitions: 1)
        let worker = try harness.startWorker(await harness.settings())
        let valid = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"
        let values = [
            valid, "garbage\r\nX-Injected: 1", "00-00000000000000000000000000000000-00f067aa0ba902b7-01",
            "00-4BF92F3577B34DA6A3CE929D0E0E4736-00f067aa0ba902b7-01", String(repeating: "a", count: 100_000),
        ]
        for (index, value) in values.enumerated() {
            try await harness.send(
                #"{"id":"tp-\#(index)","email":"tp\#(index)@x.io","password":"pw","maxJobs":1}"#,
                key: "tp\(index)@x.io",
                headers: [KafkaHeader(key: "traceparent", value: value)]
            )
        }
        let byID = Dictionary(uniqueKeysWithValues: try await harness.waitForResults(values.count).map { ($0.commandId!, $0) })
        #expect(byID["tp-0"]?.headers.string(for: "traceparent") == valid)
        for index in 1..<values.count {
            #expect(byID["tp-\(index)"]?.headers.string(for: "traceparent") == nil, "copied: \(values[index].prefix(60))")
            #expect(byID["tp-\(index)"]?.status == "ok")
        }
        try await worker.stop()
        await harness.shutdown()
    }

    @Test("JSON on purpose: an unknown 1e400 is ignored; a repeated key is a 400 validation error, nothing sent to useapi")
    func commandJSON() async throws {
        let harness = try await WorkerHarness(partitions: 1)
        let worker = try harness.startWorker(await harness.settings())
        try await harness.send(#"{"id":"c-1","email":"alice@example.com","password":"pw","maxJobs":5,"note":1e400}"#, key: "alice@example.com")
        try await harness.send(#"{"id":"a","id":"b","email":"bob@example.com","password":"pw","maxJobs":5}"#, key: "bob@example.com")
        try await harness.send(#"{"id":"c-3","email":"carol@example.com","password":"pw","maxJobs":5,"maxJobs":1}"#, key: "carol@example.com")
        let deep = String(repeating: "[", count: 300) + String(repeating: "]", count: 300)
        try await harness.send(#"{"id":"c-4","email":"dave@example.com","password":"pw","maxJobs":5,"note":\#(deep)}"#, key: "dave@example.com")
        let results = try await harness.waitForResults(4)
        results.forEach { expectContractShape($0) }
        let ok = try #require(results.first { $0.commandId == "c-1" })
        #expect(ok.status == "ok")
        let repeatedID = try #require(results.first { $0.email == "bob@example.com" })
        #expect(repeatedID.status == "error" && repeatedID.code == 400 && repeatedID.stage == "validation")
        #expect(repeatedID["commandId"] == .null, "which id is meant is unknown")
        let repeatedJobs = try #require(results.first { $0.commandId == "c-3" })
        #expect(repeatedJobs.code == 400 && repeatedJobs["errorDetails"]?.string == "field: maxJobs")
        #expect(harness.deadLetters.isEmpty, "a readable object is not a dead letter")
        #expect(results.first { $0.commandId == "c-4" }?.status == "ok", "a deeply nested unknown field is ignored too")
        #expect(Set(harness.simulator.journal.requests.compactMap(\.email)) == ["alice@example.com", "dave@example.com"])
        try await worker.stop()
        await harness.shutdown()
    }
}
