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
    @Option(
        help: """
            A named pipe (created if missing) read for fault commands, one per line:             `broker-down ID`, `broker-up ID`, `produce-errors COUNT NAME` (NAME: not-leader,             timed-out, too-large, out-of-order). For chaos tests.
            """
    )
    var controlFifo: String?

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
        if let controlFifo {
            if !FileManager.default.fileExists(atPath: controlFifo), mkfifo(controlFifo, 0o600) != 0 {
                throw ValidationError("cannot create the named pipe \(controlFifo)")
            }
            // Reading a pipe blocks: a thread of its own, never the cooperative pool.
            let controlLogger = logger
            let thread = Thread { readControlCommands(path: controlFifo, cluster: cluster, logger: controlLogger) }
            thread.name = "dev-kafka-control"
            thread.start()
        }
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

/// Applies fault commands from a named pipe to the mock cluster, for ever
/// (a writer closing the pipe is followed by the next one opening it).
private func readControlCommands(path: String, cluster: KafkaMockCluster, logger: Logger) {
    let codes: [String: KafkaError.Code] = [
        "not-leader": .notLeaderForPartition, "timed-out": .requestTimedOut, "too-large": .messageSizeTooLarge,
        "out-of-order": .outOfOrderSequenceNumber,
    ]
    while true {
        guard let file = fopen(path, "r") else { return }
        var line: UnsafeMutablePointer<CChar>?
        var capacity = 0
        while getline(&line, &capacity, file) > 0, let line {
            let words = String(cString: line).split(whereSeparator: \.isWhitespace).map(String.init)
            do {
                switch (words.first, words.count) {
                case ("broker-down", 2): try cluster.setBrokerDown(Int32(words[1]) ?? 1)
                case ("broker-up", 2): try cluster.setBrokerUp(Int32(words[1]) ?? 1)
                case ("produce-errors", 3):
                    guard let count = Int(words[1]), (1...1000).contains(count), let code = codes[words[2]] else { fallthrough }
                    cluster.pushRequestErrors(.produce, Array(repeating: code, count: count))
                default:
                    logger.warning("dev-kafka: unknown control command", metadata: ["command": "\(words.joined(separator: " ").prefix(80))"])
                }
            } catch {
                logger.warning("dev-kafka: control command failed", metadata: ["error": "\(error)"])
            }
        }
        free(line)
        fclose(file)
    }
}
