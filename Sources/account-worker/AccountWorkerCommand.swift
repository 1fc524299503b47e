import AccountWorker
import ArgumentParser

@main
struct AccountWorkerCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "account-worker",
        abstract: "Applies Runway account-configuration commands from Kafka to useapi.net.",
        version: accountWorkerVersion,
        subcommands: [
            RunCommand.self, DemoCommand.self, SendCommand.self, ResultsCommand.self, DLQCommand.self, DevKafkaCommand.self,
            SimulateUseAPICommand.self,
        ]
    )
}
