import Foundation
import Kafka
import Testing

@testable import AccountWorker

/// The worker's one state machine, driven directly: given events, assert actions.
@Suite("Worker state machine: chains, backpressure, breaker, revocation, draining")
struct WorkerStateMachineTests {
    let partition = KafkaTopicPartition(topic: "t", partition: 0)
    let now = ContinuousClock.now

    func message(_ offset: Int64, email: String, partition: Int32 = 0) -> KafkaMessage {
        let value = #"{"id":"\#(offset)","email":"\#(email)","password":"p","maxJobs":1}"#
        return KafkaMessage(topic: "t", partition: partition, offset: offset, key: nil, value: Array(value.utf8))
    }

    @discardableResult
    func accept(_ state: inout WorkerStateMachine, _ offset: Int64, email: String, partition: Int32 = 0)
        -> (WorkItem, WorkerStateMachine.AcceptAction)
    {
        let message = message(offset, email: email, partition: partition)
        return state.accept(message, decoded: CommandDecoder().decode(message.value), receivedAt: now)
    }

    /// A state owning partition 0 that accepted one command per `(offset,
    /// account)`, account `b` meaning `b@x.io`.
    func accepting(_ records: [(Int64, String)]) -> WorkerStateMachine {
        var state = WorkerStateMachine(maxBuffered: 100, breakerThreshold: 3)
        state.assign([partition])
        for (offset, account) in records { accept(&state, offset, email: "\(account)@x.io") }
        return state
    }

    @Test("one chain per account, in offset order; a finished chain is removed in the same transition")
    func chains() {
        var state = WorkerStateMachine(maxBuffered: 100, breakerThreshold: 3)
        state.assign([partition])
        #expect(accept(&state, 0, email: "A@x.io").1 == .accepted(startChain: "a@x.io", fetch: nil, buffered: 1))
        #expect(accept(&state, 1, email: "a@x.io").1 == .accepted(startChain: nil, fetch: nil, buffered: 2), "one account, one chain")
        #expect(accept(&state, 2, email: "b@x.io").1 == .accepted(startChain: "b@x.io", fetch: nil, buffered: 3))
        let first = state.step(chain: "a@x.io", finished: nil, completed: false)
        #expect(first.next?.message.offset == 0)
        let second = state.step(chain: "a@x.io", finished: first.next, completed: true)
        #expect(second.next?.message.offset == 1 && second.buffered == 2)
        let done = state.step(chain: "a@x.io", finished: second.next, completed: true)
        #expect(done.next == nil && done.buffered == 1)
        #expect(accept(&state, 3, email: "a@x.io").1 == .accepted(startChain: "a@x.io", fetch: nil, buffered: 2), "a new chain after the end")
    }

    @Test("every record that leaves the buffer, finished or dropped, is released once; a full buffer asks for no pause")
    func released() {
        var state = WorkerStateMachine(maxBuffered: 4, breakerThreshold: 3)
        state.assign([partition])
        var fetches: [WorkerStateMachine.FetchChange?] = []
        for offset in Int64(0)..<4 {
            if case .accepted(_, let fetch, _) = accept(&state, offset, email: "u\(offset % 2)@x.io").1 { fetches.append(fetch) }
        }
        // The consumer's credits bound the buffer; the state machine pauses only for the breaker and draining.
        #expect(fetches == [nil, nil, nil, nil])
        var releasedTotal = 0
        let first = state.step(chain: "u0@x.io", finished: nil, completed: false)
        releasedTotal += first.released
        #expect(first.released == 0)
        state.beginRevocation([partition])
        // u0's running command finishes; its queued one is dropped: two released.
        let afterRevocation = state.step(chain: "u0@x.io", finished: first.next, completed: true)
        #expect(afterRevocation.released == 2 && afterRevocation.next == nil)
        releasedTotal += afterRevocation.released
        // u1's chain never started: both dropped on its first step.
        let dropped = state.step(chain: "u1@x.io", finished: nil, completed: false)
        #expect(dropped.released == 2 && dropped.buffered == 0)
        releasedTotal += dropped.released
        #expect(releasedTotal == 4, "every accepted record is released exactly once")
        #expect(state.takeCommits(for: [partition], force: true) == [partition: 1])
    }

    @Test("the breaker opens after calls for N accounts fail, pauses fetching, paces probes, and closes on any answer")
    func breaker() {
        var state = WorkerStateMachine(maxBuffered: 100, breakerThreshold: 2)
        state.assign([partition])
        let (item, _) = accept(&state, 0, email: "a@x.io")
        #expect(state.permitCall(for: item, now: now).0 == .call(isProbe: false))
        #expect(state.callEnded(ticket: 0, email: "a@x.io", outage: true, wasProbe: false, now: now) == (nil, nil))
        #expect(state.callEnded(ticket: 0, email: "A@x.io", outage: true, wasProbe: false, now: now) == (nil, nil), "one account, counted once")
        #expect(state.callEnded(ticket: 0, email: "b@x.io", outage: true, wasProbe: false, now: now) == (.opened, .init(paused: true, generation: 1)))
        #expect(state.permitCall(for: item, now: now).0 == .wait(.milliseconds(250)))
        #expect(state.permitCall(for: item, now: now + .milliseconds(250)).0 == .call(isProbe: true))
        #expect(state.permitCall(for: item, now: now + .milliseconds(250)).0 == .wait(.milliseconds(250)), "one probe at a time")
        // An abandoned probe frees the probe slot without a verdict.
        #expect(state.callEnded(ticket: 0, email: "a@x.io", outage: nil, wasProbe: true, now: now) == (nil, nil))
        #expect(state.permitCall(for: item, now: now + .milliseconds(250)).0 == .call(isProbe: true))
        #expect(state.callEnded(ticket: 0, email: "a@x.io", outage: false, wasProbe: true, now: now) == (.closed, .init(paused: false, generation: 2)))
        #expect(state.permitCall(for: item, now: now).0 == .call(isProbe: false))
    }

    @Test("every permitted call gets a ticket; the oldest call still running is known until it ends")
    func callTickets() {
        var state = WorkerStateMachine(maxBuffered: 100, breakerThreshold: 5)
        state.assign([partition])
        let (item, _) = accept(&state, 0, email: "a@x.io")
        let (_, first) = state.permitCall(for: item, now: now)
        let (_, second) = state.permitCall(for: item, now: now + .seconds(1))
        #expect(first != nil && second != nil && first != second)
        #expect(state.oldestCallStart == now)
        _ = state.callEnded(ticket: first!, email: "a@x.io", outage: false, wasProbe: false, now: now)
        #expect(state.oldestCallStart == now + .seconds(1))
        _ = state.callEnded(ticket: second!, email: "a@x.io", outage: false, wasProbe: false, now: now)
        #expect(state.oldestCallStart == nil)
        state.beginRevocation([partition])
        _ = state.finishRevocation([partition])
        let (permit, ticket) = state.permitCall(for: item, now: now)
        #expect(permit == .abandon && ticket == nil && state.oldestCallStart == nil, "an abandoned call got a ticket")
    }

    @Test("revocation: started work finishes and is committed, queued work is dropped, and after it ends no call is permitted")
    func revocation() {
        var state = WorkerStateMachine(maxBuffered: 100, breakerThreshold: 3)
        state.assign([partition])
        accept(&state, 7, email: "a@x.io")
        accept(&state, 8, email: "a@x.io")
        accept(&state, 9, email: "a@x.io")
        let running = state.step(chain: "a@x.io", finished: nil, completed: false).next!
        state.beginRevocation([partition])
        // Still ours until the revocation ends: the running command may call.
        #expect(state.permitCall(for: running, now: now).0 == .call(isProbe: false))
        let after = state.step(chain: "a@x.io", finished: running, completed: true)
        #expect(after.next == nil && after.buffered == 0, "queued commands of a revoked partition are dropped")
        #expect(state.takeCommits(for: [partition], force: true) == [partition: 8])
        _ = state.finishRevocation([partition])
        #expect(state.permitCall(for: running, now: now).0 == .abandon, "a revoked partition's command made another call")
        // Reassigned later: a message consumed now is of the new epoch.
        state.assign([partition])
        let (fresh, action) = accept(&state, 8, email: "a@x.io")
        #expect(fresh.epoch == 1 && action == .accepted(startChain: "a@x.io", fetch: nil, buffered: 1))
    }

    @Test("draining pauses fetching, refuses new messages, hands back unstarted work and wakes the idle waiter")
    func draining() async {
        var state = WorkerStateMachine(maxBuffered: 100, breakerThreshold: 3)
        state.assign([partition])
        accept(&state, 0, email: "a@x.io")
        accept(&state, 1, email: "a@x.io")
        let running = state.step(chain: "a@x.io", finished: nil, completed: false).next!
        let (fetch, woken) = state.beginDraining()
        #expect(fetch == .init(paused: true, generation: 1) && woken.isEmpty)
        #expect(accept(&state, 2, email: "c@x.io").1 == .ignore)
        let end = state.step(chain: "a@x.io", finished: running, completed: true)
        #expect(end.next == nil && end.buffered == 0, "an unstarted command ran during a drain")
        #expect(state.takeCommits(force: true) == [partition: 1], "the handed-back command was committed")
    }

    @Test("draining runs the queued commands below a started or finished one of their partition, so the final commit covers it")
    func drainingClosesGaps() {
        // Offsets 0-5 of one partition: a's chain ran ahead of b's.
        var state = accepting([(0, "b"), (1, "a"), (2, "b"), (3, "a"), (4, "b"), (5, "c")])
        let b0 = state.step(chain: "b@x.io", finished: nil, completed: false).next!
        let a1 = state.step(chain: "a@x.io", finished: nil, completed: false).next!
        let a3 = state.step(chain: "a@x.io", finished: a1, completed: true).next!
        #expect(a3.message.offset == 3)
        _ = state.beginDraining()
        // b's queued 2 lies below a's running 3: it runs. b's 4 and c's 5 lie
        // above everything started: handed back.
        let b2 = state.step(chain: "b@x.io", finished: b0, completed: true).next
        #expect(b2?.message.offset == 2, "a gap below a started command was handed back")
        let bEnd = state.step(chain: "b@x.io", finished: b2, completed: true)
        #expect(bEnd.next == nil && bEnd.released == 2, "b's 4 ran during the drain")
        #expect(state.step(chain: "c@x.io", finished: nil, completed: false).next == nil)
        let aEnd = state.step(chain: "a@x.io", finished: a3, completed: true)
        #expect(aEnd.next == nil && aEnd.buffered == 0)
        #expect(state.takeCommits(force: true) == [partition: 4], "the commit covers every finished command, up to the first handed back")
    }

    @Test("a finished command alone sets the drain horizon; no gap starts after the gap-closing deadline")
    func drainHorizonFromFinishedAndDeadline() {
        for pastDeadline in [false, true] {
            var state = accepting([(0, "b"), (1, "b"), (2, "a")])
            let b0 = state.step(chain: "b@x.io", finished: nil, completed: false).next!
            let a2 = state.step(chain: "a@x.io", finished: nil, completed: false).next!
            #expect(state.step(chain: "a@x.io", finished: a2, completed: true).next == nil, "a's chain is over")
            _ = state.beginDraining(closeGapsUntil: now + .seconds(10))
            let stepAt = pastDeadline ? now + .seconds(10) : now + .seconds(9)
            let b1 = state.step(chain: "b@x.io", finished: b0, completed: true, now: stepAt).next
            if pastDeadline {
                #expect(b1 == nil, "a gap command started after the gap-closing deadline")
                #expect(state.takeCommits(force: true) == [partition: 1])
            } else {
                #expect(b1?.message.offset == 1, "a gap below a finished command was handed back")
                _ = state.step(chain: "b@x.io", finished: b1, completed: true)
                #expect(state.takeCommits(force: true) == [partition: 3])
            }
        }
    }

    @Test("while draining, a chain whose command was abandoned hands back the rest, even below the horizon")
    func drainingAfterAbandon() {
        var state = accepting([(0, "a"), (1, "a"), (2, "b")])
        let a0 = state.step(chain: "a@x.io", finished: nil, completed: false).next!
        let b2 = state.step(chain: "b@x.io", finished: nil, completed: false).next!
        _ = state.beginDraining()
        // a@1 lies below b's running 2, but a@0 was abandoned (not reported):
        // a@1 must not be applied before it.
        let aEnd = state.step(chain: "a@x.io", finished: a0, completed: false)
        #expect(aEnd.next == nil && aEnd.released == 2, "a later command ran after an abandoned one")
        let bEnd = state.step(chain: "b@x.io", finished: b2, completed: true)
        #expect(bEnd.buffered == 0)
        #expect(state.takeCommits(force: true) == [partition: 0])
    }

    @Test("a fatal Kafka error halts: no command starts, no call is permitted, waiters are released", .timeLimit(.minutes(1)))
    func halt() async {
        var state = accepting([(0, "b"), (1, "a"), (2, "b")])
        let b0 = state.step(chain: "b@x.io", finished: nil, completed: false).next!
        let a1 = state.step(chain: "a@x.io", finished: nil, completed: false).next!
        _ = state.beginDraining()
        let id = state.makeWaiterID()
        var released = 0
        // The drain's idle wait: halting releases it although work is left.
        await withCheckedContinuation { continuation in
            let registered = state.wait(for: .idle, id: id, continuation: continuation)
            #expect(registered, "the drain was idle already")
            let waiters = state.halt()
            released = waiters.count
            for waiter in waiters { waiter.resume() }
        }
        #expect(released == 1)
        let permit = state.permitCall(for: b0, now: now).0
        #expect(permit == .abandon, "a call was permitted after a fatal error")
        let bNext = state.step(chain: "b@x.io", finished: b0, completed: false).next
        #expect(bNext == nil, "b@2 started after a fatal error")
        let aNext = state.step(chain: "a@x.io", finished: a1, completed: true).next
        #expect(aNext == nil)
    }

    @Test("draining hands back the rest of a chain once one of its commands is handed back")
    func drainingKeepsAccountOrder() {
        var state = WorkerStateMachine(maxBuffered: 100, breakerThreshold: 3)
        let other = KafkaTopicPartition(topic: "t", partition: 1)
        state.assign([partition, other])
        // One account on two partitions (its records keyed by something
        // else): a's 0@p0 runs, its 1@p0 lies above everything started in p0
        // and is handed back. Its 0@p1 lies below z's running 1@p1, yet must
        // not run: it would be applied before a's 1@p0, which comes first.
        accept(&state, 0, email: "a@x.io")
        accept(&state, 1, email: "a@x.io")
        accept(&state, 0, email: "a@x.io", partition: 1)
        accept(&state, 1, email: "z@x.io", partition: 1)
        let z = state.step(chain: "z@x.io", finished: nil, completed: false).next!
        let a0 = state.step(chain: "a@x.io", finished: nil, completed: false).next!
        _ = state.beginDraining()
        let aEnd = state.step(chain: "a@x.io", finished: a0, completed: true)
        #expect(aEnd.next == nil && aEnd.released == 3, "a command of the account ran after an earlier one was handed back")
        let zEnd = state.step(chain: "z@x.io", finished: z, completed: true)
        #expect(zEnd.buffered == 0)
        #expect(state.takeCommits(force: true) == [partition: 1, other: 0])
    }

    @Test("a request rate paces calls one interval apart; 429s halve the concurrency limit, other answers raise it slowly")
    func rateAndAIMD() throws {
        var state = WorkerStateMachine(maxBuffered: 100, breakerThreshold: 50, maxInFlight: 8)
        state.assign([partition])
        let (item, _) = accept(&state, 0, email: "a@x.io")
        state.setRequestRate(10)
        let (first, firstTicket) = state.permitCall(for: item, now: now)
        #expect(first == .call(isProbe: false))
        #expect(state.permitCall(for: item, now: now + .milliseconds(40)).0 == .wait(.milliseconds(60)))
        let (second, secondTicket) = state.permitCall(for: item, now: now + .milliseconds(100))
        #expect(second == .call(isProbe: false))
        state.setRequestRate(nil)
        _ = state.callEnded(ticket: try #require(firstTicket), email: "a@x.io", outage: false, wasProbe: false, rateLimited: true, now: now)
        _ = state.callEnded(ticket: try #require(secondTicket), email: "a@x.io", outage: false, wasProbe: false, now: now)
        #expect(state.concurrencyLimit == 4.25, "halved, then +1/4")
        #expect(state.takeConcurrencyChange() == 4)
        for _ in 0..<3 {
            let (_, ticket) = state.permitCall(for: item, now: now + .seconds(1))
            _ = state.callEnded(ticket: try #require(ticket), email: "a@x.io", outage: true, wasProbe: false, rateLimited: true, now: now)
        }
        #expect(state.concurrencyLimit == 1, "never below one call")
        // One call runs: a second waits for the limit.
        let (_, running) = state.permitCall(for: item, now: now + .seconds(2))
        #expect(state.permitCall(for: item, now: now + .seconds(2)).0 == .wait(WorkerStateMachine.concurrencyRecheck))
        _ = state.callEnded(ticket: try #require(running), email: "a@x.io", outage: false, wasProbe: false, now: now)
        #expect(state.concurrencyLimit == 2, "+1/limit per answer")
        for _ in 0..<40 {
            let (_, ticket) = state.permitCall(for: item, now: now + .seconds(3))
            _ = state.callEnded(ticket: try #require(ticket), email: "a@x.io", outage: false, wasProbe: false, now: now)
        }
        #expect(state.concurrencyLimit == 8, "never above MAX_IN_FLIGHT")
    }
}
