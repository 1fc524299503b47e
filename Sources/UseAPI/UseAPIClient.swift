import AsyncHTTPClient
import Foundation
import Logging
import NIOCore
import NIOFoundationCompat
import NIOHTTP1

/// useapi.net's Runway accounts API.
///
/// Share one `HTTPClient` per process (``makeHTTPClient(maxConnectionsPerHost:)``).
/// The token and passwords never appear in a log line or an error description.
public struct UseAPIClient: Sendable {
    public let configuration: UseAPIConfiguration
    private let httpClient: HTTPClient
    private let logger: Logger

    public init(configuration: UseAPIConfiguration, httpClient: HTTPClient, logger: Logger) {
        self.configuration = configuration
        self.httpClient = httpClient
        self.logger = logger
    }

    /// An `HTTPClient` whose pool allows `maxConnectionsPerHost` parallel
    /// HTTP/1 connections (at least the worker's concurrency) and connects within 5 s.
    public static func makeHTTPClient(maxConnectionsPerHost: Int) -> HTTPClient {
        var configuration = HTTPClient.Configuration()
        configuration.timeout = .init(connect: .seconds(5))
        configuration.connectionPool = .init(
            idleTimeout: .seconds(60),
            concurrentHTTP1ConnectionsPerHostSoftLimit: max(1, maxConnectionsPerHost)
        )
        configuration.httpVersion = .http1Only
        return HTTPClient(eventLoopGroupProvider: .singleton, configuration: configuration)
    }

    /// The URL of one account; the email is encoded as one path segment.
    public func accountURL(_ email: String) -> String {
        "\(configuration.baseURL)/v1/runwayml/accounts/\(encodeEmailPathSegment(email))"
    }

    /// `POST /v1/runwayml/accounts/{email}`: creates or updates the account.
    public func upsert(
        email: String,
        password: String,
        maxJobs: Int,
        useWorkspace: UseAPIWorkspace? = nil
    ) async throws(UseAPIFailure) -> UseAPIAccount {
        struct Body: Encodable {
            var email: String
            var password: String
            var maxJobs: Int
            var useWorkspace: UseAPIWorkspace?
        }
        let body: Data
        do {
            body = try JSONEncoder().encode(Body(email: email, password: password, maxJobs: maxJobs, useWorkspace: useWorkspace))
        } catch {
            throw .transport(UseAPITransportError(kind: .invalidResponse, message: "cannot encode the request body"))
        }
        let (status, bytes) = try await call(.POST, email: email, body: body)
        return try decodeAccount(status: status, bytes: bytes)
    }

    /// `GET /v1/runwayml/accounts/{email}`.
    public func get(email: String) async throws(UseAPIFailure) -> UseAPIAccount {
        let (status, bytes) = try await call(.GET, email: email, body: nil)
        return try decodeAccount(status: status, bytes: bytes)
    }

    /// `DELETE /v1/runwayml/accounts/{email}`. A 404 is thrown as an API error;
    /// the caller decides whether an absent account is a success.
    public func delete(email: String) async throws(UseAPIFailure) -> UseAPIDeletion {
        let (status, _) = try await call(.DELETE, email: email, body: nil)
        return UseAPIDeletion(statusCode: status)
    }

    private func decodeAccount(status: Int, bytes: ByteBuffer) throws(UseAPIFailure) -> UseAPIAccount {
        do {
            return try JSONDecoder().decode(UseAPIAccount.self, from: Data(buffer: bytes))
        } catch {
            throw .transport(
                UseAPITransportError(kind: .invalidResponse, message: "the \(status) answer is not an account object", statusCode: status)
            )
        }
    }

    /// Sends one request; returns the status and body of a 2xx answer, and
    /// throws the API error of any other.
    private func call(_ method: HTTPMethod, email: String, body: Data?) async throws(UseAPIFailure) -> (Int, ByteBuffer) {
        var request = HTTPClientRequest(url: accountURL(email))
        request.method = method
        request.headers.add(name: "Authorization", value: "Bearer \(configuration.token)")
        request.headers.add(name: "Accept", value: "application/json")
        request.headers.add(name: "User-Agent", value: "account-worker/\(configuration.version)")
        if let body {
            request.headers.add(name: "Content-Type", value: "application/json")
            request.body = .bytes(ByteBuffer(data: body))
        }
        let deadline = NIODeadline.now() + .milliseconds(configuration.requestTimeout.milliseconds)
        let status: Int
        let headers: HTTPHeaders
        let bytes: ByteBuffer
        do {
            let response = try await httpClient.execute(request, deadline: deadline, logger: logger)
            status = Int(response.status.code)
            headers = response.headers
            bytes = try await response.body.collect(upTo: configuration.maxResponseBytes)
        } catch {
            throw .transport(Self.classify(error))
        }
        guard (200..<300).contains(status) else {
            throw .api(Self.responseError(status: status, headers: headers, body: bytes))
        }
        return (status, bytes)
    }

    static func responseError(status: Int, headers: HTTPHeaders, body: ByteBuffer) -> UseAPIResponseError {
        struct ErrorBody: Decodable {
            var error: String?
            var errorDetails: String?
            var retryAfter: String?
        }
        let data = Data(buffer: body)
        let decoded = try? JSONDecoder().decode(ErrorBody.self, from: data)
        var message = decoded?.error
        if message == nil {
            // Not JSON (useapi's plain-text 404, its malformed 401 variants) or no
            // `error` field: keep a bounded excerpt of the text.
            let text = String(decoding: data.prefix(512), as: UTF8.self).trimmingCharacters(in: .whitespacesAndNewlines)
            let reason = HTTPResponseStatus(statusCode: status).reasonPhrase
            message = !text.isEmpty ? text : reason.isEmpty ? "HTTP \(status)" : reason
        }
        let retryAfter =
            headers.first(name: "Retry-After").flatMap { RetryAfter.parseHeader($0) }
            ?? decoded?.retryAfter.flatMap { RetryAfter.parseISO8601($0) }
        return UseAPIResponseError(
            statusCode: status,
            error: message ?? "HTTP \(status)",
            errorDetails: decoded?.errorDetails,
            retryAfter: retryAfter
        )
    }

    static func classify(_ error: any Error) -> UseAPITransportError {
        if let error = error as? HTTPClientError {
            switch error {
            case .deadlineExceeded, .readTimeout, .connectTimeout, .writeTimeout:
                return UseAPITransportError(kind: .timeout, message: "no answer within the request timeout")
            case .cancelled:
                return UseAPITransportError(kind: .cancelled, message: "the call was cancelled")
            case .remoteConnectionClosed:
                return UseAPITransportError(kind: .connection, message: "the connection was closed before the answer")
            default:
                return UseAPITransportError(kind: .connection, message: "\(error)")
            }
        }
        if error is NIOTooManyBytesError {
            return UseAPITransportError(kind: .invalidResponse, message: "the answer is larger than the size limit")
        }
        if error is CancellationError {
            return UseAPITransportError(kind: .cancelled, message: "the call was cancelled")
        }
        let typeName = String(reflecting: type(of: error))
        if typeName.contains("SSL") || typeName.contains("TLS") {
            return UseAPITransportError(kind: .tls, message: "TLS failed: \(error)")
        }
        if typeName.contains("HTTPParser") {
            return UseAPITransportError(kind: .invalidResponse, message: "the answer is not valid HTTP")
        }
        return UseAPITransportError(kind: .connection, message: "\(error)")
    }
}

extension Duration {
    var milliseconds: Int64 {
        let (seconds, attoseconds) = components
        return seconds * 1000 + attoseconds / 1_000_000_000_000_000
    }
}
