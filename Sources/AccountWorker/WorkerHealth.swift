import Synchronization

/// What `/readyz` and `/healthz` report.
public final class WorkerHealth: Sendable {
    private struct State {
        var assignedPartitions = 0
        var assignmentSeen = false
        var shuttingDown = false
    }

    private let state = Mutex(State())

    public init() {}

    func setAssigned(_ count: Int) {
        state.withLock {
            $0.assignedPartitions = count
            $0.assignmentSeen = true
        }
    }

    func setShuttingDown() {
        state.withLock { $0.shuttingDown = true }
    }

    /// Ready: the group gave this member partitions at least once and it is not shutting down.
    public var isReady: Bool { state.withLock { $0.assignmentSeen && !$0.shuttingDown } }
    public var isShuttingDown: Bool { state.withLock { $0.shuttingDown } }
    public var assignedPartitions: Int { state.withLock { $0.assignedPartitions } }
}
