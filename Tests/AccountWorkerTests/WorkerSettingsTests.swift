import AccountWorker
import Testing

@Suite("Settings from the environment")
struct WorkerSettingsTests {
    let minimal = ["KAFKA_BROKERS": "k1:9092, k2:9092", "USEAPI_TOKEN": "user:1-SecretTokenValue"]

    func parse(_ environment: [String: String], files: [String: String] = [:]) throws(ConfigurationError) -> WorkerSettings {
        try WorkerSettings.parse(environment: environment) { path in
            guard let contents = files[path] else { throw CocoaLikeError() }
            return contents
        }
    }

    struct CocoaLikeError: Error {}

    func failure(_ environment: [String: String], files: [String: String] = [:]) -> ConfigurationError? {
        do {
            _ = try parse(environment, files: files)
            return nil
        } catch {
            return error
        }
    }

    /// Neither `secret` nor any line or word of it (a secret with a newline
    /// could be printed escaped or split) appears in `text`.
    func expectNoSecret(_ secret: String, in text: String, sourceLocation: SourceLocation = #_sourceLocation) {
        let parts = [secret] + secret.split(whereSeparator: \.isNewline).map(String.init)
        for part in parts where !part.isEmpty {
            #expect(!text.contains(part), "a secret part \(part.debugDescription) in: \(text)", sourceLocation: sourceLocation)
        }
    }

    @Test("defaults are the contract's")
    func defaults() throws {
        let settings = try parse(minimal)
        #expect(settings.brokers == ["k1:9092", "k2:9092"])
        #expect(settings.groupID == "runway-account-worker")
        #expect(settings.commandTopic == "runway.accounts.commands")
        #expect(settings.resultTopic == "runway.accounts.results")
        #expect(settings.dlqTopic == "runway.accounts.dlq")
        #expect(settings.useapiBaseURL == "https://api.useapi.net")
        #expect(settings.maxInFlight == 8)
        #expect(settings.maxAttempts == 5)
        #expect(settings.breakerThreshold == 10)
        #expect(settings.requestTimeout == .seconds(30))
        #expect(settings.shutdownTimeout == .seconds(30))
        #expect(settings.maxCommandBytes == 65_536)
        #expect(settings.httpPort == 8080)
        #expect(settings.logLevel == "info" && settings.logFormat == "json")
        #expect(!settings.workerID.isEmpty)
    }

    @Test("every setting is read; KAFKA_CONFIG_* become librdkafka properties; an empty DLQ_TOPIC disables it")
    func overrides() throws {
        var environment = minimal
        environment.merge([
            "KAFKA_GROUP_ID": "g", "COMMAND_TOPIC": "c", "RESULT_TOPIC": "r", "DLQ_TOPIC": "", "USEAPI_BASE_URL": "http://127.0.0.1:9",
            "MAX_IN_FLIGHT": "3", "MAX_ATTEMPTS": "2", "BREAKER_THRESHOLD": "4", "REQUEST_TIMEOUT_MS": "1500",
            "SHUTDOWN_TIMEOUT_MS": "0", "MAX_COMMAND_BYTES": "1024", "HTTP_PORT": "0", "LOG_LEVEL": "DEBUG", "LOG_FORMAT": "text",
            "WORKER_ID": "w-7", "KAFKA_CONFIG_SECURITY_PROTOCOL": "SASL_SSL", "KAFKA_CONFIG_SASL_PASSWORD": "kafka-secret",
        ]) { $1 }
        let settings = try parse(environment)
        #expect(settings.groupID == "g" && settings.commandTopic == "c" && settings.resultTopic == "r")
        #expect(settings.dlqTopic == nil)
        #expect(settings.maxInFlight == 3 && settings.maxAttempts == 2 && settings.breakerThreshold == 4)
        #expect(settings.requestTimeout == .milliseconds(1500) && settings.shutdownTimeout == .zero)
        #expect(settings.maxCommandBytes == 1024 && settings.httpPort == 0)
        #expect(settings.logLevel == "debug" && settings.logFormat == "text" && settings.workerID == "w-7")
        #expect(settings.kafkaProperties == ["security.protocol": "SASL_SSL", "sasl.password": "kafka-secret"])
        let summary = settings.redactedSummary.description
        #expect(!summary.contains("kafka-secret"))
        expectNoSecret(minimal["USEAPI_TOKEN"]!, in: summary)
        #expect(summary.contains("sasl.password"))
    }

    @Test("the token can come from a file, but not from both places")
    func tokenFile() throws {
        let settings = try parse(
            ["KAFKA_BROKERS": "k:1", "USEAPI_TOKEN_FILE": "/run/secrets/t"],
            files: ["/run/secrets/t": "user:2-FromFile\n"]
        )
        #expect(settings.useapiToken == "user:2-FromFile")
        #expect(failure(["KAFKA_BROKERS": "k:1", "USEAPI_TOKEN_FILE": "/missing"])?.setting == "USEAPI_TOKEN_FILE")
        #expect(failure(minimal.merging(["USEAPI_TOKEN_FILE": "/run/secrets/t"]) { $1 })?.setting == "USEAPI_TOKEN_FILE")
        #expect(failure(["KAFKA_BROKERS": "k:1", "USEAPI_TOKEN_FILE": "/e"], files: ["/e": "\n"])?.setting == "USEAPI_TOKEN_FILE")
    }

    @Test(
        "a missing or malformed setting is named, and its secret value never shown",
        arguments: [
            (["USEAPI_TOKEN": "user:1-SecretTokenValue"], "KAFKA_BROKERS"),
            (["KAFKA_BROKERS": "k:1"], "USEAPI_TOKEN"),
            (["MAX_IN_FLIGHT": "0"], "MAX_IN_FLIGHT"),
            (["MAX_IN_FLIGHT": "eight"], "MAX_IN_FLIGHT"),
            (["MAX_ATTEMPTS": "-1"], "MAX_ATTEMPTS"),
            (["BREAKER_THRESHOLD": "1.5"], "BREAKER_THRESHOLD"),
            (["REQUEST_TIMEOUT_MS": "0"], "REQUEST_TIMEOUT_MS"),
            (["SHUTDOWN_TIMEOUT_MS": "soon"], "SHUTDOWN_TIMEOUT_MS"),
            (["MAX_COMMAND_BYTES": "0"], "MAX_COMMAND_BYTES"),
            (["HTTP_PORT": "70000"], "HTTP_PORT"),
            (["LOG_LEVEL": "loud"], "LOG_LEVEL"),
            (["LOG_FORMAT": "xml"], "LOG_FORMAT"),
            (["USEAPI_BASE_URL": "ftp://x"], "USEAPI_BASE_URL"),
            (["COMMAND_TOPIC": "bad topic"], "COMMAND_TOPIC"),
            (["RESULT_TOPIC": ""], "RESULT_TOPIC"),
            (["USEAPI_TOKEN": "user:1-Secret\nTokenValue"], "USEAPI_TOKEN"),
        ] as [([String: String], String)]
    )
    func malformed(overrides: [String: String], setting: String) {
        var environment = minimal
        if overrides["USEAPI_TOKEN"] == nil, setting == "USEAPI_TOKEN" { environment["USEAPI_TOKEN"] = nil }
        if setting == "KAFKA_BROKERS" { environment["KAFKA_BROKERS"] = nil }
        environment.merge(overrides) { $1 }
        let error = failure(environment)
        #expect(error?.setting == setting)
        #expect(error?.description.contains(setting) == true)
        // The token in play (the override's or the minimal one), part by part:
        // "user:1-Secret\nTokenValue" does not contain "SecretTokenValue".
        if let token = environment["USEAPI_TOKEN"] {
            expectNoSecret(token, in: error?.description ?? "")
        }
        #expect(error?.description.contains("\n") == false)
    }

    @Test("a librdkafka error names the KAFKA_CONFIG_ variable behind the property")
    func kafkaPropertyNames() {
        #expect(WorkerSettings.environmentName(forKafkaProperty: "security.protocol") == "KAFKA_CONFIG_SECURITY_PROTOCOL")
    }
}
