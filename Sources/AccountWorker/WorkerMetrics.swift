import CoreMetrics
import Kafka
import Synchronization
import UseAPI

/// The `# HELP` text of every metric family the worker exports, by name.
/// A metrics factory that can carry help text (WorkerHTTP's) reads it here.
public enum WorkerMetricsHelp {
    public static let texts: [String: String] = [
        "account_worker_commands_consumed_total": "Command records consumed from the command topic.",
        "account_worker_results_total":
            "Result events published, by status (ok, error), code (HTTP status, or 400/413 for validation), type and stage (validation, api, transport; none when ok).",
        "account_worker_useapi_calls_total":
            "Calls to useapi, by outcome: the HTTP status of the answer, or transport (no readable answer), timeout or cancelled.",
        "account_worker_useapi_retries_total": "useapi calls retried after a retryable failure.",
        "account_worker_useapi_call_duration_seconds": "Duration of one useapi call, whatever its outcome.",
        "account_worker_useapi_calls_in_flight": "useapi calls in progress.",
        "account_worker_commands_buffered": "Commands held by the worker (queued, running or awaiting publication).",
        "account_worker_breaker_open": "1 while the useapi circuit breaker is open, else 0.",
        "account_worker_breaker_openings_total": "Times the useapi circuit breaker opened.",
        "account_worker_dlq_messages_total": "Undecodable command records copied to the dead-letter topic.",
        "account_worker_offset_commits_total": "Offset commits sent, by mode (async: periodic; sync: revocation and shutdown).",
        "account_worker_offset_commit_failures_total":
            "Offset commits that failed or that the group coordinator refused (asynchronous refusals included).",
        "account_worker_publish_failures_total": "Attempts to publish a result or DLQ record that Kafka did not acknowledge.",
        "account_worker_publish_degraded_total": "Records Kafka refused for good, published again as a degraded copy.",
        "account_worker_publish_dropped_total": "Records that could not be published even degraded, and were given up.",
        "account_worker_consumer_lag":
            "Records not yet committed per assigned partition: the log-end offset from the brokers minus the group's committed offset.",
        "account_worker_info": "Always 1; labels name the worker and its version.",
        "account_worker_concurrency_limit":
            "useapi calls this worker lets run at once now: MAX_IN_FLIGHT, halved on each 429 and raised again as calls succeed (AIMD).",
        "account_worker_request_rate_limit":
            "useapi calls per second this worker may make: its share of MAX_REQUESTS_PER_SECOND (0 when off or nothing is assigned).",
    ]
}

/// The worker's metrics, created once. Labels are bounded: status, code,
/// type, stage, outcome, mode, topic and partition; never an email or a
/// command id.
final class WorkerMetrics: Sendable {
    let factory: any MetricsFactory
    let consumed: Counter
    let retries: Counter
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
    let concurrencyLimit: Gauge
    let requestRateLimit: Gauge
    let info: Gauge
    private let results = Mutex<[String: Counter]>([:])
    private let calls = Mutex<[String: Counter]>([:])
    private let lags = Mutex<[KafkaTopicPartition: Gauge]>([:])

    init(factory: any MetricsFactory, workerID: String) {
        self.factory = factory
        consumed = Counter(label: "account_worker_commands_consumed_total", dimensions: [], factory: factory)
        retries = Counter(label: "account_worker_useapi_retries_total", dimensions: [], factory: factory)
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
        concurrencyLimit = Gauge(label: "account_worker_concurrency_limit", dimensions: [], factory: factory)
        requestRateLimit = Gauge(label: "account_worker_request_rate_limit", dimensions: [], factory: factory)
        // The worker id appears once, on an info metric, never on the per-command series.
        info = Gauge(
            label: "account_worker_info",
            dimensions: [("worker", workerID), ("version", accountWorkerVersion)],
            factory: factory
        )
        info.record(1)
        breakerOpen.record(0)
        buffered.record(0)
        // Series that alerts and dashboards rate() exist at 0 from start-up:
        // an expression over a missing series is empty, not 0.
        _ = result(status: .ok, code: 200, type: .upsert, stage: nil)
        _ = result(status: .ok, code: 200, type: .delete, stage: nil)
        _ = result(status: .error, code: 502, type: .upsert, stage: .transport)
        _ = call(outcome: "200")
        commitsAsync.increment(by: 0)
        commitsSync.increment(by: 0)
        for counter in [consumed, retries, breakerOpenings, dlq, commitFailures, publishFailures, publishDegraded, publishDropped] {
            counter.increment(by: 0)
        }
    }

    func result(status: CommandResult.Status, code: Int, type: CommandType, stage: CommandResult.Stage?) -> Counter {
        let labels = [
            ("status", status.rawValue), ("code", String(code)), ("type", type.rawValue), ("stage", stage?.rawValue ?? "none"),
        ]
        return counter("account_worker_results_total", labels, cache: results)
    }

    /// A call ended with `outcome`: an HTTP status, `transport`, `timeout` or `cancelled`.
    func call(outcome: String) -> Counter {
        counter("account_worker_useapi_calls_total", [("outcome", outcome)], cache: calls)
    }

    /// The outcome label of one call: the status useapi answered (bounded to
    /// 100-599), or how it failed without an answer.
    static func outcome(of call: CommandExecution.Outcome) -> String {
        func code(_ status: Int) -> String { (100...599).contains(status) ? String(status) : "other" }
        switch call {
        case .upserted(let account): return code(account.statusCode)
        case .deleted(let status): return code(status)
        case .failed(.api(let error)): return code(error.statusCode)
        case .failed(.transport(let error)):
            return switch error.kind {
            case .timeout: "timeout"
            case .cancelled: "cancelled"
            case .connection, .tls, .invalidResponse: "transport"
            }
        }
    }

    private func counter(_ label: String, _ dimensions: [(String, String)], cache: borrowing Mutex<[String: Counter]>) -> Counter {
        let key = dimensions.map { "\($0.0)=\($0.1)" }.joined(separator: ",")
        return cache.withLock { cache in
            if let counter = cache[key] { return counter }
            let counter = Counter(label: label, dimensions: dimensions, factory: factory)
            counter.increment(by: 0)
            cache[key] = counter
            return counter
        }
    }

    /// Sets the lag of the assigned partitions and removes the series of
    /// every partition no longer assigned. `assigned` partitions missing
    /// from `lags` (not yet known) keep their last value.
    func recordLag(_ lags: [KafkaTopicPartition: Int64], assigned: Set<KafkaTopicPartition>) {
        let removed: [Gauge] = self.lags.withLock { gauges in
            var removed: [Gauge] = []
            for (partition, gauge) in gauges where !assigned.contains(partition) {
                gauges[partition] = nil
                removed.append(gauge)
            }
            for (partition, lag) in lags where assigned.contains(partition) {
                let gauge =
                    gauges[partition]
                    ?? Gauge(
                        label: "account_worker_consumer_lag",
                        dimensions: [("topic", partition.topic), ("partition", String(partition.partition))],
                        factory: factory
                    )
                gauges[partition] = gauge
                gauge.record(lag)
            }
            return removed
        }
        for gauge in removed { gauge.destroy() }
    }
}
