@testable import AccountWorker
import Foundation
import Kafka
import Logging
import StrictJSON
import Synchronization
import UseAPISimulator

let e2eToken = "user:4242-EndToEndToken987"

struct E2ETimeout: Error, CustomStringConvertible {
    var description: String
}

/// The built `account-worker` binary: next to the test bundle, or `ACCOUNT_WORKER_BIN`.
func workerBinary() -> URL {
    if let path = ProcessInfo.processInfo.environment["ACCOUNT_WORKER_BIN"] {
        return URL(fileURLWithPath: path)
    }
    let testBundleDirectory = URL(fileURLWithPath: CommandLine.arguments[0]).deletingLastPathComponent()
    let sibling = testBundleDirectory.appendingPathComponent("account-worker")
    if FileManager.default.isExecutableFile(atPath: sibling.path) { return sibling }
    return URL(fileURLWithPath: #filePath)
        .deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()
        .appendingPathComponent(".build/debug/account-worker")
}

/// Starts `process`, one launch at a time in this test process: Foundation's
/// `Process.run()` on Linux crashed (a memmove in its spawn setup) when tests
/// running in parallel launched children at the same moment.
func launch(_ process: Process) throws {
    try processLaunches.withLock { _ in try process.run() }
}

private let processLaunches = Mutex(())

/// A running `account-worker` child process with its output in a file.
final class WorkerProcess: @unchecked Sendable {
    let process = Process()
    let outputURL: URL

    init(arguments: [String], environment: [String: String], input: String? = nil) throws {
        outputURL = FileManager.default.temporaryDirectory.appendingPathComponent("worker-\(UUID().uuidString).log")
        _ = FileManager.default.createFile(atPath: outputURL.path, contents: nil)
        let output = try FileHandle(forWritingTo: outputURL)
        process.executableURL = workerBinary()
        process.arguments = arguments
        var env = ProcessInfo.processInfo.environment.filter { !$0.key.hasPrefix("KAFKA_") && !$0.key.hasPrefix("USEAPI_") }
        env.merge(environment) { $1 }
        process.environment = env
        process.standardOutput = output
        process.standardError = output
        let stdin = Pipe()
        process.standardInput = stdin
        try launch(process)
        if let input { stdin.fileHandleForWriting.write(Data(input.utf8)) }
        try stdin.fileHandleForWriting.close()
    }

    var output: String { (try? String(contentsOf: outputURL, encoding: .utf8)) ?? "" }

    func signal(_ signal: Int32) { kill(process.processIdentifier, signal) }

    /// Waits for the process to exit, at most `timeout`; returns its status.
    func waitForExit(timeout: Duration) async throws -> Int32 {
        let deadline = ContinuousClock.now + timeout
        while process.isRunning {
            guard ContinuousClock.now < deadline else {
                process.terminate()
                throw E2ETimeout(description: "the worker did not exit within \(timeout)")
            }
            try await Task.sleep(for: .milliseconds(50))
        }
        return process.terminationStatus
    }

    deinit {
        if process.isRunning { kill(process.processIdentifier, SIGKILL) }
        try? FileManager.default.removeItem(at: outputURL)
    }
}

/// A mock cluster and a simulator in this process; the worker runs as a child.
final class BinaryHarness: Sendable {
    let cluster: KafkaMockCluster
    let simulator: UseAPISimulator
    private let simulatorTask: Task<Void, any Error>
    let commandTopic: String
    let resultTopic: String
    let dlqTopic: String
    let group: String

    init(partitions: Int = 3, faults: [SimulatedFault] = []) throws {
        var quiet = Logger(label: "e2e")
        quiet.logLevel = .critical
        cluster = try KafkaMockCluster(brokers: 1, logger: quiet)
        let suffix = UUID().uuidString.prefix(8)
        commandTopic = "commands-\(suffix)"
        resultTopic = "results-\(suffix)"
        dlqTopic = "dlq-\(suffix)"
        group = "workers-\(suffix)"
        try cluster.createTopic(commandTopic, partitions: partitions)
        try cluster.createTopic(resultTopic, partitions: 1)
        try cluster.createTopic(dlqTopic, partitions: 1)
        var configuration = UseAPISimulatorConfiguration(token: e2eToken)
        configuration.faults = faults
        let simulator = UseAPISimulator(configuration: configuration, logger: quiet)
        self.simulator = simulator
        simulatorTask = Task { try await simulator.run() }
    }

    func environment(workerID: String, _ extra: [String: String] = [:]) async -> [String: String] {
        [
            "KAFKA_BROKERS": cluster.bootstrapServers,
            "KAFKA_GROUP_ID": group,
            "COMMAND_TOPIC": commandTopic,
            "RESULT_TOPIC": resultTopic,
            "DLQ_TOPIC": dlqTopic,
            "USEAPI_BASE_URL": await simulator.baseURL(),
            "USEAPI_TOKEN": e2eToken,
            "WORKER_ID": workerID,
            "HTTP_PORT": "0",
            "SHUTDOWN_TIMEOUT_MS": "10000",
            "KAFKA_CONFIG_SESSION_TIMEOUT_MS": "6000",
            "KAFKA_CONFIG_HEARTBEAT_INTERVAL_MS": "300",
            "KAFKA_CONFIG_FETCH_WAIT_MAX_MS": "50",
        ].merging(extra) { $1 }
    }

    func startWorker(workerID: String, _ extra: [String: String] = [:]) async throws -> WorkerProcess {
        try WorkerProcess(arguments: ["run"], environment: await environment(workerID: workerID, extra))
    }

    func shutdown() async {
        simulatorTask.cancel()
        _ = await simulatorTask.result
    }
}

/// Runs kcat (an independent Kafka client) and returns its standard output.
@discardableResult
func kcat(_ arguments: [String], input: String? = nil, timeout: Duration = .seconds(30)) async throws -> String {
    let process = Process()
    process.executableURL = URL(fileURLWithPath: "/usr/bin/kcat")
    process.arguments = arguments
    let stdout = Pipe()
    let stdin = Pipe()
    process.standardOutput = stdout
    process.standardInput = stdin
    process.standardError = FileHandle.nullDevice
    try launch(process)
    if let input { stdin.fileHandleForWriting.write(Data(input.utf8)) }
    try stdin.fileHandleForWriting.close()
    let reader = Task.detached { stdout.fileHandleForReading.readDataToEndOfFile() }
    let deadline = ContinuousClock.now + timeout
    while process.isRunning {
        guard ContinuousClock.now < deadline else {
            process.terminate()
            throw E2ETimeout(description: "kcat \(arguments.joined(separator: " ")) did not finish")
        }
        try await Task.sleep(for: .milliseconds(20))
    }
    return String(decoding: await reader.value, as: UTF8.self)
}

/// One message as kcat -J prints it.
struct KcatMessage: Decodable {
    var topic: String
    var partition: Int
    var offset: Int
    var key: String?
    var payload: String?
    var headers: [String]?

    var json: TestValue {
        (try? JSONParser().parse(Array((payload ?? "").utf8))) ?? .null
    }

    func header(_ name: String) -> String? {
        guard let headers else { return nil }
        var index = 0
        while index + 1 < headers.count {
            if headers[index] == name { return headers[index + 1] }
            index += 2
        }
        return nil
    }
}

/// Result fields are decoded with the worker's own strict JSON parser.
typealias TestValue = JSONValue

/// Reads every message of `topic` so far with kcat.
func readAll(_ harness: BinaryHarness, topic: String) async throws -> [KcatMessage] {
    let output = try await kcat(["-b", harness.cluster.bootstrapServers, "-C", "-t", topic, "-o", "beginning", "-e", "-J", "-q"])
    return output.split(separator: "\n").compactMap { try? JSONDecoder().decode(KcatMessage.self, from: Data($0.utf8)) }
}

/// Produces JSON lines keyed by email with kcat (`key<TAB>value` per line).
func produce(_ harness: BinaryHarness, _ lines: [(key: String, value: String)]) async throws {
    let input = lines.map { "\($0.key)\t\($0.value)" }.joined(separator: "\n") + "\n"
    try await kcat(["-b", harness.cluster.bootstrapServers, "-P", "-t", harness.commandTopic, "-K", "\t"], input: input)
}

func waitForResults(_ harness: BinaryHarness, ids: Set<String>, timeout: Duration = .seconds(90)) async throws -> [KcatMessage] {
    let deadline = ContinuousClock.now + timeout
    while true {
        let results = try await readAll(harness, topic: harness.resultTopic)
        let seen = Set(results.compactMap { $0.json["commandId"]?.string })
        if ids.isSubset(of: seen) { return results }
        guard ContinuousClock.now < deadline else {
            throw E2ETimeout(description: "\(ids.subtracting(seen).count) of \(ids.count) commands have no result")
        }
        try await Task.sleep(for: .milliseconds(300))
    }
}
