import ArgumentParser
import Foundation
import Logging
import ServiceLifecycle
import UnixSignals
import UseAPISimulator

struct SimulateUseAPICommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "simulate-useapi",
        abstract: "Runs a local HTTP server that behaves like useapi's Runway accounts API.",
        discussion: """
            Faults apply to every request, or with --email-prefix to matching emails only. \
            They can be changed at run time: PUT /_admin/faults with a JSON array of rules. \
            GET /_admin/journal shows every request (token and passwords masked).
            """
    )

    @Option(help: "Address to listen on.") var host = "127.0.0.1"
    @Option(help: "Port to listen on (0 picks a free one).") var port = 8090
    @Option(help: "Environment variable holding the only accepted API token.") var tokenEnv = "USEAPI_TOKEN"
    @Option(help: "Added latency per request, in milliseconds.") var latencyMs = 0
    @Option(help: "Uniform extra latency, 0...N milliseconds.") var latencyJitterMs = 0
    @Option(help: "Probability of a 500/502/503 answer.") var errorRate = 0.0
    @Option(help: "Probability of a 429 answer with Retry-After.") var rateLimitRate = 0.0
    @Option(help: "Probability of never answering.") var hangRate = 0.0
    @Option(help: "Probability of closing the connection without an answer.") var dropRate = 0.0
    @Option(help: "Apply the faults only to emails with this prefix.") var emailPrefix: String?
    @Option(help: "JWT lifetime in days.") var jwtTtlDays = 30
    @Option(help: "Log level.") var logLevel = "info"

    func run() async throws {
        guard let token = ProcessInfo.processInfo.environment[tokenEnv], !token.isEmpty else {
            throw ValidationError("set \(tokenEnv) to the token the simulator accepts")
        }
        var logger = Logger(label: "useapi-simulator")
        logger.logLevel = Logger.Level(rawValue: logLevel) ?? .info
        var configuration = UseAPISimulatorConfiguration(token: token)
        configuration.host = host
        configuration.port = port
        configuration.jwtTTL = .seconds(jwtTtlDays * 86_400)
        var fault = SimulatedFault(emailPrefix: emailPrefix)
        fault.latencyMs = latencyMs
        fault.latencyJitterMs = latencyJitterMs
        fault.serverErrorRate = errorRate
        fault.rateLimitRate = rateLimitRate
        fault.hangRate = hangRate
        fault.dropRate = dropRate
        configuration.faults = [fault]
        configuration.journalLimit = 10_000
        let simulator = UseAPISimulator(configuration: configuration, logger: logger)
        let group = ServiceGroup(
            configuration: .init(services: [simulator], gracefulShutdownSignals: [.sigterm, .sigint], logger: logger)
        )
        try await group.run()
    }
}
