import DequeModule
import Synchronization

/// A counting semaphore for tasks: `acquire` suspends (FIFO) while no permit
/// is free, and returns false if the task is cancelled while waiting.
final class AsyncSemaphore: Sendable {
    private struct State {
        var available: Int
        var waiters = Deque<(id: UInt64, continuation: CheckedContinuation<Bool, Never>)>()
        var nextID: UInt64 = 0
    }

    private let state: Mutex<State>

    init(permits: Int) {
        state = Mutex(State(available: permits))
    }

    /// Whether a permit was obtained (false: cancelled while waiting).
    func acquire() async -> Bool {
        let id = state.withLock { state in
            state.nextID += 1
            return state.nextID
        }
        return await withTaskCancellationHandler {
            await withCheckedContinuation { continuation in
                let granted: Bool? = state.withLock { state in
                    if Task.isCancelled { return false }
                    if state.available > 0, state.waiters.isEmpty {
                        state.available -= 1
                        return true
                    }
                    state.waiters.append((id, continuation))
                    return nil
                }
                if let granted { continuation.resume(returning: granted) }
            }
        } onCancel: {
            let cancelled: CheckedContinuation<Bool, Never>? = state.withLock { state in
                guard let index = state.waiters.firstIndex(where: { $0.id == id }) else { return nil }
                return state.waiters.remove(at: index).continuation
            }
            cancelled?.resume(returning: false)
        }
    }

    func release() {
        let next: CheckedContinuation<Bool, Never>? = state.withLock { state in
            if let waiter = state.waiters.popFirst() { return waiter.continuation }
            state.available += 1
            return nil
        }
        next?.resume(returning: true)
    }
}
