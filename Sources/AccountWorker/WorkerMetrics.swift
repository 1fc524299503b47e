import CoreMetrics
import Synchronization

/// The worker's metrics, created once. Labels are bounded: status, code,
/// topic and partition; never an email or a command id.
final class WorkerMetrics: Sendable {
    let consumed = Counter(label: "account_worker_commands_consumed_total")
    let retries = Counter(label: "account_worker_useapi_retries_total")
    let calls = Counter(label: "account_worker_useapi_calls_total")
    let callDuration = Timer(label: "account_worker_useapi_call_duration_seconds", preferredDisplayUnit: .seconds)
    let inFlight = Meter(label: "account_worker_useapi_calls_in_flight")
    let buffered = Gauge(label: "account_worker_commands_buffered")
    let breakerOpen = Gauge(label: "account_worker_breaker_open")
    let breakerOpenings = Counter(label: "account_worker_breaker_openings_total")
    let dlq = Counter(label: "account_worker_dlq_messages_total")
    let commitsAsync = Counter(label: "account_worker_offset_commits_total", dimensions: [("mode", "async")])
    let commitsSync = Counter(label: "account_worker_offset_commits_total", dimensions: [("mode", "sync")])
    let commitFailures = Counter(label: "account_worker_offset_commit_failures_total")
    let publishFailures = Counter(label: "account_worker_publish_failures_total")
    private let results = Mutex<[String: Counter]>([:])
    private let lags = Mutex<[String: Gauge]>([:])

    func result(status: CommandResult.Status, code: Int) -> Counter {
        let key = "\(status.rawValue)/\(code)"
        return results.withLock { cache in
            if let counter = cache[key] { return counter }
            let counter = Counter(
                label: "account_worker_results_total",
                dimensions: [("status", status.rawValue), ("code", String(code))]
            )
            cache[key] = counter
            return counter
        }
    }

    func lag(topic: String, partition: Int32) -> Gauge {
        let key = "\(topic)/\(partition)"
        return lags.withLock { cache in
            if let gauge = cache[key] { return gauge }
            let gauge = Gauge(label: "account_worker_consumer_lag", dimensions: [("topic", topic), ("partition", String(partition))])
            cache[key] = gauge
            return gauge
        }
    }
}
