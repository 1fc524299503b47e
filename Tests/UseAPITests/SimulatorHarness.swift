import AsyncHTTPClient
import Foundation
import Logging
import Synchronization
import TestSupport
import UseAPI
import UseAPISimulator

let testToken = "user:12345-AbCdEf0123456789"

/// Runs a fresh simulator on a free port and a client pointed at it.
func withSimulator(
    faults: [SimulatedFault] = [],
    accounts: [String: SimulatedAccountBehavior] = [:],
    clientToken: String = testToken,
    requestTimeout: Duration = .seconds(5),
    maxResponseBytes: Int = 1 << 20,
    logs: LogCapture = LogCapture(),
    _ body: (UseAPISimulator, UseAPIClient) async throws -> Void
) async throws {
    var configuration = UseAPISimulatorConfiguration(token: testToken)
    configuration.faults = faults
    configuration.accounts = accounts
    var simulatorLogger = Logger(label: "simulator")
    simulatorLogger.logLevel = .critical
    let simulator = UseAPISimulator(configuration: configuration, logger: simulatorLogger)
    let server = Task { try await simulator.run() }
    let httpClient = UseAPIClient.makeHTTPClient(maxConnectionsPerHost: 8)
    var clientConfiguration = UseAPIConfiguration(baseURL: await simulator.baseURL(), token: clientToken)
    clientConfiguration.version = "test"
    clientConfiguration.requestTimeout = requestTimeout
    clientConfiguration.maxResponseBytes = maxResponseBytes
    let client = UseAPIClient(configuration: clientConfiguration, httpClient: httpClient, logger: logs.logger())
    do {
        try await body(simulator, client)
    } catch {
        server.cancel()
        try? await httpClient.shutdown()
        throw error
    }
    server.cancel()
    try await httpClient.shutdown()
}

/// Runs `body` and returns the useapi failure it threw.
func failure(_ body: () async throws -> Void) async -> UseAPIFailure? {
    do {
        try await body()
        return nil
    } catch {
        return error as? UseAPIFailure
    }
}

extension UseAPIFailure {
    var apiError: UseAPIResponseError? { if case .api(let error) = self { error } else { nil } }
    var transportError: UseAPITransportError? { if case .transport(let error) = self { error } else { nil } }
}
