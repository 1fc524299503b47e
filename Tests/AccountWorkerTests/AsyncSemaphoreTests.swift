import Synchronization
import Testing

@testable import AccountWorker

// A regression that leaves a waiter suspended fails here instead of hanging CI.
@Suite("Concurrency slots", .timeLimit(.minutes(1)))
struct AsyncSemaphoreTests {
    final class Peak: Sendable {
        let state = Mutex((current: 0, peak: 0))

        func enter() {
            state.withLock {
                $0.current += 1; $0.peak = max($0.peak, $0.current)
            }
        }
        func leave() { state.withLock { $0.current -= 1 } }
        var peak: Int { state.withLock { $0.peak } }
    }

    @Test("never more holders than permits, and the bound is reached")
    func bound() async {
        let semaphore = AsyncSemaphore(permits: 3)
        let peak = Peak()
        await withTaskGroup(of: Void.self) { group in
            for _ in 0..<30 {
                group.addTask {
                    guard await semaphore.acquire() else { return }
                    peak.enter()
                    try? await Task.sleep(for: .milliseconds(5))
                    peak.leave()
                    semaphore.release()
                }
            }
        }
        #expect(peak.peak == 3)
    }

    @Test("a cancelled waiter gets no permit and takes none")
    func cancellation() async {
        let semaphore = AsyncSemaphore(permits: 1)
        #expect(await semaphore.acquire())
        let waiter = Task { await semaphore.acquire() }
        try? await Task.sleep(for: .milliseconds(50))
        waiter.cancel()
        #expect(await waiter.value == false)
        semaphore.release()
        // The permit went back, not to the cancelled waiter.
        #expect(await semaphore.acquire())
    }
}
