import AsyncHTTPClient
import Foundation
import Logging
import NIOCore
import NIOFoundationCompat
import StrictJSON
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
    /// HTTP/1 connections (at least the worker's concurrency) and connects
    /// within 5 s. Redirects are never followed: a 3xx would turn the upsert
    /// into a GET or re-send the password to whatever `Location` names.
    public static func makeHTTPClient(maxConnectionsPerHost: Int) -> HTTPClient {
        var configuration = HTTPClient.Configuration()
        configuration.timeout = .init(connect: .seconds(5))
        configuration.redirectConfiguration = .disallow
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
        let (status, bytes) = try await call(.POST, email: email, body: body, password: password)
        let account = try decodeAccount(status: status, bytes: bytes)
        // A 2xx that does not show the change applied is no success: without
        // a readable JWT, or for another account, it counts as unreadable.
        guard account.jwt != nil else {
            throw .transport(
                UseAPITransportError(kind: .invalidResponse, message: "the \(status) answer has no readable JWT", statusCode: status)
            )
        }
        if let answered = account.email, answered.lowercased() != email.lowercased() {
            throw .transport(
                UseAPITransportError(kind: .invalidResponse, message: "the \(status) answer is for another account", statusCode: status)
            )
        }
        return account
    }

    /// `GET /v1/runwayml/accounts/{email}`.
    public func get(email: String) async throws(UseAPIFailure) -> UseAPIAccount {
        let (status, bytes) = try await call(.GET, email: email, body: nil, password: nil)
        return try decodeAccount(status: status, bytes: bytes)
    }

    /// `DELETE /v1/runwayml/accounts/{email}`. A 404 is thrown as an API error;
    /// the caller decides whether an absent account is a success.
    public func delete(email: String) async throws(UseAPIFailure) -> UseAPIDeletion {
        let (status, _) = try await call(.DELETE, email: email, body: nil, password: nil)
        return UseAPIDeletion(statusCode: status)
    }

    private func decodeAccount(status: Int, bytes: ByteBuffer) throws(UseAPIFailure) -> UseAPIAccount {
        guard var account = UseAPIAccount(body: bytes.readableBytesView) else {
            throw .transport(
                UseAPITransportError(kind: .invalidResponse, message: "the \(status) answer is not an account object", statusCode: status)
            )
        }
        account.statusCode = status
        return account
    }

    /// An answer as read: its body holds at most `maxResponseBytes`.
    struct Answer: Sendable {
        var status: Int
        var headers: HTTPHeaders
        var body: ByteBuffer
        /// The body was longer than `maxResponseBytes` and was cut there.
        var truncated: Bool
    }

    /// Sends one request; returns the status and body of a 2xx answer, and
    /// throws the API error of any other (3xx included: never followed).
    /// useapi's words in an error never carry `password` or the token.
    private func call(_ method: HTTPMethod, email: String, body: Data?, password: String?) async throws(UseAPIFailure) -> (Int, ByteBuffer) {
        var request = HTTPClientRequest(url: accountURL(email))
        request.method = method
        request.headers.add(name: "Authorization", value: "Bearer \(configuration.token)")
        request.headers.add(name: "Accept", value: "application/json")
        request.headers.add(name: "User-Agent", value: "account-worker/\(configuration.version)")
        if let body {
            request.headers.add(name: "Content-Type", value: "application/json")
            request.body = .bytes(ByteBuffer(data: body))
        }
        let answer: Answer
        do {
            answer = try await exchange(request)
        } catch {
            throw .transport(Self.classify(error))
        }
        guard (200..<300).contains(answer.status) else {
            let secrets = SecretRedactor(secrets: [password, configuration.token])
            throw .api(Self.responseError(status: answer.status, headers: answer.headers, body: answer.body, redacting: secrets))
        }
        guard !answer.truncated else {
            throw .transport(
                UseAPITransportError(
                    kind: .invalidResponse,
                    message: "the \(answer.status) answer is larger than the \(configuration.maxResponseBytes)-byte limit",
                    statusCode: answer.status
                )
            )
        }
        return (answer.status, answer.body)
    }

    /// The request and its whole answer, within `requestTimeout`.
    ///
    /// async-http-client's deadline ends when the response head arrives; a
    /// body that stalls or trickles afterwards would hold the call for ever.
    /// So the whole exchange races one timer, and losing the race cancels it
    /// (which closes the connection).
    private func exchange(_ request: HTTPClientRequest) async throws -> Answer {
        let timeout = configuration.requestTimeout
        let limit = max(0, configuration.maxResponseBytes)
        let (httpClient, logger) = (self.httpClient, self.logger)
        return try await withThrowingTaskGroup(of: Answer?.self) { group in
            group.addTask {
                let response = try await httpClient.execute(request, deadline: .now() + TimeAmount(timeout), logger: logger)
                var body = ByteBuffer()
                var truncated = false
                for try await chunk in response.body {
                    let room = limit - body.readableBytes
                    if chunk.readableBytes > room {
                        // Stop reading: leaving the loop cancels the rest of the body.
                        body.writeImmutableBuffer(chunk.getSlice(at: chunk.readerIndex, length: room) ?? ByteBuffer())
                        truncated = true
                        break
                    }
                    body.writeImmutableBuffer(chunk)
                }
                return Answer(status: Int(response.status.code), headers: response.headers, body: body, truncated: truncated)
            }
            group.addTask {
                try await Task.sleep(for: timeout)
                return nil
            }
            defer { group.cancelAll() }
            guard let first = try await group.next(), let answer = first else {
                throw RequestTimeout()
            }
            return answer
        }
    }

    /// The whole call did not complete within `requestTimeout`.
    struct RequestTimeout: Error {}

    /// The error of a non-2xx answer. useapi's `error` and `errorDetails` are
    /// taken when the body is JSON (a non-string value as compact JSON text);
    /// otherwise a bounded excerpt of the body, or the status's reason phrase.
    /// The wait hint comes from `Retry-After`, else the body's `retryAfter`
    /// (ISO-8601 text, or seconds as a number), always bounded (``RetryAfter``).
    /// Every secret in `redacting` is replaced by `***` in the texts.
    static func responseError(
        status: Int,
        headers: HTTPHeaders,
        body: ByteBuffer,
        redacting secrets: SecretRedactor = SecretRedactor(secrets: [])
    ) -> UseAPIResponseError {
        let bytes = body.readableBytesView
        let json = try? JSONParser().parse(bytes)
        func text(_ value: JSONValue?) -> String? {
            switch value {
            case nil, .null?: nil
            case .string(let text)?: text
            case let other?: other.serialized
            }
        }
        var message = text(json?["error"])
        if message == nil {
            // Not JSON (useapi's plain-text 404, its malformed 401 variants) or no
            // `error` field: keep a bounded excerpt of the text.
            let excerpt = String(decoding: bytes.prefix(excerptBytes), as: UTF8.self).trimmingCharacters(in: .whitespacesAndNewlines)
            let reason = HTTPResponseStatus(statusCode: status).reasonPhrase
            message = !excerpt.isEmpty && json?.object == nil ? excerpt : reason.isEmpty ? "HTTP \(status)" : reason
        }
        var retryAfter = headers.first(name: "Retry-After").flatMap { RetryAfter.parseHeader($0) }
        if retryAfter == nil {
            switch json?["retryAfter"] {
            case .string(let text)?: retryAfter = RetryAfter.parseISO8601(text)
            case .number(let seconds)?: retryAfter = Double(seconds.text).flatMap(RetryAfter.duration(seconds:))
            default: break
            }
        }
        return UseAPIResponseError(
            statusCode: status,
            error: secrets.redact(message ?? "HTTP \(status)"),
            errorDetails: text(json?["errorDetails"]).map(secrets.redact),
            retryAfter: retryAfter
        )
    }

    /// Bytes of a non-JSON error body kept as its message (results cut it further).
    static let excerptBytes = 4096

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
        if error is RequestTimeout {
            return UseAPITransportError(kind: .timeout, message: "no complete answer within the request timeout")
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
