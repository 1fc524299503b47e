import AccountWorker
import Kafka
import Testing

@Suite("Offset tracking with out-of-order completion")
struct OffsetTrackerTests {
    let p0 = KafkaTopicPartition(topic: "t", partition: 0)
    let p1 = KafkaTopicPartition(topic: "t", partition: 1)

    @Test("never commits past an unfinished command")
    func outOfOrder() {
        var tracker = OffsetTracker()
        for offset in Int64(10)...14 { tracker.track(p0, offset: offset) }
        #expect(tracker.committableOffset(p0) == 10)
        tracker.complete(p0, offset: 12)
        tracker.complete(p0, offset: 14)
        #expect(tracker.committableOffset(p0) == 10)
        tracker.complete(p0, offset: 10)
        #expect(tracker.committableOffset(p0) == 11)
        tracker.complete(p0, offset: 11)
        #expect(tracker.committableOffset(p0) == 13)
        tracker.complete(p0, offset: 13)
        #expect(tracker.committableOffset(p0) == 15)
        #expect(tracker.inFlightCount(p0) == 0)
    }

    @Test("partitions are independent, and commits are only handed out when they moved")
    func takeCommits() {
        var tracker = OffsetTracker()
        tracker.track(p0, offset: 0)
        tracker.track(p1, offset: 5)
        do { let taken = tracker.takeCommits(); #expect(taken == [p0: 0, p1: 5]) }
        do { let taken = tracker.takeCommits(); #expect(taken.isEmpty) }
        tracker.complete(p1, offset: 5)
        do { let taken = tracker.takeCommits(); #expect(taken == [p1: 6]) }
        tracker.complete(p0, offset: 0)
        do { let taken = tracker.takeCommits(for: [p1]); #expect(taken.isEmpty) }
        do { let taken = tracker.takeCommits(for: [p0]); #expect(taken == [p0: 1]) }
    }

    @Test("a redelivered older offset does not move the commit backwards; removed partitions are forgotten")
    func redeliveryAndRemoval() {
        var tracker = OffsetTracker()
        tracker.track(p0, offset: 3)
        tracker.track(p0, offset: 2)
        tracker.complete(p0, offset: 3)
        #expect(tracker.committableOffset(p0) == 4)
        tracker.remove([p0])
        #expect(tracker.committableOffset(p0) == nil)
    }

    @Test("random completion order: the commit offset is always the lowest unfinished offset")
    func randomized() {
        var tracker = OffsetTracker()
        let offsets = Array(Int64(0)..<500)
        for offset in offsets { tracker.track(p0, offset: offset) }
        var unfinished = Set(offsets)
        for offset in offsets.shuffled() {
            tracker.complete(p0, offset: offset)
            unfinished.remove(offset)
            #expect(tracker.committableOffset(p0) == (unfinished.min() ?? 500))
        }
    }
}
