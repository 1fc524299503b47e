import Testing

@testable import Kafka

/// The credit bound without a broker: what the poll thread does when the
/// application holds every record it may hold.
@Suite("Consumer credits")
struct ConsumerCreditTests {
    private static let second: UInt64 = 1_000_000_000

    private func message(_ offset: Int64) -> KafkaConsumerEvent {
        .message(KafkaMessage(topic: "t", partition: 0, offset: offset, key: nil, value: [], headers: [], timestampMilliseconds: nil))
    }

    private func machine(credits: Int) -> ConsumerStateMachine {
        var machine = ConsumerStateMachine(bufferLimit: 100, credits: credits, creditPauseDelay: .seconds(1))
        _ = machine.enqueue(.partitionsAssigned([KafkaTopicPartition(topic: "t", partition: 0)]))
        return machine
    }

    @Test("out of credits, the poll thread stops polling without pausing fetching, and polls again at the first credit back")
    func waitsWithoutPausing() {
        var machine = machine(credits: 4)
        for offset in 0..<4 { _ = machine.enqueue(message(Int64(offset))) }
        let observed1 = machine.nextPollAction(now: 10 * Self.second)
        #expect(observed1 == .waitForCredits(nanoseconds: 100_000_000))
        let observed2 = machine.nextPollAction(now: 10 * Self.second + Self.second / 2)
        #expect(observed2 == .waitForCredits(nanoseconds: 100_000_000))
        let observed3 = machine.fetchReconciliation()
        #expect(observed3 == nil, "a short wait must not pause fetching (a resume costs a refetch)")
        let observed4 = machine.returnCredits(1)
        #expect(observed4, "the first credit back must wake the poll thread")
        let observed5 = machine.nextPollAction(now: 11 * Self.second)
        #expect(observed5 == .poll)
        #expect(!machine.creditPaused)
    }

    @Test("out of credits for longer than the delay, fetching pauses, and resumes only when half of the credits are back")
    func pausesAfterTheDelay() {
        var machine = machine(credits: 4)
        for offset in 0..<4 { _ = machine.enqueue(message(Int64(offset))) }
        let observed6 = machine.nextPollAction(now: 10 * Self.second)
        #expect(observed6 == .waitForCredits(nanoseconds: 100_000_000))
        let observed7 = machine.nextPollAction(now: 11 * Self.second)
        #expect(observed7 == .reconcile)
        let observed8 = machine.fetchReconciliation()
        #expect(observed8?.paused == true)
        // Paused, the poll thread keeps polling: it serves rebalances and max.poll.interval.ms.
        let observed9 = machine.nextPollAction(now: 12 * Self.second)
        #expect(observed9 == .poll)
        let observed10 = machine.returnCredits(1)
        #expect(!observed10, "one credit of four is not enough to resume")
        let observed11 = machine.returnCredits(1)
        #expect(observed11)
        let observed12 = machine.fetchReconciliation()
        #expect(observed12?.paused == false)
        let observed13 = machine.nextPollAction(now: 13 * Self.second)
        #expect(observed13 == .poll)
    }

    @Test("the wait restarts after credits came back and ran out again")
    func waitRestarts() {
        var machine = machine(credits: 1)
        _ = machine.enqueue(message(0))
        let observed14 = machine.nextPollAction(now: 10 * Self.second)
        #expect(observed14 == .waitForCredits(nanoseconds: 100_000_000))
        let observed15 = machine.returnCredits(1)
        #expect(observed15)
        _ = machine.enqueue(message(1))
        // 0.9 s after the first exhaustion but only just out again: no pause.
        let observed16 = machine.nextPollAction(now: 10 * Self.second + 900_000_000)
        #expect(observed16 == .waitForCredits(nanoseconds: 100_000_000))
        let observed17 = machine.fetchReconciliation()
        #expect(observed17 == nil)
    }
}
