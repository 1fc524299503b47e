import ArgumentParser
import Foundation
import Kafka
import Logging
import ServiceLifecycle
import UnixSignals

struct DevKafkaCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "dev-kafka",
        abstract: "Runs librdkafka's mock Kafka cluster for local development, until Ctrl-C.",
        discussion: """
            The brokers speak the real Kafka protocol on loopback ports, so any client (kcat, \
            account-worker run, your producer) can connect to the printed bootstrap servers. \
            Everything is kept in memory and lost on exit.
            """
    )

    @Option(help: "Number of brokers.") var brokers = 1
    @Option(help: "Partitions of each created topic.") var partitions = 3
    @Option(help: "Topics to create (comma-separated).")
    var topics = "runway.accounts.commands,runway.accounts.results,runway.accounts.dlq"
    @Option(help: "Write the bootstrap servers to this file too (for scripts).") var bootstrapFile: String?

    func validate() throws {
        guard (1...16).contains(brokers) else { throw ValidationError("--brokers must be from 1 to 16") }
        guard (1...1000).contains(partitions) else { throw ValidationError("--partitions must be from 1 to 1000") }
    }

    func run() async throws {
        var logger = Logger(label: "dev-kafka")
        logger.logLevel = .warning
        let cluster = try KafkaMockCluster(brokers: brokers, logger: logger)
        for topic in topics.split(separator: ",").map({ $0.trimmingCharacters(in: .whitespaces) }) where !topic.isEmpty {
            try cluster.createTopic(topic, partitions: partitions)
        }
        if let bootstrapFile {
            try cluster.bootstrapServers.write(toFile: bootstrapFile, atomically: true, encoding: .utf8)
        }
        FileHandle.standardOutput.write(Data("\(cluster.bootstrapServers)\n".utf8))
        let group = ServiceGroup(
            configuration: .init(
                services: [MockClusterService(cluster: cluster)],
                gracefulShutdownSignals: [.sigterm, .sigint],
                logger: logger
            )
        )
        try await group.run()
    }
}

/// Keeps the mock cluster alive until the service group shuts down.
struct MockClusterService: Service {
    let cluster: KafkaMockCluster

    func run() async throws {
        try? await gracefulShutdown()
        withExtendedLifetime(cluster) {}
    }
}
