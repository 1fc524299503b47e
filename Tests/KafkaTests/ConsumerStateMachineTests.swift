import Testing

@testable import Kafka

/// The credit bound without a broker: what the poll thread does when the
/// application holds every record it may hold.
@Suite("Consumer credits")
struct ConsumerCreditTests {
    private static let second: UInt64 = 1_000_000_000
    private static let shortWait = ConsumerStateMachine.PollAction.waitForCredits(nanoseconds: 100_000_000)

    /// A consumer whose `credits` records were all handed out; its poll
    /// thread found them spent at 10 s and was told to wait.
    private func exhausted(credits: Int) -> ConsumerStateMachine {
        var machine = ConsumerStateMachine(bufferLimit: 100, credits: credits, creditPauseDelay: .seconds(1))
        _ = machine.enqueue(.partitionsAssigned([KafkaTopicPartition(topic: "t", partition: 0)]))
        for offset in 0..<credits {
            _ = machine.enqueue(.message(KafkaMessage(topic: "t", partition: 0, offset: Int64(offset), key: nil, value: [])))
        }
        let action = machine.nextPollAction(now: 10 * Self.second)
        #expect(action == Self.shortWait)
        return machine
    }

    @Test("out of credits, the poll thread stops polling without pausing fetching, and polls again at the first credit back")
    func waitsWithoutPausing() {
        var machine = exhausted(credits: 4)
        let halfWay = machine.nextPollAction(now: 10 * Self.second + Self.second / 2)
        #expect(halfWay == Self.shortWait)
        let change = machine.fetchReconciliation()
        #expect(change == nil, "a short wait must not pause fetching (a resume costs a refetch)")
        let woken = machine.returnCredits(1)
        #expect(woken, "the first credit back must wake the poll thread")
        let next = machine.nextPollAction(now: 11 * Self.second)
        #expect(next == .poll)
        #expect(!machine.creditPaused)
    }

    @Test("out of credits for longer than the delay, fetching pauses, and resumes only when half of the credits are back")
    func pausesAfterTheDelay() {
        var machine = exhausted(credits: 4)
        let late = machine.nextPollAction(now: 11 * Self.second)
        #expect(late == .reconcile)
        let pause = machine.fetchReconciliation()
        #expect(pause?.paused == true)
        // Paused, the poll thread keeps polling: it serves rebalances and max.poll.interval.ms.
        let paused = machine.nextPollAction(now: 12 * Self.second)
        #expect(paused == .poll)
        let oneBack = machine.returnCredits(1)
        #expect(!oneBack, "one credit of four is not enough to resume")
        let halfBack = machine.returnCredits(1)
        #expect(halfBack)
        let resume = machine.fetchReconciliation()
        #expect(resume?.paused == false)
    }

    @Test("the wait restarts after credits came back and ran out again")
    func waitRestarts() {
        var machine = exhausted(credits: 1)
        let woken = machine.returnCredits(1)
        #expect(woken)
        _ = machine.enqueue(.message(KafkaMessage(topic: "t", partition: 0, offset: 1, key: nil, value: [])))
        // 0.9 s after the first exhaustion but only just out again: no pause.
        let again = machine.nextPollAction(now: 10 * Self.second + 900_000_000)
        #expect(again == Self.shortWait)
        let change = machine.fetchReconciliation()
        #expect(change == nil)
    }
}
