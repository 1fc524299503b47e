import AccountWorkerOps
import ArgumentParser
import Foundation

struct DemoCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "demo",
        abstract: "Runs the whole system in one process: mock Kafka, the useapi simulator, the worker, and sample commands.",
        discussion: """
            Publishes about 30 realistic commands (new accounts, updates, deletes, invalid ones, \
            a wrong password, a suspended account, an account in error state, a flaky and a \
            rate-limited one) and shows each result as it arrives, then a summary. Needs no \
            Kafka and no useapi token.
            """
    )

    @Option(help: "Number of commands (the sample set has 30; more adds new accounts).") var count = 30
    @Option(help: "Simulated useapi latency in milliseconds.") var latencyMs = 150
    @Flag(help: "Print results as JSON lines instead of a table.") var json = false

    func validate() throws {
        guard (1...100_000).contains(count) else { throw ValidationError("--count must be from 1 to 100000") }
        guard (0...60_000).contains(latencyMs) else { throw ValidationError("--latency-ms must be from 0 to 60000") }
    }

    func run() async throws {
        var options = Demo.Options()
        options.count = count
        options.latencyMs = latencyMs
        options.json = json
        do {
            _ = try await Demo.run(options) { line in
                FileHandle.standardOutput.write(Data((line + "\n").utf8))
            }
        } catch {
            FileHandle.standardError.write(Data("account-worker demo: \(error)\n".utf8))
            throw ExitCode.failure
        }
    }
}
