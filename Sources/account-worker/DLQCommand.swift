import AccountWorker
import AccountWorkerOps
import ArgumentParser
import Foundation
import Kafka

struct DLQCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "dlq",
        abstract: "Inspect and replay the dead-letter topic (DLQ_TOPIC).",
        subcommands: [DLQListCommand.self, DLQReplayCommand.self]
    )
}

struct DLQListCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "list",
        abstract: "List dead letters: partition, offset, time, source topic/partition/offset, reason, key, size.",
        discussion: """
            Values are shown only with --show-values: dead letters hold what the command topic holds, \
            passwords included. Reads partitions directly (no consumer group). Kafka settings as for \
            `run` (KAFKA_BROKERS, KAFKA_CONFIG_*, DLQ_TOPIC).
            """
    )

    @OptionGroup var kafka: KafkaOptions
    @Flag(help: "Also print each value (may contain passwords).") var showValues = false

    func run() async throws {
        let kafka = OperatorKafka(self.kafka)
        guard let topic = kafka.settings.dlqTopic else { throw fail("DLQ_TOPIC is empty (the dead-letter topic is disabled)") }
        let reader = kafka.reader()
        var letters: [DeadLetter] = []
        do {
            let kept = try await reader.keptRanges(try await reader.partitions(of: topic))
            try await reader.read(kept) { letters.append(DeadLetter($0)) }
        } catch {
            await reader.close()
            throw fail("cannot read \(topic): \(error)")
        }
        await reader.close()
        guard !letters.isEmpty else {
            print("the dead-letter topic \(topic) is empty")
            return
        }
        letters.sort { ($0.message.partition, $0.message.offset) < ($1.message.partition, $1.message.offset) }
        print(DeadLetterTable.header)
        for letter in letters {
            print(DeadLetterTable.row(letter))
            if showValues { print(DeadLetterTable.value(letter)) }
        }
        print("\(letters.count) dead letters in \(topic)")
    }
}

struct DLQReplayCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "replay",
        abstract: "Republish dead letters to the command topic.",
        discussion: """
            Each dead letter is published to COMMAND_TOPIC with its original key, value and headers \
            (minus the dlq-* headers) and a dlq-replayed-from header naming it \
            (<dlq topic>/<partition>/<offset>), to the partition it came from when it came from the \
            command topic (so the account's commands stay in one partition). \
            Never twice by accident: the command topic is read first (from shortly before the dead \
            letter was written) and a dead letter already replayed is skipped, unless --force. \
            A dead letter whose value was not kept (dlq-truncated) cannot be replayed; the command \
            then exits 1. Kafka settings as for `run` (KAFKA_BROKERS, KAFKA_CONFIG_*, COMMAND_TOPIC, DLQ_TOPIC).
            """
    )

    @OptionGroup var kafka: KafkaOptions
    @Option(help: "Replay the dead letter at this offset.") var offset: Int64?
    @Option(help: "Its DLQ partition (needed when the DLQ topic has several).") var partition: Int32?
    @Flag(help: "Replay every dead letter kept.") var all = false
    @Flag(help: "Show what would be replayed; publish nothing.") var dryRun = false
    @Flag(help: "Replay even dead letters already replayed.") var force = false

    func validate() throws {
        guard (offset != nil) != all else { throw ValidationError("give --offset N or --all") }
        if partition != nil && offset == nil { throw ValidationError("--partition goes with --offset") }
    }

    func run() async throws {
        let kafka = OperatorKafka(self.kafka)
        guard let dlqTopic = kafka.settings.dlqTopic else { throw fail("DLQ_TOPIC is empty (the dead-letter topic is disabled)") }
        let commandTopic = kafka.settings.commandTopic
        let reader = kafka.reader()
        var letters: [DeadLetter] = []
        var replayed: [String: String] = [:]
        var commandPartitions = 0
        do {
            var kept = try await reader.keptRanges(try await reader.partitions(of: dlqTopic))
            if let offset {
                guard let chosen = partition.map({ KafkaTopicPartition(topic: dlqTopic, partition: $0) }) ?? (kept.count == 1 ? kept.keys.first : nil)
                else {
                    throw fail("\(dlqTopic) has \(kept.count) partitions: give --partition", code: 64)
                }
                guard let range = kept[chosen], range.contains(offset) else {
                    let range = kept[chosen].map { $0.isEmpty ? "none is kept" : "kept: \($0.lowerBound)-\($0.upperBound - 1)" } ?? "no such partition"
                    throw fail("\(chosen) has no offset \(offset) (\(range))", code: 1)
                }
                kept = [chosen: offset..<(offset + 1)]
            }
            try await reader.read(kept) { letters.append(DeadLetter($0)) }
            letters.sort { ($0.message.partition, $0.message.offset) < ($1.message.partition, $1.message.offset) }
            guard !letters.isEmpty else {
                print("the dead-letter topic \(dlqTopic) is empty: nothing to replay")
                await reader.close()
                return
            }
            // A replay is published after its dead letter: read the command
            // topic from an hour (clock skew) before the oldest one.
            let oldest = letters.compactMap(\.message.timestampMilliseconds).min().map { Date(timeIntervalSince1970: Double($0) / 1000 - 3_600) }
            let commandKept = try await reader.keptRanges(try await reader.partitions(of: commandTopic))
            commandPartitions = commandKept.count
            var ranges = commandKept
            if let oldest {
                for (partition, start) in try await reader.startOffsets(since: oldest, kept: commandKept) {
                    ranges[partition] = start.offset..<commandKept[partition]!.upperBound
                }
            }
            try await reader.read(ranges) { message in
                if let from = message.headers.string(for: DeadLetter.replayedFromHeader) {
                    replayed[from] = "\(message.topicPartition)@\(message.offset)"
                }
            }
        } catch let exit as ExitCode {
            await reader.close()
            throw exit
        } catch {
            await reader.close()
            throw fail("cannot read \(dlqTopic) or \(commandTopic): \(error)")
        }
        await reader.close()

        let producer = dryRun ? nil : kafka.producer()
        var published = 0
        var skipped = 0
        var impossible = 0
        for letter in letters {
            let name = "\(letter.message.topicPartition)@\(letter.message.offset)"
            let sourcePartition = letter.sourceTopic == commandTopic ? letter.sourcePartition.flatMap { $0 < commandPartitions ? $0 : nil } : nil
            guard let record = letter.replay(to: commandTopic, partition: sourcePartition) else {
                print("\(name): cannot be replayed: the worker kept no value (dlq-truncated: it was too large for Kafka)")
                impossible += 1
                continue
            }
            if let previous = replayed[letter.reference], !force {
                print("\(name): skipped, already replayed as \(previous) (--force replays it again)")
                skipped += 1
                continue
            }
            let target = "\(commandTopic)[\(sourcePartition.map(String.init) ?? "by key")]"
            guard let producer else {
                print("\(name): would be replayed to \(target) (\(record.value?.count ?? 0) B)")
                published += 1
                continue
            }
            do {
                let report = try await producer.send(record)
                print("\(name): replayed as \(report.topic)[\(report.partition)]@\(report.offset)")
                published += 1
            } catch {
                await producer.close()
                throw fail("\(name): replay failed: \(error)", code: 1)
            }
        }
        await producer?.close()
        print("\(dryRun ? "would replay" : "replayed") \(published), skipped \(skipped) already replayed, \(impossible) cannot be replayed")
        if impossible > 0 { throw ExitCode(1) }
    }
}
