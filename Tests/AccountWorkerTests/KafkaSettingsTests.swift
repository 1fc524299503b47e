import Foundation
import AccountWorker
import Testing

@Suite("Kafka settings: fixed properties, values from files, consumer and producer properties")
struct KafkaSettingsTests {
    let minimal = ["KAFKA_BROKERS": "k1:9092", "USEAPI_TOKEN": "user:1-token"]

    func parse(_ extra: [String: String], files: [String: String] = [:]) throws(ConfigurationError) -> WorkerSettings {
        try WorkerSettings.parse(environment: minimal.merging(extra) { $1 }) { path in
            guard let contents = files[path] else { throw Unreadable() }
            return contents
        }
    }

    struct Unreadable: Error {}

    @Test(
        "properties the guarantees rest on stop start-up, naming the setting",
        arguments: [
            "KAFKA_CONFIG_ENABLE_AUTO_COMMIT", "KAFKA_CONFIG_ACKS", "KAFKA_CONFIG_REQUEST_REQUIRED_ACKS", "KAFKA_CONFIG_ENABLE_IDEMPOTENCE",
            "KAFKA_CONFIG_ENABLE_AUTO_OFFSET_STORE", "KAFKA_CONFIG_ISOLATION_LEVEL",
        ]
    )
    func fixedProperties(name: String) {
        #expect {
            _ = try parse([name: "true"])
        } throws: { error in
            (error as? ConfigurationError)?.setting == name && "\(error)".contains("cannot be changed")
        }
    }

    @Test("KAFKA_CONFIG_<NAME>_FILE reads the value from a file; an unreadable file or a double setting stops start-up")
    func valueFromFile() throws {
        let settings = try parse(["KAFKA_CONFIG_SASL_PASSWORD_FILE": "/run/secrets/kafka"], files: ["/run/secrets/kafka": "s3cret-Kafka\n"])
        #expect(settings.kafkaProperties == ["sasl.password": "s3cret-Kafka"])
        #expect {
            _ = try parse(["KAFKA_CONFIG_SASL_PASSWORD_FILE": "/missing"])
        } throws: { error in
            (error as? ConfigurationError)?.setting == "KAFKA_CONFIG_SASL_PASSWORD_FILE" && !"\(error)".contains("s3cret")
        }
        #expect {
            _ = try parse(
                ["KAFKA_CONFIG_SASL_PASSWORD_FILE": "/run/secrets/kafka", "KAFKA_CONFIG_SASL_PASSWORD": "other"],
                files: ["/run/secrets/kafka": "s3cret-Kafka"]
            )
        } throws: { error in
            !"\(error)".contains("s3cret") && !"\(error)".contains("other")
        }
    }

    @Test("consumer-only properties never reach the producer, producer-only ones never the consumer")
    func splitProperties() throws {
        let settings = try parse([
            "KAFKA_CONFIG_SESSION_TIMEOUT_MS": "6000", "KAFKA_CONFIG_LINGER_MS": "5", "KAFKA_CONFIG_SECURITY_PROTOCOL": "SASL_SSL",
        ])
        #expect(settings.kafka.consumerProperties == ["session.timeout.ms": "6000", "security.protocol": "SASL_SSL"])
        #expect(settings.kafka.producerProperties == ["linger.ms": "5", "security.protocol": "SASL_SSL"])
    }

    @Test("a secret file over 64 KiB stops start-up naming the setting, for the token and for Kafka properties alike")
    func oversizeSecretFile() throws {
        let path = FileManager.default.temporaryDirectory.appendingPathComponent("secret-\(UUID().uuidString)").path
        try String(repeating: "s", count: WorkerSettings.maxSecretFileBytes + 1).write(toFile: path, atomically: true, encoding: .utf8)
        defer { try? FileManager.default.removeItem(atPath: path) }
        for (name, environment) in [
            ("USEAPI_TOKEN_FILE", ["KAFKA_BROKERS": "k1:9092", "USEAPI_TOKEN_FILE": path]),
            ("KAFKA_CONFIG_SASL_PASSWORD_FILE", minimal.merging(["KAFKA_CONFIG_SASL_PASSWORD_FILE": path]) { $1 }),
        ] {
            #expect {
                _ = try WorkerSettings.parse(environment: environment)
            } throws: { error in
                (error as? ConfigurationError)?.setting == name
            }
        }
        try "ok-secret\n".write(toFile: path, atomically: true, encoding: .utf8)
        #expect(try WorkerSettings.parse(environment: ["KAFKA_BROKERS": "k1:9092", "USEAPI_TOKEN_FILE": path]).useapiToken == "ok-secret")
    }
}
