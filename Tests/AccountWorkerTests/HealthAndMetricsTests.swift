import AccountWorker
import AsyncHTTPClient
import Foundation
import NIOCore
import Prometheus
import ServiceLifecycle
import Synchronization
import Testing
import UseAPISimulator
import WorkerHTTP

@Suite("Health and metrics endpoints", .timeLimit(.minutes(3)))
struct HealthAndMetricsTests {
    func get(_ port: Int, _ path: String) async throws -> (Int, String) {
        let response = try await HTTPClient.shared.execute(HTTPClientRequest(url: "http://127.0.0.1:\(port)\(path)"), timeout: .seconds(5))
        return (Int(response.status.code), String(buffer: try await response.body.collect(upTo: 1 << 20)))
    }

    @Test("/metrics shows the named metrics after traffic; /healthz and /readyz answer; /readyz turns not-ready during shutdown")
    func endpoints() async throws {
        var slow = SimulatedFault(emailPrefix: "slow")
        slow.latencyMs = 3000
        var flaky = SimulatedFault(emailPrefix: "flaky")
        flaky.failFirst = 1
        let harness = try await WorkerHarness(partitions: 2, faults: [slow, flaky])
        let registry = PrometheusCollectorRegistry()
        let box = Mutex<AccountWorkerService?>(nil)
        let http = WorkerHTTPServer(host: "127.0.0.1", port: 0, registry: registry, logger: harness.quietLogger) {
            box.withLock { $0 }!.healthReport()
        }
        let worker = try harness.startWorker(
            await harness.settings {
                $0.shutdownTimeout = .seconds(20)
                $0.lagInterval = .milliseconds(300)
            },
            metricsFactory: WorkerHTTPServer.metricsFactory(registry: registry),
            before: [http]
        )
        box.withLock { $0 = worker.service }
        let port = await http.boundPort()
        try await harness.waitUntil("ready") { worker.service.healthReport().ready }
        #expect(try await get(port, "/healthz").0 == 200)
        #expect(try await get(port, "/readyz").0 == 200)

        try await harness.sendUpsert(id: "m-1", email: "ok@x.io")
        try await harness.sendUpsert(id: "m-2", email: "flaky@x.io")
        try await harness.send(#"{"id":"m-3","email":"bad"}"#, key: "bad")
        try await harness.send("not json", key: "junk")
        try await harness.waitForResults(4)
        let (metricsStatus, metrics) = try await get(port, "/metrics")
        #expect(metricsStatus == 200)
        for name in [
            "account_worker_commands_consumed_total 4", #"account_worker_results_total{status="ok",code="200"} 2"#,
            #"account_worker_results_total{status="error",code="400"} 2"#, "account_worker_useapi_call_duration_seconds_bucket",
            "account_worker_useapi_calls_in_flight", "account_worker_commands_buffered", "account_worker_useapi_retries_total 1",
            "account_worker_breaker_open 0", "account_worker_dlq_messages_total 1", #"account_worker_info{worker="worker-1""#,
        ] {
            #expect(metrics.contains(name), "missing \(name)")
        }
        try await harness.waitUntil("commits and lag reported", timeout: .seconds(15)) {
            let text = registry.emitToString()
            return text.contains(#"account_worker_offset_commits_total{mode="async"}"#) && text.contains("account_worker_consumer_lag{")
        }
        #expect(!metrics.contains("@x.io"), "an email in a metric label")

        // A slow command keeps the worker draining; /readyz must say no meanwhile.
        try await harness.sendUpsert(id: "m-4", email: "slow@x.io")
        try await harness.waitUntil("the slow call to start") { harness.simulator.requestsInFlight > 0 }
        try await Task.sleep(for: .milliseconds(300))
        let stopping = Task { try await worker.stop() }
        try await harness.waitUntil("not ready while draining", timeout: .seconds(10)) {
            worker.service.healthReport().ready == false
        }
        let (readyStatus, readyBody) = try await get(port, "/readyz")
        #expect(readyStatus == 503)
        #expect(readyBody.contains("shutting down"))
        #expect(try await get(port, "/healthz").0 == 200)
        try await stopping.value
        // The in-flight command was finished and published during the drain
        // (the reader may see it a moment after the worker stopped).
        try await harness.waitUntil("the drained command's result", timeout: .seconds(10)) {
            harness.results.contains { $0.commandId == "m-4" }
        }
        await harness.shutdown()
    }
}
