import Foundation
import Kafka
import UseAPI

extension CommandResult {
    /// A result for the command consumed as `item`, before its outcome is filled in.
    init(item: WorkItem, type: CommandType, commandId: String?, email: String?, worker: String) {
        self.init(
            commandId: commandId,
            type: type,
            email: email,
            status: .error,
            code: 0,
            attempts: 0,
            durationMs: 0,
            source: .init(topic: item.message.topic, partition: item.message.partition, offset: item.message.offset),
            worker: worker,
            processedAt: Self.iso8601(Date())
        )
    }

    /// The result of a command that broke a rule: 400 (413 when too large),
    /// `stage: validation`, no call made.
    static func rejected(_ rejection: CommandRejection, item: WorkItem, worker: String, token: String) -> CommandResult {
        var result = CommandResult(item: item, type: rejection.type, commandId: rejection.commandId, email: rejection.email, worker: worker)
        result.fail(
            code: rejection.code,
            stage: .validation,
            error: rejection.message,
            errorDetails: rejection.field.map { "field: \($0)" },
            redacting: SecretRedactor(secrets: [token])
        )
        return result
    }

    /// The result of a command's calls. Error texts are masked for the
    /// command's password and the API token, and cut.
    static func executed(
        _ execution: CommandExecution,
        command: AccountCommand,
        item: WorkItem,
        worker: String,
        token: String
    ) -> CommandResult {
        var result = CommandResult(item: item, type: command.type, commandId: command.id, email: command.email, worker: worker)
        result.attempts = execution.attempts
        switch execution.outcome {
        case .upserted(let account):
            result.status = .ok
            result.code = account.statusCode
            // useapi's value when it is a valid one, else what was sent.
            result.maxJobs = account.maxJobs.flatMap { (1...10).contains($0) ? $0 : nil } ?? command.maxJobs
            if let jwt = account.jwt {
                // An id is useapi's text too: masked and cut like its error texts.
                var id = jwt.id
                if case .string(let text)? = id {
                    id = .string(cut(SecretRedactor(secrets: [command.password, token]).redact(text)))
                }
                result.setJWT(exp: jwt.exp, iat: jwt.iat, id: id)
            }
        case .deleted(let statusCode):
            result.status = .ok
            result.code = statusCode
        case .failed(let failure):
            let secrets = SecretRedactor(secrets: [command.password, token])
            switch failure {
            case .api(let error):
                result.fail(code: error.statusCode, stage: .api, error: error.error, errorDetails: error.errorDetails, redacting: secrets)
            case .transport(let error):
                result.fail(
                    code: error.kind == .timeout ? 504 : 502,
                    stage: .transport,
                    error: error.kind == .timeout ? "useapi did not answer within the request timeout" : "no usable answer from useapi",
                    errorDetails: error.message,
                    redacting: secrets
                )
            }
        }
        return result
    }
}
