import AccountWorker
import AccountWorkerOps
import ArgumentParser
import Foundation
import Kafka

struct ResultsCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "results",
        abstract: "Follow the result topic as a table or JSON lines; --expiring lists accounts whose JWT expires soon.",
        discussion: """
            Reads partitions directly, like kcat: no consumer group is joined and nothing is committed \
            (read access to the topics is enough). --from now (default) shows new results, --from \
            beginning everything kept, --from 1h (or 30m, 2d) the last hour, --from \
            2026-11-29T10:00:00Z results since then: the start is looked up by time (Kafka's \
            offsets-for-times), not found by scanning.

            --expiring reads the compacted account status topic (STATUS_TOPIC, default \
            runway.accounts.status): the latest state of every account, whatever the result \
            topic's retention. It lists the accounts whose JWT expires within --within (default \
            7d), soonest first, and exits 1 when there is one, 0 when there is none (an empty \
            status topic included), 2 when the topic cannot be read: fit for a CronJob. \
            Kafka settings as for `run` (KAFKA_BROKERS, KAFKA_CONFIG_*, RESULT_TOPIC).
            """
    )

    enum Format: String, ExpressibleByArgument, CaseIterable {
        case table
        case json
    }

    @OptionGroup var kafka: KafkaOptions
    @Option(help: "now, beginning, a duration back from now (1h, 30m, 2d) or an ISO-8601 time.") var from = "now"
    @Option(help: "table or json.") var format = Format.table
    @Option(help: "Only results with this status (ok or error).") var status: String?
    @Option(help: "Only results for this email.") var email: String?
    @Option(help: "Only results with this code.") var code: Int?
    @Flag(help: "List accounts whose JWT expires within --within (from the status topic); exit 1 if any.") var expiring = false
    @Option(help: "With --expiring: the window, e.g. 12h, 7d, 30d.") var within = "7d"
    @Flag(help: "Exit once caught up with the end of the topic.") var exitAtEnd = false
    @Option(help: "Exit after this many matching results.") var limit: Int?

    func validate() throws {
        if !["now", "beginning"].contains(from), OperatorTime.instant(from) == nil {
            throw ValidationError("--from must be now, beginning, a duration such as 1h or 2d, or an ISO-8601 time such as 2026-11-29T10:00:00Z")
        }
        if OperatorTime.duration(within) == nil { throw ValidationError("--within must be a duration such as 12h or 7d") }
        if let limit, limit < 1 { throw ValidationError("--limit must be at least 1") }
    }

    func run() async throws {
        let kafka = OperatorKafka(self.kafka)
        let reader = kafka.reader()
        defer { withExtendedLifetime(reader) {} }
        if expiring {
            let code = await listExpiring(reader)
            await reader.close()
            throw ExitCode(code)
        }
        do {
            try await follow(reader, topic: kafka.settings.resultTopic)
        } catch let exit as ExitCode {
            throw exit
        } catch {
            await reader.close()
            throw fail("cannot read \(kafka.settings.resultTopic): \(error)")
        }
        await reader.close()
    }

    private func follow(_ reader: KafkaReader, topic: String) async throws {
        let partitions = try await reader.partitions(of: topic)
        let kept = try await reader.keptRanges(partitions)
        var starts: [KafkaTopicPartition: Int64] = [:]
        var since: Date?
        switch from {
        case "now": starts = kept.mapValues(\.upperBound)
        case "beginning": starts = kept.mapValues(\.lowerBound)
        default:
            let time = OperatorTime.instant(from)!
            since = time
            for (partition, start) in try await reader.startOffsets(since: time, kept: kept) {
                starts[partition] = start.offset
                let how = start.byTime ? "the first record at or after \(OperatorTime.format(time)) UTC" : "its start: the broker cannot look up by time"
                printError("reading \(partition) from offset \(start.offset) (\(how))")
            }
        }
        var pending = Set(partitions.filter { starts[$0, default: 0] < kept[$0]!.upperBound })
        if exitAtEnd && pending.isEmpty { return }
        if format == .table { emit(ResultTable.header) }
        try await reader.assign(starts.mapValues { Optional($0) })
        let filter = ResultFilter(status: status, email: email, code: code)
        var shown = 0
        while true {
            switch try await reader.next(timeout: .milliseconds(500)) {
            case nil, .error:
                continue
            case .endOfPartition(let partition, _):
                pending.remove(partition)
            case .message(let message):
                if message.offset + 1 >= kept[message.topicPartition]?.upperBound ?? .max { pending.remove(message.topicPartition) }
                let early = since.map { time in message.timestampMilliseconds.map { Double($0) / 1000 < time.timeIntervalSince1970 } ?? false }
                if early != true, let result = ResultView.decode(message.value ?? []), filter.matches(result) {
                    emit(format == .json ? String(decoding: message.value ?? [], as: UTF8.self) : ResultTable.row(result))
                    shown += 1
                    if let limit, shown >= limit { return }
                }
            }
            if exitAtEnd && pending.isEmpty { return }
        }
    }

    /// 0: nothing expires within the window; 1: something does; 2: cannot tell.
    private func listExpiring(_ reader: KafkaReader) async -> Int32 {
        guard let topic = OperatorKafka.statusTopic else {
            printError("account-worker: --expiring reads the account status topic, and STATUS_TOPIC is empty (disabled)")
            return 2
        }
        let window = OperatorTime.duration(within)!
        var report = AccountStatusReport()
        do {
            let partitions = try await reader.partitions(of: topic)
            let kept = try await reader.keptRanges(partitions)
            try await reader.read(kept) { message in report.add(key: message.key, value: message.value) }
        } catch {
            printError("account-worker: cannot read the account status topic \(topic): \(error)")
            return 2
        }
        let now = Date()
        let expiring = report.expiring(before: now.addingTimeInterval(window))
        if format == .json {
            for entry in expiring {
                let object: [String: Any] = [
                    "email": entry.status.email ?? entry.key, "jwtExpiresAt": OperatorTime.iso8601(entry.expiresAt) ?? NSNull(),
                    "expiresInSeconds": OperatorTime.secondsUntil(entry.expiresAt, from: now), "commandId": entry.status.commandId ?? NSNull(),
                ]
                if let data = try? JSONSerialization.data(withJSONObject: object, options: [.sortedKeys, .withoutEscapingSlashes]) {
                    emit(String(decoding: data, as: UTF8.self))
                }
            }
            return expiring.isEmpty ? 0 : 1
        }
        guard report.accounts > 0 else {
            emit("the account status topic \(topic) is empty: no account is known, none expires")
            return 0
        }
        if expiring.isEmpty {
            let soonest = report.withExpiry.first.map { "; the soonest, \($0.status.email ?? $0.key), \(ResultTable.relative($0.expiresAt.timeIntervalSince(now)))" } ?? ""
            emit("no JWT expires within \(within) (\(report.accounts) accounts known\(soonest))")
            return 0
        }
        emit(ExpiringTable.header)
        for entry in expiring { emit(ExpiringTable.row(entry, now: now)) }
        let failing = report.failing > 0 ? "; \(report.failing) whose latest command failed have no known expiry" : ""
        emit("\(expiring.count) of \(report.accounts) accounts expire within \(within)\(failing)")
        return 1
    }
}
