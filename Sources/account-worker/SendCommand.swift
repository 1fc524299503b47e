import AccountWorker
import AccountWorkerOps
import ArgumentParser
import Foundation
import Kafka
import Logging

struct SendCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "send",
        abstract: "Publish account commands to the command topic; prints their ids.",
        discussion: """
            From flags: --email and --max-jobs, with the password read from --password-file or, \
            with --password-stdin, from standard input (never from an argument: arguments are \
            visible to every user of the machine). Or --jsonl: one JSON command per line on \
            standard input, each keyed by its email; an id is added when missing. Commands are \
            checked with the worker's own validation first (--no-validate sends them anyway). \
            Kafka settings as for `run` (KAFKA_BROKERS, KAFKA_CONFIG_*, COMMAND_TOPIC).
            """
    )

    @OptionGroup var kafka: KafkaOptions
    @Option(help: "Account email.") var email: String?
    @Option(help: "Runway maxJobs, 1-10 (upserts).") var maxJobs: Int?
    @Option(help: "account.upsert or account.delete.") var type = "account.upsert"
    @Option(help: "Command id (default: a new UUID).") var id: String?
    @Option(help: "File holding the Runway password (upserts).") var passwordFile: String?
    @Flag(help: "Read the password from standard input (upserts).") var passwordStdin = false
    @Option(help: "useWorkspace: true, false or a team id.") var useWorkspace: String?
    @Flag(help: "Read JSON commands from standard input, one per line.") var jsonl = false
    @Flag(name: .customLong("no-validate"), help: "Publish commands even if the worker would reject them.") var noValidate = false

    func run() async throws {
        let kafkaSettings = kafka.connectionSettings()
        var commands: [CommandBuilder.Built] = []
        do {
            if jsonl {
                var number = 0
                while let line = readLine(strippingNewline: true) {
                    number += 1
                    guard !line.trimmingCharacters(in: .whitespaces).isEmpty else { continue }
                    do {
                        commands.append(try CommandBuilder.fromJSONLine(line, validate: !noValidate))
                    } catch {
                        usageError("line \(number) of standard input: invalid command: \(error) (nothing was sent)")
                    }
                }
            } else {
                guard let email else { usageError("give --email (or --jsonl)") }
                guard let commandType = CommandType(rawValue: type) else {
                    usageError("--type must be account.upsert or account.delete")
                }
                var password: String?
                if commandType == .upsert {
                    if let passwordFile {
                        password = try WorkerSettings.readSecretFile(passwordFile).trimmingCharacters(in: .newlines)
                    } else if passwordStdin {
                        password = readLine(strippingNewline: true)
                    } else {
                        usageError("an upsert needs --password-file or --password-stdin")
                    }
                }
                commands.append(
                    try CommandBuilder.fromFields(
                        id: id,
                        type: commandType,
                        email: email,
                        password: password,
                        maxJobs: maxJobs,
                        useWorkspace: useWorkspace
                    )
                )
            }
        } catch let invalid as CommandBuilder.Invalid {
            usageError("invalid command: \(invalid)")
        }

        var logger = Logger(label: "account-worker-send")
        logger.logLevel = .error
        let producer: KafkaProducer
        do {
            producer = try KafkaProducer(configuration: KafkaProducerConfiguration(client: kafkaSettings.client), logger: logger)
        } catch {
            exitWithConfigurationError(ConfigurationError(kafka: error))
        }
        for command in commands {
            try await producer.send(topic: kafkaSettings.commandTopic, key: Array(command.key.utf8), value: command.value)
            print(command.id)
        }
        await producer.close()
    }
}

/// Reports a mistake in `send`'s input with `send`'s own usage, and exits 64
/// (EX_USAGE, as for a bad flag).
private func usageError(_ message: String) -> Never {
    let help = AccountWorkerCommand.helpMessage(for: SendCommand.self)
    let usage = help.components(separatedBy: "\n\n").first { $0.hasPrefix("USAGE:") } ?? "USAGE: account-worker send"
    FileHandle.standardError.write(Data("Error: \(message)\n\n\(usage)\n\n  See 'account-worker send --help' for more information.\n".utf8))
    exit(64)
}
