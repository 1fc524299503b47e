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
        // A result is counted once all its records (the status topic's too) are acknowledged:
        // a moment after the reader sees it.
        try await harness.waitUntil("four results counted", timeout: .seconds(10)) {
            PrometheusSample.parse(registry.emitToString()).filter { $0.name == "account_worker_results_total" }.map(\.value).reduce(0, +) == 4
        }
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
        #expect(value("account_worker_results_total", ["status": "ok", "code": "200", "type": "account.upsert", "stage": "none"]) == 2)
        #expect(
            value("account_worker_results_total", ["status": "error", "code": "400", "type": "account.upsert", "stage": "validation"]) == 2
        )
        // Each call by its outcome: a 503 is not a healthy 200.
        #expect(value("account_worker_useapi_calls_total", ["outcome": "200"]) == 2)
        #expect(value("account_worker_useapi_calls_total", ["outcome": "503"]) == 1)
        #expect(samples.filter { $0.name == "account_worker_useapi_calls_total" }.map(\.value).reduce(0, +) == 3)
        expectDescribed(metrics)
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
    @Test("at start-up, before any command: every family has HELP and TYPE, alert series exist at 0, process metrics are there")
    func startUp() async throws {
        let harness = try await WorkerHarness(partitions: 1)
        let registry = PrometheusCollectorRegistry()
        let box = Mutex<AccountWorkerService?>(nil)
        let http = WorkerHTTPServer(host: "127.0.0.1", port: 0, registry: registry, logger: harness.quietLogger) {
            box.withLock { $0 }!.healthReport()
        }
        let worker = try harness.startWorker(
            await harness.settings(),
            metricsFactory: WorkerHTTPServer.metricsFactory(registry: registry),
            before: [http]
        )
        box.withLock { $0 = worker.service }
        let port = await http.boundPort()
        let (status, metrics) = try await get(port, "/metrics")
        #expect(status == 200)
        let samples = PrometheusSample.parse(metrics)
        func value(_ name: String, _ labels: [String: String] = [:]) -> Double? {
            samples.first { $0.name == name && $0.labels == labels }?.value
        }
        #expect(value("account_worker_results_total", ["status": "ok", "code": "200", "type": "account.upsert", "stage": "none"]) == 0)
        #expect(samples.contains { $0.name == "account_worker_results_total" && $0.labels["status"] == "error" && $0.value == 0 })
        for name in [
            "account_worker_publish_failures_total", "account_worker_offset_commit_failures_total", "account_worker_dlq_messages_total",
            "account_worker_commands_consumed_total", "account_worker_breaker_open",
        ] {
            #expect(value(name) == 0, "\(name) at start-up")
        }
        // Every family the worker declares is exposed (the lag once partitions are assigned), each described.
        let families = expectDescribed(metrics)
        #expect(Set(WorkerMetricsHelp.texts.keys).subtracting(families) == ["account_worker_consumer_lag"])

        #if os(Linux)
        for name in ["process_resident_memory_bytes", "process_virtual_memory_bytes", "process_open_fds", "process_max_fds"] {
            #expect(value(name).map { $0 > 0 } == true, "\(name)")
        }
        #expect(value("process_cpu_seconds_total").map { $0 >= 0 } == true)
        if let open = value("process_open_fds"), let max = value("process_max_fds") { #expect(open <= max) }
        let now = Date().timeIntervalSince1970
        #expect(value("process_start_time_seconds").map { $0 <= now + 1 && $0 > now - 86_400 } == true, "start time")
        #expect(metrics.contains("# TYPE process_cpu_seconds_total counter\n"))
        #endif
        try await worker.stop()
        await harness.shutdown()
    }

    @Test("lag is the log end minus the committed offset, and keeps growing while an open breaker pauses fetching")
    func lagWhileBreakerOpen() async throws {
        var down = SimulatedFault(emailPrefix: "down")
        down.failFirst = 100_000
        let harness = try await WorkerHarness(partitions: 1, faults: [down])
        let registry = PrometheusCollectorRegistry()
        let worker = try harness.startWorker(
            await harness.settings {
                $0.breakerThreshold = 2
                $0.maxAttempts = 100_000
                $0.lagInterval = .milliseconds(100)
                $0.shutdownTimeout = .seconds(2)
            },
            metricsFactory: WorkerHTTPServer.metricsFactory(registry: registry)
        )
        func lag() -> Double? {
            PrometheusSample.parse(registry.emitToString()).first { $0.name == "account_worker_consumer_lag" && $0.labels["partition"] == "0" }?.value
        }
        // Five commands done and committed, then an outage.
        for index in 0..<5 { try await harness.sendUpsert(id: "ok-\(index)", email: "ok\(index)@x.io") }
        try await harness.waitForResults(5)
        for index in 0..<3 { try await harness.sendUpsert(id: "down-\(index)", email: "down\(index)@x.io") }
        try await harness.waitUntil("the breaker to open", timeout: .seconds(20)) { worker.service.healthReport().breakerOpen }
        // Fetching is paused now; records produced meanwhile count all the same.
        for index in 3..<23 { try await harness.sendUpsert(id: "down-\(index)", email: "down\(index)@x.io") }
        // 28 produced, 5 committed.
        do {
            try await harness.waitUntil("lag 23", timeout: .seconds(20)) { lag() == 23 }
        } catch {
            Issue.record("lag is \(lag().map { "\($0)" } ?? "absent"), not 23")
        }
        #expect(worker.service.healthReport().breakerOpen)
        #expect(harness.results.count == 5)
        try await worker.stop()
        await harness.shutdown()
    }

    @Test("a revoked partition's lag series disappears from the worker that lost it")
    func lagOfRevokedPartitionRemoved() async throws {
        let harness = try await WorkerHarness(partitions: 2)
        let registry = PrometheusCollectorRegistry()
        let first = try harness.startWorker(
            await harness.settings { $0.lagInterval = .milliseconds(100) },
            metricsFactory: WorkerHTTPServer.metricsFactory(registry: registry)
        )
        func lagPartitions() -> Set<String> {
            Set(PrometheusSample.parse(registry.emitToString()).filter { $0.name == "account_worker_consumer_lag" }.compactMap { $0.labels["partition"] })
        }
        try await harness.waitUntil("lag of both partitions", timeout: .seconds(30)) { lagPartitions() == ["0", "1"] }
        let second = try harness.startWorker(await harness.settings(workerID: "worker-2") { $0.lagInterval = .milliseconds(100) })
        try await harness.waitUntil("the second worker to get a partition", timeout: .seconds(30)) {
            second.service.healthReport().assignedPartitions == 1 && first.service.healthReport().assignedPartitions == 1
        }
        do {
            try await harness.waitUntil("one lag series left", timeout: .seconds(10)) { lagPartitions().count == 1 }
        } catch {
            Issue.record("lag series after the rebalance: \(lagPartitions().sorted())")
        }
        try await second.stop()
        try await first.stop()
        await harness.shutdown()
    }

    /// Every family in `text` has one TYPE line and a non-empty HELP line,
    /// before its samples. Returns the families.
    @discardableResult
    func expectDescribed(_ text: String, sourceLocation: SourceLocation = #_sourceLocation) -> Set<String> {
        var help: [String: String] = [:]
        var types: [String: String] = [:]
        for line in text.split(separator: "\n") {
            let fields = line.split(separator: " ", maxSplits: 3)
            guard fields.count >= 3, fields[0] == "#" else { continue }
            let name = String(fields[2])
            if fields[1] == "HELP" {
                #expect(help[name] == nil, "two HELP lines for \(name)", sourceLocation: sourceLocation)
                help[name] = fields.count > 3 ? String(fields[3]) : ""
            } else if fields[1] == "TYPE" {
                #expect(help[name] != nil, "TYPE before HELP for \(name)", sourceLocation: sourceLocation)
                types[name] = fields.count > 3 ? String(fields[3]) : ""
            }
        }
        for (name, _) in types {
            #expect(help[name].map { !$0.isEmpty } == true, "no HELP for \(name)", sourceLocation: sourceLocation)
        }
        #expect(types.keys.contains { $0.hasPrefix("account_worker_") }, sourceLocation: sourceLocation)
        return Set(types.keys)
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
