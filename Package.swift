// swift-tools-version:6.0
import PackageDescription

let package = Package(
    name: "account-worker",
    platforms: [.macOS(.v15)],
    products: [
        .executable(name: "account-worker", targets: ["account-worker"]),
        .library(name: "Kafka", targets: ["Kafka"]),
        .library(name: "UseAPI", targets: ["UseAPI"]),
    ],
    dependencies: [
        .package(url: "https://github.com/apple/swift-log.git", from: "1.16.2"),
        .package(url: "https://github.com/apple/swift-metrics.git", from: "2.13.0"),
        .package(url: "https://github.com/apple/swift-nio.git", from: "2.101.2"),
        .package(url: "https://github.com/apple/swift-collections.git", from: "1.6.0"),
        .package(url: "https://github.com/apple/swift-argument-parser.git", from: "1.8.2"),
        .package(url: "https://github.com/swift-server/async-http-client.git", from: "1.37.0"),
        .package(url: "https://github.com/swift-server/swift-service-lifecycle.git", from: "2.13.0"),
        .package(url: "https://github.com/swift-server/swift-prometheus.git", from: "2.4.1"),
        .package(url: "https://github.com/hummingbird-project/hummingbird.git", from: "2.28.1"),
        .package(url: "https://github.com/apple/swift-http-types.git", from: "1.8.0"),
    ],
    targets: [
        .systemLibrary(
            name: "CRdKafka",
            pkgConfig: "rdkafka",
            providers: [.apt(["librdkafka-dev"])]
        ),
        .target(
            name: "Kafka",
            dependencies: [
                "CRdKafka",
                .product(name: "DequeModule", package: "swift-collections"),
                .product(name: "Logging", package: "swift-log"),
            ]
        ),
        // A strict JSON parser for untrusted bytes (commands, useapi's answers):
        // numbers kept as text, repeated keys reported, nesting bounded.
        .target(name: "StrictJSON"),
        .target(
            name: "UseAPI",
            dependencies: [
                "StrictJSON",
                .product(name: "AsyncHTTPClient", package: "async-http-client"),
                .product(name: "Logging", package: "swift-log"),
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOHTTP1", package: "swift-nio"),
                .product(name: "NIOFoundationCompat", package: "swift-nio"),
            ]
        ),
        .target(
            name: "UseAPISimulator",
            dependencies: [
                .product(name: "HTTPTypes", package: "swift-http-types"),
                .product(name: "Hummingbird", package: "hummingbird"),
                .product(name: "Logging", package: "swift-log"),
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOFoundationCompat", package: "swift-nio"),
                .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
            ]
        ),
        .target(
            name: "AccountWorker",
            dependencies: [
                "Kafka",
                "StrictJSON",
                "UseAPI",
                .product(name: "AsyncHTTPClient", package: "async-http-client"),
                .product(name: "DequeModule", package: "swift-collections"),
                .product(name: "Logging", package: "swift-log"),
                .product(name: "Metrics", package: "swift-metrics"),
                .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
            ]
        ),
        .target(
            name: "WorkerHTTP",
            dependencies: [
                "AccountWorker",
                .product(name: "CoreMetrics", package: "swift-metrics"),
                .product(name: "Hummingbird", package: "hummingbird"),
                .product(name: "Logging", package: "swift-log"),
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOFoundationCompat", package: "swift-nio"),
                .product(name: "Prometheus", package: "swift-prometheus"),
                .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
            ]
        ),
        .target(
            name: "AccountWorkerOps",
            dependencies: [
                "AccountWorker",
                "Kafka",
                "UseAPI",
                "UseAPISimulator",
                .product(name: "Logging", package: "swift-log"),
                .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
            ]
        ),
        .executableTarget(
            name: "account-worker",
            dependencies: [
                "AccountWorker",
                "AccountWorkerOps",
                "WorkerHTTP",
                "Kafka",
                "UseAPISimulator",
                .product(name: "ArgumentParser", package: "swift-argument-parser"),
                .product(name: "Logging", package: "swift-log"),
                .product(name: "Prometheus", package: "swift-prometheus"),
                .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
                .product(name: "UnixSignals", package: "swift-service-lifecycle"),
            ],
            linkerSettings: [
                // Relative relocations packed (DT_RELR, glibc >= 2.36): the
                // loader reads about 100 KiB of them instead of 2.9 MiB, which
                // stayed resident (bench, static stdlib). Gold, swiftc's
                // default linker on Linux, cannot pack them; lld can.
                .unsafeFlags(["-use-ld=lld", "-Xlinker", "-z", "-Xlinker", "pack-relative-relocs"], .when(platforms: [.linux]))
            ]
        ),
        // Shared by the test targets: the mutation fuzzer.
        .target(
            name: "TestSupport",
            dependencies: [.product(name: "Logging", package: "swift-log")],
            path: "Tests/TestSupport"
        ),
        .testTarget(
            name: "StrictJSONTests",
            dependencies: ["StrictJSON", "TestSupport"]
        ),
        .testTarget(
            name: "KafkaTests",
            dependencies: ["Kafka"]
        ),
        .testTarget(
            name: "AccountWorkerTests",
            dependencies: [
                "AccountWorker",
                "StrictJSON",
                "TestSupport",
                "Kafka",
                "UseAPI",
                "UseAPISimulator",
                "WorkerHTTP",
                .product(name: "AsyncHTTPClient", package: "async-http-client"),
                .product(name: "Logging", package: "swift-log"),
                .product(name: "Metrics", package: "swift-metrics"),
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOHTTP1", package: "swift-nio"),
                .product(name: "Prometheus", package: "swift-prometheus"),
                .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
            ]
        ),
        .testTarget(
            name: "AccountWorkerOpsTests",
            dependencies: ["AccountWorkerOps", "Kafka"]
        ),
        .testTarget(
            name: "EndToEndTests",
            dependencies: [
                "AccountWorker",
                "StrictJSON",
                "Kafka",
                "UseAPISimulator",
                .product(name: "Logging", package: "swift-log"),
            ]
        ),
        .testTarget(
            name: "UseAPITests",
            dependencies: [
                "UseAPI",
                "StrictJSON",
                "TestSupport",
                "UseAPISimulator",
                .product(name: "AsyncHTTPClient", package: "async-http-client"),
                .product(name: "Logging", package: "swift-log"),
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOHTTP1", package: "swift-nio"),
            ]
        ),
    ],
    swiftLanguageModes: [.v6]
)

// Boundaries the compiler enforces: a file sees another module's members only
// when it imports that module itself (no leaks through transitive imports).
for target in package.targets where target.type != .system {
    target.swiftSettings = (target.swiftSettings ?? []) + [.enableUpcomingFeature("MemberImportVisibility")]
}
