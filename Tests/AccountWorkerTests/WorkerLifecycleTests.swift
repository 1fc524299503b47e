import Foundation
import Kafka
import StrictJSON
import Synchronization
import TestSupport
import Testing
import UseAPI
import UseAPISimulator

@testable import AccountWorker

@Suite("Worker lifecycle: shutdown, rebalancing, secrets", .timeLimit(.minutes(4)))
struct WorkerLifecycleTests {
    @Test("graceful shutdown mid-stream loses nothing and reports nothing twice: the drain runs queued commands below finished ones")
    func gracefulShutdown() async throws {
        // 40 commands for 10 accounts on one partition (offset = index), two
        // calls at a time. g0's first call takes 8 s, the others' 250 ms, so
        // the other accounts run ahead: once one of them finished its second
        // command (offset 11 or more), g0's second command (offset 10) is
        // queued below it. Handing it back would leave the commit at 10, and
        // the second worker would report every finished command above it
        // again; the drain runs it instead.
        var slowAccount = SimulatedFault(emailPrefix: "g0@")
        slowAccount.latencyMs = 8_000
        var slow = SimulatedFault()
        slow.latencyMs = 250
        let harness = try await WorkerHarness(partitions: 1, faults: [slowAccount, slow])
        let first = try harness.startWorker(
            await harness.settings(workerID: "first") {
                $0.maxInFlight = 2
                $0.requestTimeout = .seconds(10)
                // Gaps are closed until a request timeout before the drain's end.
                $0.shutdownTimeout = .seconds(30)
            }
        )
        for index in 0..<40 {
            try await harness.sendUpsert(id: "g-\(index)", email: "g\(index % 10)@x.io", maxJobs: index / 10 + 1)
        }
        // The journal records a call when it ends.
        func calls(_ email: String) -> [SimulatorRequestRecord] { harness.simulator.journal.requests.filter { $0.email == email } }
        try await harness.waitUntil("another account's second command answered") {
            (1..<10).contains { calls("g\($0)@x.io").count >= 2 }
        }
        // About 2.5 s in: g0's first call has 5.5 s to go.
        #expect(calls("g0@x.io").isEmpty, "g0's first call ended before the stop: no gap to close (an overloaded machine?)")
        try await first.stop()
        let callsByFirst = harness.simulator.journal.totalRequests
        #expect(callsByFirst < 40, "the first worker called useapi for everything before its stop; the test proves nothing")
        // g0's second command (and its third, if another account had reached
        // offset 21) was queued behind its slow first one, below finished
        // commands: only the drain can have run it.
        #expect(calls("g0@x.io").count >= 2, "the drain handed back a command below finished ones")

        harness.simulator.setFaults([slow])
        let second = try harness.startWorker(await harness.settings(workerID: "second"))
        let results = try await harness.waitForResults(40)
        try await Task.sleep(for: .milliseconds(500))
        let ids = harness.results.compactMap(\.commandId)
        #expect(Set(ids).count == 40, "lost commands")
        let twice = Dictionary(grouping: ids, by: { $0 }).filter { $0.value.count > 1 }.keys.sorted()
        #expect(twice.isEmpty, "reported twice: \(twice)\n\(harness.diagnosis)")
        #expect(Set(results.compactMap(\.worker)) == ["first", "second"])
        // Per-account order holds across the hand-over.
        for account in 0..<10 {
            let reported = harness.results.filter { $0.email == "g\(account)@x.io" }.compactMap { $0["maxJobs"]?.int }
            #expect(reported == [1, 2, 3, 4])
        }
        try await second.stop()
        await harness.shutdown()
    }

    @Test("two workers in one group share the load and keep per-account order")
    func twoWorkers() async throws {
        var slow = SimulatedFault()
        slow.latencyMs = 20
        let harness = try await WorkerHarness(partitions: 4, faults: [slow])
        let one = try harness.startWorker(await harness.settings(workerID: "one"))
        let two = try harness.startWorker(await harness.settings(workerID: "two"))
        try await harness.waitUntil("both workers own partitions", timeout: .seconds(30)) {
            one.service.health.assignedPartitions > 0 && two.service.health.assignedPartitions > 0
        }
        for round in 1...4 {
            for account in 0..<16 {
                try await harness.sendUpsert(id: "t-\(account)-\(round)", email: "acct\(account)@x.io", maxJobs: round)
            }
        }
        let results = try await harness.waitForResults(64)
        #expect(Set(results.compactMap(\.commandId)).count == 64)
        #expect(Set(results.compactMap(\.worker)) == ["one", "two"])
        #expect(harness.simulator.journal.overlappingEmails.isEmpty)
        for account in 0..<16 {
            let reported = results.filter { $0.email == "acct\(account)@x.io" }.compactMap { $0["maxJobs"]?.int }
            #expect(reported == [1, 2, 3, 4])
        }
        try await one.stop()
        try await two.stop()
        await harness.shutdown()
    }

    @Test(
        "a rebalance mid-stream loses nothing, keeps per-account order, never overlaps one account's calls, and redelivers only work on the wire at a revocation"
    )
    func rebalanceWithWorkInFlight() async throws {
        var slow = SimulatedFault()
        slow.latencyMs = 300
        let harness = try await WorkerHarness(partitions: 2, faults: [slow])
        // MAX_IN_FLIGHT bounds the calls on the wire at a revocation. Frequent
        // commits and heartbeats keep what completed just before a revocation
        // small too (see the bound below).
        let maxInFlight = 4
        let configure = { (settings: inout WorkerSettings) in
            settings.maxInFlight = maxInFlight
            settings.shutdownTimeout = .seconds(20)
            settings.commitInterval = .milliseconds(50)
            settings.kafkaProperties["heartbeat.interval.ms"] = "100"
        }
        let kafkaLogs = LogCapture()
        let first = try harness.startWorker(await harness.settings(workerID: "first", configure), kafkaLogs: kafkaLogs)
        try await harness.waitUntil("the first worker owns both partitions") { first.service.health.assignedPartitions == 2 }
        var second: RunningWorker?
        // Keep 8 accounts busy (one command each per round): 16 rounds with
        // the first worker alone, so that each partition holds far more
        // processed commands than a revocation may replay, then rounds until
        // the second member has taken a partition and a few more.
        let roundsAlone = 16
        var rounds = 0
        var roundsAfterJoin = 0
        while roundsAfterJoin < 4 && rounds < 150 {
            rounds += 1
            for account in 0..<8 {
                try await harness.send(
                    #"{"id":"rb-\#(account)-\#(rounds)","email":"rb\#(account)@x.io","password":"p","maxJobs":\#(rounds % 10 + 1)}"#,
                    key: "rb\(account)@x.io",
                    partition: Int32(account % 2)
                )
            }
            if rounds == roundsAlone {
                // Most of what was sent so far has been processed and committed.
                try await harness.waitUntil("the first worker to catch up", timeout: .seconds(30)) {
                    harness.results.count >= (roundsAlone - 1) * 8
                }
                second = try harness.startWorker(await harness.settings(workerID: "second", configure), kafkaLogs: kafkaLogs)
            }
            if let second, second.service.health.assignedPartitions > 0 { roundsAfterJoin += 1 }
            try await Task.sleep(for: .milliseconds(300))
        }
        let total = rounds * 8
        try await harness.waitUntil("a result for every command", timeout: .seconds(90)) {
            Set(harness.results.compactMap(\.commandId)).count == total
        }
        try await Task.sleep(for: .seconds(1))
        let ids = harness.results.compactMap(\.commandId)
        #expect(Set(ids).count == total)
        #expect(Set(harness.results.compactMap(\.worker)) == ["first", "second"])
        // Calls for one account never overlap, across the hand-over included.
        #expect(harness.simulator.journal.overlappingEmails.isEmpty, "overlapping calls: \(harness.simulator.journal.overlappingEmails)")
        // Redelivered: at most the calls on the wire at each revocation
        // (MAX_IN_FLIGHT per revoking member). librdkafka's mock coordinator
        // also refuses commits while the group is joining (a real broker
        // accepts them), so what completed between the last accepted periodic
        // commit and the revocation may be redelivered too: with 300 ms calls
        // and 50 ms commits, one or two more waves of MAX_IN_FLIGHT (12 seen
        // on a loaded machine). Hence 4 x MAX_IN_FLIGHT per revocation. A
        // replayed assignment (lost, or committed nowhere: 96 seen) would be
        // over 60 commands per partition, far above this bound.
        let revocations = kafkaLogs.lines.withLock { $0 }.filter { $0.contains("Kafka partitions revoked") }.count
        let duplicates = ids.count - total
        #expect(revocations >= 1, "no revocation seen: the test proves nothing")
        #expect(duplicates <= revocations * 4 * maxInFlight, "\(duplicates) commands reported twice after \(revocations) revocations")
        for account in 0..<8 {
            var seen = Set<String>()
            let firstReports = harness.results.filter { $0.email == "rb\(account)@x.io" && seen.insert($0.commandId ?? "").inserted }
            #expect(firstReports.compactMap { $0["maxJobs"]?.int } == (1...rounds).map { $0 % 10 + 1 }, "rb\(account)@x.io out of order")
        }
        try await second?.stop()
        try await first.stop()
        await harness.shutdown()
    }

    @Test("no password or token appears in any result or log line, even when useapi echoes them")
    func noSecrets() async throws {
        var flaky = SimulatedFault(emailPrefix: "flaky")
        flaky.failFirst = 1
        // useapi echoing the password and the token in its error texts: the
        // redaction rule is exercised, not merely never needed.
        var echo = SimulatedFault(emailPrefix: "echo")
        echo.answer = SimulatedAnswer(
            status: 422,
            body: #"{"error":"password {password} rejected","errorDetails":"Bearer {token} for {email}"}"#
        )
        let harness = try await WorkerHarness(partitions: 1, faults: [flaky, echo], accounts: ["locked@x.io": .password("other")])
        let worker = try harness.startWorker(await harness.settings())
        let passwords = ["Pw-Alpha-93817", "Pw-Bravo-28371", "Pw-Charlie-1827", "Pw-Delta-99182", "Pw-Echo-55120"]
        try await harness.sendUpsert(id: "s-1", email: "ok@x.io", password: passwords[0])
        try await harness.sendUpsert(id: "s-2", email: "flaky@x.io", password: passwords[1])
        try await harness.sendUpsert(id: "s-3", email: "locked@x.io", password: passwords[2])
        try await harness.send(#"{"id":"s-4","email":"bad","password":"\#(passwords[3])","maxJobs":5}"#, key: "bad")
        try await harness.send("{\"password\":\"\(passwords[3])\"", key: "broken")
        try await harness.sendUpsert(id: "s-5", email: "echo@x.io", password: passwords[4])
        try await harness.waitForResults(6)
        try await harness.waitUntil("the dead letter") { harness.deadLetters.count == 1 }
        try await worker.stop()
        // By contract the DLQ keeps the undecodable message exactly as sent
        // (its password included, hence its access control); nothing else
        // ever lands there.
        #expect(harness.deadLetters.map(\.raw) == ["{\"password\":\"\(passwords[3])\""])
        // The echoed secrets reached the worker and were masked.
        let echoed = try #require(harness.results.first { $0.commandId == "s-5" })
        #expect(echoed.code == 422 && echoed.stage == "api", "\(echoed.raw)")
        #expect(echoed["error"]?.string == "password *** rejected")
        #expect(echoed["errorDetails"]?.string == "Bearer *** for echo@x.io")
        let logLines = harness.logs.lines.withLock { $0 }
        #expect(!logLines.isEmpty, "no log line was captured: nothing was checked")
        #expect(logLines.contains { $0.contains("command processed") })
        #expect(logLines.contains { $0.contains("password *** rejected") }, "no log line for the echoed error")
        for text in harness.results.map(\.raw) + logLines {
            for secret in passwords + [workerTestToken, "sim-jwt-"] {
                #expect(!text.contains(secret), "a secret leaked: \(text.prefix(200))")
            }
        }
        await harness.shutdown()
    }
}
