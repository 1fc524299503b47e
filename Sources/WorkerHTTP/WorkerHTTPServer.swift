import AccountWorker
import Foundation
import Hummingbird
import Logging
import NIOCore
import NIOFoundationCompat
import Prometheus
import ServiceLifecycle
import Synchronization

/// `/healthz`, `/readyz` and `/metrics` for operators and orchestrators.
///
/// Start it before the worker in the service group: services stop in reverse
/// order, so it keeps answering (not ready) while the worker drains.
public final class WorkerHTTPServer: Service, Sendable {
    let host: String
    let port: Int
    let report: @Sendable () -> WorkerHealthReport
    let registry: PrometheusCollectorRegistry
    let logger: Logger
    private let bound = Mutex<(port: Int?, waiters: [CheckedContinuation<Int, Never>])>((nil, []))

    public init(
        host: String = "0.0.0.0",
        port: Int,
        registry: PrometheusCollectorRegistry,
        logger: Logger,
        report: @escaping @Sendable () -> WorkerHealthReport
    ) {
        self.host = host
        self.port = port
        self.registry = registry
        self.logger = logger
        self.report = report
    }

    public func run() async throws {
        let router = Router()
        router.get("/healthz") { _, _ in
            let report = self.report()
            return Self.json(
                report.alive ? .ok : .serviceUnavailable,
                ["status": report.alive ? "alive" : "stuck", "reasons": report.reasons]
            )
        }
        router.get("/readyz") { _, _ in
            let report = self.report()
            return Self.json(
                report.ready ? .ok : .serviceUnavailable,
                [
                    "status": report.ready ? "ready" : "not ready", "reasons": report.reasons,
                    "assignedPartitions": report.assignedPartitions, "breakerOpen": report.breakerOpen, "buffered": report.buffered,
                ]
            )
        }
        router.get("/metrics") { _, _ in
            Response(
                status: .ok,
                headers: [.contentType: "text/plain; version=0.0.4; charset=utf-8"],
                body: .init(byteBuffer: ByteBuffer(bytes: self.registry.emitToBuffer() + Array(ProcessMetrics.exposition().utf8)))
            )
        }
        let app = Application(
            router: router,
            configuration: .init(address: .hostname(host, port: port), serverName: nil),
            onServerRunning: { [self] channel in self.didBind(channel.localAddress?.port ?? port) },
            logger: logger
        )
        try await app.run()
    }

    /// The port it listens on, once bound (useful with port 0).
    public func boundPort() async -> Int {
        await withCheckedContinuation { continuation in
            let port: Int? = bound.withLock { state in
                if let port = state.port { return port }
                state.waiters.append(continuation)
                return nil
            }
            if let port { continuation.resume(returning: port) }
        }
    }

    private func didBind(_ port: Int) {
        let waiters = bound.withLock { state in
            state.port = port
            defer { state.waiters = [] }
            return state.waiters
        }
        for waiter in waiters { waiter.resume(returning: port) }
        logger.info("health and metrics endpoints listening", metadata: ["http.port": "\(port)"])
    }

    static func json(_ status: HTTPResponse.Status, _ object: [String: any Sendable]) -> Response {
        let data = (try? JSONSerialization.data(withJSONObject: object, options: [.sortedKeys])) ?? Data()
        return Response(status: status, headers: [.contentType: "application/json"], body: .init(byteBuffer: ByteBuffer(data: data)))
    }

    /// A metrics factory on `registry` that gives every worker metric its
    /// `# HELP` text (``WorkerMetricsHelp``), with call-duration buckets from 5 ms to 60 s.
    public static func metricsFactory(registry: PrometheusCollectorRegistry) -> DescribedMetricsFactory {
        DescribedMetricsFactory(
            registry: registry,
            help: WorkerMetricsHelp.texts,
            durationBuckets: [
                .milliseconds(5), .milliseconds(10), .milliseconds(25), .milliseconds(50), .milliseconds(100), .milliseconds(250),
                .milliseconds(500), .seconds(1), .seconds(2), .seconds(5), .seconds(10), .seconds(30), .seconds(60),
            ]
        )
    }
}
