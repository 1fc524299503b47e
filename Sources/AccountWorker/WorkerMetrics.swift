import CoreMetrics
import Synchronization

/// The worker's metrics, created once. Labels are bounded: status, code,
/// topic and partition; never an email or a command id.
final class WorkerMetrics: Sendable {
    let factory: any MetricsFactory
    let consumed: Counter
    let retries: Counter
    let calls: Counter
    let callDuration: Timer
    let inFlight: Meter
    let buffered: Gauge
    let breakerOpen: Gauge
    let breakerOpenings: Counter
    let dlq: Counter
    let commitsAsync: Counter
    let commitsSync: Counter
    let commitFailures: Counter
    let publishFailures: Counter
    let publishDegraded: Counter
    let publishDropped: Counter
    let info: Gauge
    private let results = Mutex<[String: Counter]>([:])
    private let lags = Mutex<[String: Gauge]>([:])

    init(factory: any MetricsFactory, workerID: String) {
        self.factory = factory
        consumed = Counter(label: "account_worker_commands_consumed_total", dimensions: [], factory: factory)
        retries = Counter(label: "account_worker_useapi_retries_total", dimensions: [], factory: factory)
        calls = Counter(label: "account_worker_useapi_calls_total", dimensions: [], factory: factory)
        callDuration = Timer(label: "account_worker_useapi_call_duration_seconds", dimensions: [], factory: factory)
        inFlight = Meter(label: "account_worker_useapi_calls_in_flight", dimensions: [], factory: factory)
        buffered = Gauge(label: "account_worker_commands_buffered", dimensions: [], factory: factory)
        breakerOpen = Gauge(label: "account_worker_breaker_open", dimensions: [], factory: factory)
        breakerOpenings = Counter(label: "account_worker_breaker_openings_total", dimensions: [], factory: factory)
        dlq = Counter(label: "account_worker_dlq_messages_total", dimensions: [], factory: factory)
        commitsAsync = Counter(label: "account_worker_offset_commits_total", dimensions: [("mode", "async")], factory: factory)
        commitsSync = Counter(label: "account_worker_offset_commits_total", dimensions: [("mode", "sync")], factory: factory)
        commitFailures = Counter(label: "account_worker_offset_commit_failures_total", dimensions: [], factory: factory)
        publishFailures = Counter(label: "account_worker_publish_failures_total", dimensions: [], factory: factory)
        publishDegraded = Counter(label: "account_worker_publish_degraded_total", dimensions: [], factory: factory)
        publishDropped = Counter(label: "account_worker_publish_dropped_total", dimensions: [], factory: factory)
        // The worker id appears once, on an info metric, never on the per-command series.
        info = Gauge(
            label: "account_worker_info",
            dimensions: [("worker", workerID), ("version", accountWorkerVersion)],
            factory: factory
        )
        info.record(1)
        breakerOpen.record(0)
    }

    func result(status: CommandResult.Status, code: Int) -> Counter {
        let key = "\(status.rawValue)/\(code)"
        return results.withLock { cache in
            if let counter = cache[key] { return counter }
            let counter = Counter(
                label: "account_worker_results_total",
                dimensions: [("status", status.rawValue), ("code", String(code))],
                factory: factory
            )
            cache[key] = counter
            return counter
        }
    }

    func lag(topic: String, partition: Int32) -> Gauge {
        let key = "\(topic)/\(partition)"
        return lags.withLock { cache in
            if let gauge = cache[key] { return gauge }
            let gauge = Gauge(
                label: "account_worker_consumer_lag",
                dimensions: [("topic", topic), ("partition", String(partition))],
                factory: factory
            )
            cache[key] = gauge
            return gauge
        }
    }
}
