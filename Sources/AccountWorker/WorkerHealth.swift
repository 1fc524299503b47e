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

    public var isShuttingDown: Bool { state.withLock { $0.shuttingDown } }
    public var assignedPartitions: Int { state.withLock { $0.assignedPartitions } }
}

/// What the health endpoints answer.
public struct WorkerHealthReport: Sendable, Encodable {
    public var alive: Bool
    public var ready: Bool
    public var reasons: [String]
    public var assignedPartitions: Int
    public var breakerOpen: Bool
    public var buffered: Int
}
