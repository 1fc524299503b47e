import CoreMetrics
import Logging
import UseAPI

/// Where the executor gets permission for each useapi call, and where it
/// reports how the call ended: the worker's concurrency slots and circuit
/// breaker (``AccountWorkerService``), or a stand-in in tests.
protocol CallGate: Sendable {
    /// Waits for a concurrency slot and the breaker's permission. Returns
    /// the call's ticket, or nil when the command must stop: its task was
    /// cancelled, or its partition was revoked since it was consumed.
    func acquireCall(for item: WorkItem) async -> CallTicket?

    /// The call ended. `outage` is nil when it was abandoned (cancelled):
    /// that judges nothing about useapi's health. `rateLimited`: useapi
    /// answered 429, so fewer calls should run at once.
    func endCall(_ ticket: CallTicket, email: String, outage: Bool?, rateLimited: Bool)
}

/// A permitted call.
struct CallTicket: Sendable {
    var id: Int
    /// A probe runs while the circuit is open and costs no attempt.
    var isProbe: Bool
}

/// How a command's calls to useapi ended.
struct CommandExecution: Sendable {
    enum Outcome: Sendable {
        case upserted(UseAPIAccount)
        /// 200 (or another 2xx), or 404: the account is absent either way.
        case deleted(statusCode: Int)
        case failed(UseAPIFailure)
    }

    var outcome: Outcome
    /// Calls made, probes included.
    var attempts: Int
}

/// Runs one valid command against useapi: one call at a time, each with the
/// gate's permission, retrying per the ``RetryPolicy`` until the answer is
/// final or the attempts run out. Knows nothing of Kafka.
struct CommandExecutor: Sendable {
    let useapi: UseAPIClient
    let policy: RetryPolicy
    let gate: any CallGate
    let metrics: WorkerMetrics
    let logger: Logger

    /// nil when abandoned (cancelled, or the partition was revoked): nothing is reported then.
    func execute(_ command: AccountCommand, item: WorkItem) async -> CommandExecution? {
        var attempts = 0
        // Calls that count against MAX_ATTEMPTS (probes do not).
        var counted = 0
        while true {
            guard let ticket = await gate.acquireCall(for: item) else { return nil }
            let isProbe = ticket.isProbe
            attempts += 1
            if !isProbe { counted += 1 }
            metrics.inFlight.increment()
            let started = ContinuousClock.now
            let outcome = await call(command)
            metrics.callDuration.recordNanoseconds((ContinuousClock.now - started).nanoseconds)
            metrics.inFlight.decrement()
            metrics.call(outcome: Task.isCancelled ? "cancelled" : WorkerMetrics.outcome(of: outcome)).increment()

            if Task.isCancelled {
                // Abandoned: no result, and no verdict on useapi's health either.
                gate.endCall(ticket, email: command.email, outage: nil, rateLimited: false)
                return nil
            }
            let failure: UseAPIFailure? = if case .failed(let failure) = outcome { failure } else { nil }
            let rateLimited: Bool = if case .api(let error)? = failure { error.statusCode == 429 } else { false }
            gate.endCall(ticket, email: command.email, outage: failure.map(RetryPolicy.countsAsOutage) ?? false, rateLimited: rateLimited)

            guard let failure else { return CommandExecution(outcome: outcome, attempts: attempts) }
            if command.type == .delete, case .api(let error) = failure, error.statusCode == 404 {
                // Absent either way: a redelivered delete is not an error.
                return CommandExecution(outcome: .deleted(statusCode: 404), attempts: attempts)
            }
            switch RetryPolicy.disposition(of: failure) {
            case .final:
                return CommandExecution(outcome: outcome, attempts: attempts)
            case .retry(let retryAfter):
                // A failed probe is paced by the breaker and costs no attempt.
                if isProbe { continue }
                if counted >= policy.maxAttempts { return CommandExecution(outcome: outcome, attempts: attempts) }
                metrics.retries.increment()
                let delay = policy.delay(afterAttempt: counted, retryAfter: retryAfter)
                logger.debug(
                    "retrying useapi call",
                    metadata: [
                        "command.id": "\(command.id)", "retry.attempt": "\(counted)", "retry.delay_ms": "\(delay.milliseconds)",
                        // Masked at the source (UseAPIClient), and bounded: useapi's text may be 1 MiB.
                        "retry.reason": "\(String(describing: failure).prefix(CommandResult.maxTextLength))",
                    ]
                )
                do {
                    try await Task.sleep(for: delay)
                } catch {
                    return nil
                }
            }
        }
    }

    private func call(_ command: AccountCommand) async -> CommandExecution.Outcome {
        do {
            switch command.type {
            case .upsert:
                return .upserted(
                    try await useapi.upsert(
                        email: command.email,
                        password: command.password ?? "",
                        maxJobs: command.maxJobs ?? 0,
                        useWorkspace: command.useWorkspace
                    )
                )
            case .delete:
                return .deleted(statusCode: try await useapi.delete(email: command.email).statusCode)
            }
        } catch {
            return .failed(error)
        }
    }
}
