/// The contract's circuit breaker: when calls for `threshold` different
/// accounts have failed with an outage-like error (transport, or 5xx other
/// than 596) and useapi gave no other answer in between, the circuit opens.
/// While open, only one probe call runs at a time, with a backoff between
/// probes (250 ms doubling to 10 s). Any other answer closes it.
///
/// A value type: the owner keeps it behind its lock and acts on what the
/// transitions return.
public struct CircuitBreaker: Sendable {
    public enum State: Sendable, Equatable {
        case closed
        case open
    }

    public enum Permission: Sendable, Equatable {
        /// Call now. `isProbe` calls run while the circuit is open and do not
        /// count against the command's attempts.
        case call(isProbe: Bool)
        /// Wait until the next probe may start, then ask again.
        case wait(Duration)
    }

    public let threshold: Int
    public let minProbeDelay: Duration
    public let maxProbeDelay: Duration
    public private(set) var state: State = .closed
    private var failingAccounts: Set<String> = []
    private var probeInFlight = false
    private var probeDelay: Duration
    private var nextProbeAt: ContinuousClock.Instant?
    /// Times the circuit opened, for metrics.
    public private(set) var openings = 0

    public init(threshold: Int, minProbeDelay: Duration = .milliseconds(250), maxProbeDelay: Duration = .seconds(10)) {
        self.threshold = max(1, threshold)
        self.minProbeDelay = minProbeDelay
        self.maxProbeDelay = maxProbeDelay
        self.probeDelay = minProbeDelay
    }

    /// Asks whether a call may start now.
    public mutating func permission(now: ContinuousClock.Instant) -> Permission {
        switch state {
        case .closed:
            return .call(isProbe: false)
        case .open:
            if probeInFlight { return .wait(minProbeDelay) }
            if let nextProbeAt, now < nextProbeAt { return .wait(nextProbeAt - now) }
            probeInFlight = true
            return .call(isProbe: true)
        }
    }

    /// A probe ended without an answer to judge (its task was cancelled):
    /// let another command probe.
    public mutating func abandonProbe() {
        probeInFlight = false
    }

    /// Records a call's outcome. `outage` is true for transport errors and 5xx
    /// other than 596. Returns true when this changed the state.
    @discardableResult
    public mutating func record(email: String, outage: Bool, wasProbe: Bool, now: ContinuousClock.Instant) -> Bool {
        if wasProbe { probeInFlight = false }
        guard outage else {
            failingAccounts.removeAll()
            probeDelay = minProbeDelay
            nextProbeAt = nil
            guard state == .open else { return false }
            state = .closed
            return true
        }
        switch state {
        case .closed:
            failingAccounts.insert(email)
            guard failingAccounts.count >= threshold else { return false }
            state = .open
            openings += 1
            probeDelay = minProbeDelay
            nextProbeAt = now + probeDelay
            return true
        case .open:
            if wasProbe {
                probeDelay = min(probeDelay * 2, maxProbeDelay)
                nextProbeAt = now + probeDelay
            }
            return false
        }
    }
}
