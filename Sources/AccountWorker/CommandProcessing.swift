import Foundation
import Kafka
import Logging
import UseAPI

extension AccountWorkerService {
    /// Handles one command start to finish. Returns true once its result
    /// (and DLQ copy) is acknowledged; false when it was abandoned (shutdown)
    /// and must stay uncommitted.
    func process(_ item: WorkItem) async -> Bool {
        let result: CommandResult?
        switch item.decoded {
        case .failure(let rejection):
            if rejection.isUndecodable, let dlqTopic = settings.dlqTopic {
                guard await publish(deadLetter(item, topic: dlqTopic, reason: rejection.dlqReason), what: "dead letter") else {
                    return false
                }
                metrics.dlq.increment()
            }
            result = makeResult(item, type: rejection.type, commandId: rejection.commandId, email: rejection.email) {
                $0.fail(
                    code: rejection.code,
                    stage: .validation,
                    error: rejection.message,
                    errorDetails: rejection.field.map { "field: \($0)" },
                    redacting: SecretRedactor(secrets: [settings.useapiToken])
                )
            }
        case .success(let command):
            result = await execute(command, item)
        }
        guard var result else { return false }
        result.durationMs = (ContinuousClock.now - item.receivedAt).milliseconds
        let message = result.producerMessage(
            topic: settings.resultTopic,
            fallbackKey: item.message.key,
            traceparent: item.message.headers.string(for: "traceparent")
        )
        guard await publish(message, what: "result") else { return false }
        metrics.result(status: result.status, code: result.code).increment()
        var metadata: Logger.Metadata = [
            "command.id": .string(result.commandId ?? ""),
            "command.type": .string(result.type.rawValue),
            "account.email": .string(result.email ?? ""),
            "kafka.partition": .stringConvertible(item.message.partition),
            "kafka.offset": .stringConvertible(item.message.offset),
            "result.status": .string(result.status.rawValue),
            "result.code": .stringConvertible(result.code),
            "result.attempts": .stringConvertible(result.attempts),
            "result.duration_ms": .stringConvertible(result.durationMs),
        ]
        if result.status == .error {
            // Already redacted and cut (CommandResult.fail): useapi's words are safe to log.
            metadata["result.stage"] = .string(result.stage?.rawValue ?? "")
            metadata["result.error"] = .string(result.error ?? "")
        }
        logger.info("command processed", metadata: metadata)
        return true
    }

    private enum CallSuccess {
        case account(UseAPIAccount)
        case deleted(statusCode: Int)
    }

    /// Calls useapi until the answer is final or attempts run out. Nil when
    /// abandoned (the task was cancelled): nothing is reported then.
    private func execute(_ command: AccountCommand, _ item: WorkItem) async -> CommandResult? {
        var attempts = 0
        var counted = 0
        while true {
            guard let isProbe = await acquireCallPermit() else { return nil }
            attempts += 1
            if !isProbe { counted += 1 }
            metrics.inFlight.increment()
            metrics.calls.increment()
            let started = ContinuousClock.now
            let outcome = await call(command)
            metrics.callDuration.recordNanoseconds((ContinuousClock.now - started).nanoseconds)
            metrics.inFlight.decrement()
            slots.release()

            if Task.isCancelled {
                // Abandoned: no result, and no verdict on useapi's health either.
                if isProbe { breaker.withLock { $0.abandonProbe() } }
                return nil
            }
            let failure: UseAPIFailure? = if case .failure(let failure) = outcome { failure } else { nil }
            recordBreaker(email: command.email, outage: failure.map(RetryPolicy.countsAsOutage) ?? false, wasProbe: isProbe)

            let finalAttempts = attempts
            switch outcome {
            case .success(.account(let account)):
                return makeResult(item, type: command.type, commandId: command.id, email: command.email) {
                    $0.status = .ok
                    $0.code = 200
                    $0.attempts = finalAttempts
                    // useapi's value when it is a valid one, else what was sent.
                    $0.maxJobs = account.maxJobs.flatMap { (1...10).contains($0) ? $0 : nil } ?? command.maxJobs
                    if let jwt = account.jwt { $0.setJWT(exp: jwt.exp, iat: jwt.iat, id: jwt.id) }
                }
            case .success(.deleted(let statusCode)):
                return makeResult(item, type: command.type, commandId: command.id, email: command.email) {
                    $0.status = .ok
                    $0.code = statusCode
                    $0.attempts = finalAttempts
                }
            case .failure(let failure):
                if command.type == .delete, case .api(let error) = failure, error.statusCode == 404 {
                    // Absent either way: a redelivered delete is not an error.
                    return makeResult(item, type: command.type, commandId: command.id, email: command.email) {
                        $0.status = .ok
                        $0.code = 404
                        $0.attempts = finalAttempts
                    }
                }
                switch RetryPolicy.disposition(of: failure) {
                case .final:
                    return errorResult(failure, command: command, item: item, attempts: attempts)
                case .retry(let retryAfter):
                    // A failed probe is paced by the breaker and costs no attempt.
                    if isProbe { continue }
                    if counted >= policy.maxAttempts {
                        return errorResult(failure, command: command, item: item, attempts: attempts)
                    }
                    metrics.retries.increment()
                    let delay = policy.delay(afterAttempt: counted, retryAfter: retryAfter)
                    logger.debug(
                        "retrying useapi call",
                        metadata: ["command.id": "\(command.id)", "retry.attempt": "\(counted)", "retry.delay_ms": "\(delay.milliseconds)"]
                    )
                    do {
                        try await Task.sleep(for: delay)
                    } catch {
                        return nil
                    }
                }
            }
        }
    }

    private func call(_ command: AccountCommand) async -> Result<CallSuccess, UseAPIFailure> {
        do {
            switch command.type {
            case .upsert:
                let account = try await useapi.upsert(
                    email: command.email,
                    password: command.password ?? "",
                    maxJobs: command.maxJobs ?? 0,
                    useWorkspace: command.useWorkspace
                )
                return .success(.account(account))
            case .delete:
                let deletion = try await useapi.delete(email: command.email)
                return .success(.deleted(statusCode: deletion.statusCode))
            }
        } catch {
            return .failure(error)
        }
    }

    /// Waits for a concurrency slot and the breaker's permission. Returns
    /// whether the call is a probe, or nil when cancelled.
    private func acquireCallPermit() async -> Bool? {
        while !Task.isCancelled {
            guard await slots.acquire() else { return nil }
            switch breaker.withLock({ $0.permission(now: .now) }) {
            case .call(let isProbe):
                return isProbe
            case .wait(let delay):
                slots.release()
                do {
                    try await Task.sleep(for: delay)
                } catch {
                    return nil
                }
            }
        }
        return nil
    }

    private func recordBreaker(email: String, outage: Bool, wasProbe: Bool) {
        let (changed, open) = breaker.withLock { breaker in
            let changed = breaker.record(email: email.lowercased(), outage: outage, wasProbe: wasProbe, now: .now)
            return (changed, breaker.state == .open)
        }
        guard changed else { return }
        metrics.breakerOpen.record(open ? 1 : 0)
        if open {
            metrics.breakerOpenings.increment()
            logger.warning(
                "circuit opened: useapi looks down; pausing calls and fetching, probing",
                metadata: ["breaker.threshold": "\(settings.breakerThreshold)"]
            )
        } else {
            logger.info("circuit closed: useapi answers again; resuming")
        }
        let fetch = state.withLock { $0.setBreakerOpen(open) }
        syncFetching(fetch)
    }

    private func errorResult(_ failure: UseAPIFailure, command: AccountCommand, item: WorkItem, attempts: Int) -> CommandResult {
        let secrets = SecretRedactor(secrets: [command.password, settings.useapiToken])
        return makeResult(item, type: command.type, commandId: command.id, email: command.email) {
            $0.attempts = attempts
            switch failure {
            case .api(let error):
                $0.fail(code: error.statusCode, stage: .api, error: error.error, errorDetails: error.errorDetails, redacting: secrets)
            case .transport(let error):
                $0.fail(
                    code: error.kind == .timeout ? 504 : 502,
                    stage: .transport,
                    error: error.kind == .timeout ? "useapi did not answer within the request timeout" : "no usable answer from useapi",
                    errorDetails: error.message,
                    redacting: secrets
                )
            }
        }
    }

    private func makeResult(
        _ item: WorkItem,
        type: CommandType,
        commandId: String?,
        email: String?,
        _ fill: (inout CommandResult) -> Void
    ) -> CommandResult {
        var result = CommandResult(
            commandId: commandId,
            type: type,
            email: email,
            status: .error,
            code: 0,
            attempts: 0,
            durationMs: 0,
            source: .init(topic: item.message.topic, partition: item.message.partition, offset: item.message.offset),
            worker: settings.workerID,
            processedAt: CommandResult.iso8601(Date())
        )
        fill(&result)
        return result
    }

    private func deadLetter(_ item: WorkItem, topic: String, reason: String) -> KafkaProducerMessage {
        let message = item.message
        let headers =
            message.headers + [
                KafkaHeader(key: "dlq-source-topic", value: message.topic),
                KafkaHeader(key: "dlq-source-partition", value: String(message.partition)),
                KafkaHeader(key: "dlq-source-offset", value: String(message.offset)),
                KafkaHeader(key: "dlq-reason", value: reason),
            ]
        return KafkaProducerMessage(topic: topic, key: message.key, value: message.value, headers: headers)
    }

    /// Publishes until acknowledged. Kafka outages are waited out (the
    /// command's offset cannot be committed before); false when cancelled.
    private func publish(_ message: KafkaProducerMessage, what: String) async -> Bool {
        var delay = Duration.milliseconds(500)
        while !Task.isCancelled {
            do {
                try await producer.send(message)
                return true
            } catch {
                metrics.publishFailures.increment()
                logger.error(
                    "publishing failed; retrying",
                    metadata: ["publish.what": "\(what)", "kafka.topic": "\(message.topic)", "kafka.error.name": "\(error.name)"]
                )
                if error.isFatal { return false }
                try? await Task.sleep(for: delay)
                delay = min(delay * 2, .seconds(30))
            }
        }
        return false
    }
}
