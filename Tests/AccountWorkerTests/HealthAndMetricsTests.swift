import AccountWorker
import AsyncHTTPClient
import Foundation
import NIOCore
import NIOHTTP1
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
        // Whole samples, parsed from the exposition: `…consumed_total 4` as a
        // substring would also match 40-49.
        let samples = PrometheusSample.parse(metrics)
        func value(_ name: String, _ labels: [String: String] = [:]) -> Double? {
            let matching = samples.filter { $0.name == name && $0.labels == labels }
            #expect(matching.count <= 1, "\(name)\(labels) exposed \(matching.count) times")
            return matching.first?.value
        }
        #expect(value("account_worker_commands_consumed_total") == 4)
        #expect(value("account_worker_results_total", ["status": "ok", "code": "200"]) == 2)
        #expect(value("account_worker_results_total", ["status": "error", "code": "400"]) == 2)
        #expect(samples.filter { $0.name == "account_worker_results_total" }.map(\.value).reduce(0, +) == 4, "other results counted")
        #expect(value("account_worker_useapi_retries_total") == 1)
        #expect(value("account_worker_breaker_open") == 0)
        #expect(value("account_worker_dlq_messages_total") == 1)
        // Gauges that move as work finishes: present, with a sane value.
        #expect(value("account_worker_useapi_calls_in_flight").map { (0...8).contains($0) } == true)
        #expect(value("account_worker_commands_buffered").map { $0 >= 0 } == true)
        // Three calls (ok, flaky twice): the histogram's +Inf bucket and count say so.
        let callCount = samples.filter { $0.name == "account_worker_useapi_call_duration_seconds_count" }.map(\.value).reduce(0, +)
        #expect(callCount == 3)
        let infBuckets = samples.filter { $0.name == "account_worker_useapi_call_duration_seconds_bucket" && $0.labels["le"] == "+Inf" }
        #expect(!infBuckets.isEmpty && infBuckets.map(\.value).reduce(0, +) == callCount)
        #expect(samples.contains { $0.name == "account_worker_info" && $0.labels["worker"] == "worker-1" && $0.value == 1 })
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

/// One sample line of the Prometheus text exposition: `name{label="value",…} value`.
struct PrometheusSample: Equatable {
    var name: String
    var labels: [String: String]
    var value: Double

    /// Every sample line of `text` (comments and blank lines skipped). A line
    /// that is not a well-formed sample is recorded as an issue.
    static func parse(_ text: String, sourceLocation: SourceLocation = #_sourceLocation) -> [PrometheusSample] {
        var samples: [PrometheusSample] = []
        for line in text.split(separator: "\n") where !line.hasPrefix("#") && !line.allSatisfy(\.isWhitespace) {
            guard let sample = PrometheusSample(line: Substring(line)) else {
                Issue.record("not a sample line: \(line)", sourceLocation: sourceLocation)
                continue
            }
            samples.append(sample)
        }
        return samples
    }

    init?(line: Substring) {
        var rest = line[...]
        let nameEnd = rest.firstIndex { $0 == "{" || $0 == " " } ?? rest.endIndex
        name = String(rest[..<nameEnd])
        rest = rest[nameEnd...]
        labels = [:]
        if rest.first == "{" {
            rest = rest.dropFirst()
            while rest.first != "}" {
                guard let equals = rest.firstIndex(of: "="), rest[rest.index(after: equals)...].first == "\"" else { return nil }
                let key = String(rest[..<equals])
                rest = rest[rest.index(equals, offsetBy: 2)...]
                var labelValue = ""
                while let character = rest.first, character != "\"" {
                    rest = rest.dropFirst()
                    if character == "\\", let escaped = rest.first {
                        rest = rest.dropFirst()
                        labelValue.append(escaped == "n" ? "\n" : escaped)
                    } else {
                        labelValue.append(character)
                    }
                }
                guard rest.first == "\"" else { return nil }
                rest = rest.dropFirst()
                labels[key] = labelValue
                if rest.first == "," { rest = rest.dropFirst() }
                guard !rest.isEmpty else { return nil }
            }
            rest = rest.dropFirst()
        }
        let fields = rest.split(separator: " ")
        guard !name.isEmpty, (1...2).contains(fields.count), let number = Double(fields[0]) else { return nil }
        value = number
    }
}
