import Foundation
import Kafka
import Testing

@testable import AccountWorker

@Suite("Worker state: chains and backpressure")
struct WorkerStateTests {
    let partition = KafkaTopicPartition(topic: "t", partition: 0)

    func item(_ offset: Int64, email: String) -> WorkItem {
        let value = #"{"id":"\#(offset)","email":"\#(email)","password":"p","maxJobs":1}"#
        let message = KafkaMessage(topic: "t", partition: 0, offset: offset, key: nil, value: Array(value.utf8))
        return WorkItem(message: message, decoded: CommandDecoder().decode(message.value), epoch: 0, receivedAt: .now)
    }

    @Test("one chain per account, in offset order; a finished chain is removed atomically")
    func chains() {
        var state = WorkerState(maxBuffered: 100)
        _ = state.assign([partition])
        guard case .startChain(let key, _) = state.accept(item(0, email: "A@x.io")) else { Issue.record("no chain"); return }
        guard case .queued = state.accept(item(1, email: "a@x.io")) else { Issue.record("a second chain for one account"); return }
        guard case .startChain = state.accept(item(2, email: "b@x.io")) else { Issue.record("accounts share a chain"); return }
        let first = state.nextItem(chain: key).0
        #expect(first?.message.offset == 0)
        _ = state.finish(first!, completed: true)
        let second = state.nextItem(chain: key).0
        #expect(second?.message.offset == 1)
        _ = state.finish(second!, completed: true)
        #expect(state.nextItem(chain: key).0 == nil)
        guard case .startChain = state.accept(item(3, email: "a@x.io")) else { Issue.record("the finished chain was not removed"); return }
    }

    @Test("fetching pauses when the buffer is full and resumes once half drained")
    func backpressure() {
        var state = WorkerState(maxBuffered: 4)
        _ = state.assign([partition])
        var actions: [WorkerState.FetchAction] = []
        var keys: [String] = []
        for offset in Int64(0)..<4 {
            if case .startChain(let key, let action) = state.accept(item(offset, email: "u\(offset)@x.io")) {
                actions.append(action)
                keys.append(key)
            }
        }
        #expect(actions == [.none, .none, .none, .pause([partition])])
        #expect(state.paused)
        var afterFinish: [WorkerState.FetchAction] = []
        for key in keys {
            let next = state.nextItem(chain: key).0!
            afterFinish.append(state.finish(next, completed: true).0)
        }
        // 3 left: still over half; 2 left: resume.
        #expect(afterFinish == [.none, .resume([partition]), .none, .none])
        #expect(!state.paused)
        #expect(state.takeCommits() == [partition: 4])
    }

    @Test("the breaker and draining pause fetching too; revoked partitions' queued work is dropped, not completed")
    func breakerAndRevocation() {
        var state = WorkerState(maxBuffered: 100)
        _ = state.assign([partition])
        #expect(state.setBreakerOpen(true) == .pause([partition]))
        #expect(state.setBreakerOpen(false) == .resume([partition]))
        guard case .startChain(let key, _) = state.accept(item(7, email: "a@x.io")) else { Issue.record("no chain"); return }
        _ = state.accept(item(8, email: "a@x.io"))
        _ = state.accept(item(9, email: "a@x.io"))
        let running = state.nextItem(chain: key).0!
        state.beginRevocation([partition])
        // The started command finishes during the revocation and is committed;
        // the queued ones are dropped, uncommitted, for the next owner.
        _ = state.finish(running, completed: true)
        #expect(state.nextItem(chain: key).0 == nil)
        #expect(state.buffered == 0)
        #expect(state.takeCommits(for: [partition], force: true) == [partition: 8])
        state.finishRevocation([partition])
        // A completion after the revocation ended (a drain timeout) is ignored.
        _ = state.assign([partition])
        #expect(state.epoch(partition) == 1)
        // Draining stops fetching from whatever is assigned.
        #expect(state.beginDraining() == .pause([partition]))
    }
}
