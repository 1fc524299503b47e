import AccountWorker
import AccountWorkerOps
import ArgumentParser
import Foundation
import Kafka
import Logging

/// Shared by the operator commands that read and write topics.
struct OperatorKafka {
    let settings: KafkaConnectionSettings

    init(_ options: KafkaOptions) {
        settings = options.connectionSettings()
    }

    var readerClient: KafkaClientConfiguration {
        var client = KafkaClientConfiguration(bootstrapServers: settings.brokers)
        client.properties = settings.consumerProperties
        return client
    }

    var producerClient: KafkaClientConfiguration {
        var client = KafkaClientConfiguration(bootstrapServers: settings.brokers)
        client.properties = settings.producerProperties
        return client
    }

    static var quietLogger: Logger {
        var logger = Logger(label: "account-worker-ops")
        logger.logLevel = .error
        return logger
    }

    /// A reader (no group joined); a bad Kafka setting exits 2.
    func reader() -> KafkaReader {
        do {
            return try KafkaReader(client: readerClient, logger: Self.quietLogger)
        } catch {
            exitWithConfigurationError(ConfigurationError(kafka: error))
        }
    }

    func producer() -> KafkaProducer {
        do {
            return try KafkaProducer(configuration: KafkaProducerConfiguration(client: producerClient), logger: Self.quietLogger)
        } catch {
            exitWithConfigurationError(ConfigurationError(kafka: error))
        }
    }

    /// `STATUS_TOPIC` (default `runway.accounts.status`); nil when set empty (disabled).
    static var statusTopic: String? {
        guard let raw = ProcessInfo.processInfo.environment["STATUS_TOPIC"] else { return "runway.accounts.status" }
        let trimmed = raw.trimmingCharacters(in: .whitespaces)
        return trimmed.isEmpty ? nil : trimmed
    }
}

/// Writes a line to standard output at once (unbuffered, so a follower
/// piped into another program shows each result as it arrives).
func emit(_ line: String) {
    FileHandle.standardOutput.write(Data((line + "\n").utf8))
}

/// Prints a line to standard error.
func printError(_ line: String) {
    FileHandle.standardError.write(Data((line + "\n").utf8))
}

/// Fails the command with `code` after printing `message` to standard error.
func fail(_ message: String, code: Int32 = 2) -> ExitCode {
    printError("account-worker: \(message)")
    return ExitCode(code)
}

extension KafkaReader {
    /// Each partition's watermarks, as ranges of the offsets kept.
    func keptRanges(_ partitions: [KafkaTopicPartition]) async throws -> [KafkaTopicPartition: Range<Int64>] {
        var ranges: [KafkaTopicPartition: Range<Int64>] = [:]
        for partition in partitions {
            let marks = try await watermarks(partition)
            ranges[partition] = max(0, marks.low)..<max(marks.low, marks.high)
        }
        return ranges
    }

    /// Where to start reading each partition for records from `since` on:
    /// Kafka's offsets-for-times. A partition the broker says has no record
    /// that recent is checked against its last record; if that one is
    /// recent after all (the broker cannot look up by time, as librdkafka's
    /// mock cluster), the partition is read from its start instead.
    func startOffsets(
        since: Date,
        kept: [KafkaTopicPartition: Range<Int64>]
    ) async throws -> [KafkaTopicPartition: (offset: Int64, byTime: Bool)] {
        let found = try await offsets(at: since, for: Array(kept.keys))
        var starts: [KafkaTopicPartition: (offset: Int64, byTime: Bool)] = [:]
        for (partition, range) in kept {
            if let offset = found[partition] ?? nil {
                starts[partition] = (max(offset, range.lowerBound), true)
                continue
            }
            guard !range.isEmpty else {
                starts[partition] = (range.upperBound, true)
                continue
            }
            var lastTimestamp: Int64?
            try await read([partition: (range.upperBound - 1)..<range.upperBound], idleTimeout: .seconds(15)) { message in
                lastTimestamp = message.timestampMilliseconds
            }
            let recent = lastTimestamp.map { Double($0) / 1000 >= since.timeIntervalSince1970 } ?? true
            starts[partition] = recent ? (range.lowerBound, false) : (range.upperBound, true)
        }
        return starts
    }
}
