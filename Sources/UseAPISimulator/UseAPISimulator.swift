import Foundation
import Hummingbird
import Logging
import NIOCore
import ServiceLifecycle
import Synchronization

/// A real HTTP server that behaves like useapi's Runway accounts API (per
/// useapi's page for `POST /v1/runwayml/accounts/{email}` and the facts around
/// it), with fault injection and a journal, for tests, the demo and benchmarks.
///
/// Admin endpoints (no token needed): `GET /_admin/journal`,
/// `DELETE /_admin/journal`, `PUT /_admin/faults` (a JSON array of
/// ``SimulatedFault``), `PUT /_admin/accounts/{email}` (a ``SimulatedAccountBehavior``).
public final class UseAPISimulator: Service, Sendable {
    public let configuration: UseAPISimulatorConfiguration
    let logger: Logger
    let state: Mutex<SimulatorState>
    private let binding = Mutex<(port: Int?, waiters: [CheckedContinuation<Int, Never>])>((nil, []))
    let startedAt = ContinuousClock.now

    public init(configuration: UseAPISimulatorConfiguration, logger: Logger = Logger(label: "useapi-simulator")) {
        self.configuration = configuration
        self.logger = logger
        self.state = Mutex(SimulatorState(configuration: configuration))
    }

    /// Serves until cancelled or gracefully shut down.
    public func run() async throws {
        var appConfiguration = ApplicationConfiguration(
            address: .hostname(configuration.host, port: configuration.port),
            serverName: nil
        )
        appConfiguration.backlog = 1024
        let app = Application(
            responder: SimulatorResponder(simulator: self),
            configuration: appConfiguration,
            onServerRunning: { [self] channel in self.didBind(port: channel.localAddress?.port ?? 0) },
            logger: logger
        )
        try await withGracefulShutdownHandler {
            try await app.run()
        } onGracefulShutdown: { [self] in
            self.state.withLock { $0.shuttingDown = true }
        }
        state.withLock { $0.shuttingDown = true }
    }

    /// The bound port, once the server listens.
    public func port() async -> Int {
        await withCheckedContinuation { continuation in
            let port: Int? = binding.withLock { binding in
                if let port = binding.port { return port }
                binding.waiters.append(continuation)
                return nil
            }
            if let port { continuation.resume(returning: port) }
        }
    }

    /// `http://host:port`, once the server listens.
    public func baseURL() async -> String {
        "http://\(configuration.host):\(await port())"
    }

    private func didBind(port: Int) {
        let waiters = binding.withLock { binding in
            binding.port = port
            defer { binding.waiters = [] }
            return binding.waiters
        }
        for waiter in waiters { waiter.resume(returning: port) }
        logger.info("useapi simulator listening", metadata: ["simulator.port": "\(port)"])
    }

    // MARK: Control

    /// Replaces the fault rules.
    public func setFaults(_ faults: [SimulatedFault]) {
        state.withLock { $0.faults = faults }
    }

    /// Sets (or with nil, clears) a known account's behaviour.
    public func setBehavior(_ behavior: SimulatedAccountBehavior?, for email: String) {
        state.withLock { $0.behaviors[email] = behavior }
    }

    /// Everything recorded since the start or the last reset.
    public var journal: SimulatorJournal { state.withLock { $0.journal } }

    /// Requests being answered right now.
    public var requestsInFlight: Int { state.withLock { $0.inFlight } }

    public func resetJournal() {
        state.withLock { $0.resetJournal() }
    }

    /// Stored accounts' emails.
    public var accountEmails: [String] { state.withLock { Array($0.accounts.keys).sorted() } }

    var elapsedSeconds: Double {
        let (seconds, attoseconds) = (ContinuousClock.now - startedAt).components
        return Double(seconds) + Double(attoseconds) / 1e18
    }
}
