import AccountWorker
import AccountWorkerOps
import ArgumentParser
import Foundation
import Kafka
import Logging

struct ResultsCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "results",
        abstract: "Follow the result topic as a table or JSON lines.",
        discussion: """
            Reads without joining the workers' group. --from now (default) shows new results, \
            --from beginning everything kept, --from 2026-11-29T10:00:00Z results since then. \
            --expiring reads everything and lists accounts by JWT expiry, soonest first, then exits. \
            Kafka settings as for `run` (KAFKA_BROKERS, KAFKA_CONFIG_*, RESULT_TOPIC).
            """
    )

    enum Format: String, ExpressibleByArgument, CaseIterable {
        case table
        case json
    }

    @OptionGroup var kafka: KafkaOptions
    @Option(help: "now, beginning, or an ISO-8601 time.") var from = "now"
    @Option(help: "table or json.") var format = Format.table
    @Option(help: "Only results with this status (ok or error).") var status: String?
    @Option(help: "Only results for this email.") var email: String?
    @Option(help: "Only results with this code.") var code: Int?
    @Flag(help: "List accounts by JWT expiry, soonest first, and exit.") var expiring = false
    @Flag(help: "Exit once caught up with the end of the topic.") var exitAtEnd = false
    @Option(help: "Exit after this many matching results.") var limit: Int?

    func run() async throws {
        let kafkaSettings = kafka.connectionSettings()
        var since: Date?
        switch from {
        case "now", "beginning": break
        default:
            let formatter = ISO8601DateFormatter()
            guard let date = formatter.date(from: from) else { throw ValidationError("--from must be now, beginning or an ISO-8601 time") }
            since = date
        }
        let filter = ResultFilter(status: status, email: email, code: code)

        var logger = Logger(label: "account-worker-results")
        logger.logLevel = .error
        var configuration = KafkaConsumerConfiguration(
            client: kafkaSettings.client,
            groupID: "account-worker-results-\(UUID().uuidString.prefix(8))",
            topics: [kafkaSettings.resultTopic]
        )
        configuration.autoOffsetReset = (from == "now" && !expiring) ? .latest : .earliest
        configuration.reportEndOfPartition = true
        let consumer: KafkaConsumer
        do {
            consumer = try KafkaConsumer(configuration: configuration, logger: logger)
        } catch {
            exitWithConfigurationError(ConfigurationError(kafka: error))
        }

        if format == .table && !expiring { print(ResultTable.header) }
        var report = ExpiringReport()
        var shown = 0
        var assigned: Set<KafkaTopicPartition> = []
        var atEnd: Set<KafkaTopicPartition> = []
        let stopAtEnd = exitAtEnd || expiring
        loop: for try await event in consumer.events {
            switch event {
            case .partitionsAssigned(let partitions):
                assigned.formUnion(partitions)
            case .partitionsRevoked(let partitions, _):
                assigned.subtract(partitions)
            case .endOfPartition(let partition, _):
                atEnd.insert(partition)
                if stopAtEnd, !assigned.isEmpty, assigned.isSubset(of: atEnd) { break loop }
            case .message(let message):
                atEnd.remove(message.topicPartition)
                if let since, let timestamp = message.timestampMilliseconds, Double(timestamp) / 1000 < since.timeIntervalSince1970 {
                    continue
                }
                guard let result = ResultView.decode(message.value ?? []), filter.matches(result) else { continue }
                if expiring {
                    report.add(result)
                    continue
                }
                print(format == .json ? String(decoding: message.value ?? [], as: UTF8.self) : ResultTable.row(result))
                shown += 1
                if let limit, shown >= limit { break loop }
            }
        }
        if expiring {
            if format == .table { print(ResultTable.header) }
            for result in report.soonestFirst {
                if format == .json {
                    let line = try JSONEncoder().encode(["email": result.email ?? "", "jwtExpiresAt": result.jwtExpiresAt ?? ""])
                    print(String(decoding: line, as: UTF8.self))
                } else {
                    print(ResultTable.row(result))
                }
            }
        }
        await consumer.close()
    }
}
