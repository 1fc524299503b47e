import Foundation
import HTTPTypes
import Hummingbird
import NIOCore
import NIOFoundationCompat
import Synchronization

/// Routes by hand so the account segment is seen exactly as sent.
struct SimulatorResponder: HTTPResponder {
    typealias Context = SimulatorContext
    let simulator: UseAPISimulator

    static let accountsPrefix = "/v1/runwayml/accounts/"

    func respond(to request: Request, context: SimulatorContext) async throws -> Response {
        var request = request
        let rawPath = request.uri.path
        let body = (try? await request.collectBody(upTo: 1 << 20)) ?? ByteBuffer()
        if rawPath.hasPrefix("/_admin/") {
            return adminResponse(request: request, rawPath: rawPath, body: body)
        }
        var email: String?
        if rawPath.hasPrefix(Self.accountsPrefix) {
            let segment = rawPath.dropFirst(Self.accountsPrefix.count)
            if !segment.isEmpty, !segment.contains("/") {
                email = String(segment).removingPercentEncoding
            }
        }
        let (attempt, fault) = simulator.state.withLock { $0.begin(email: email) }
        var record = SimulatorRequestRecord(
            method: request.method.rawValue,
            rawPath: rawPath + (request.uri.query.map { "?\($0)" } ?? ""),
            email: email,
            headers: Dictionary(request.headers.map { ($0.name.canonicalName, $0.value) }, uniquingKeysWith: { first, _ in first }),
            body: String(buffer: body),
            status: nil,
            startedAt: simulator.elapsedSeconds
        )
        let response = await answer(request, email: email, body: body, attempt: attempt, fault: fault, context: context)
        record.status = response.map { Int($0.status.code) }
        record.endedAt = simulator.elapsedSeconds
        simulator.state.withLock { $0.end(record) }
        guard let response else {
            // Dropped or hung: close without an answer.
            try? await context.channel.close()
            throw SimulatedDrop()
        }
        return response
    }

    struct SimulatedDrop: Error {}

    private func answer(
        _ request: Request,
        email: String?,
        body: ByteBuffer,
        attempt: Int,
        fault: SimulatedFault?,
        context: SimulatorContext
    ) async -> Response? {
        if let fault {
            let latency = fault.latencyMs + (fault.latencyJitterMs > 0 ? Int.random(in: 0...fault.latencyJitterMs) : 0)
            if latency > 0 { try? await Task.sleep(for: .milliseconds(latency)) }
            if attempt > 0, attempt <= fault.failFirst {
                var response = json(
                    status: fault.failFirstStatus,
                    ["error": "Simulated failure \(attempt) of \(fault.failFirst)", "code": fault.failFirstStatus]
                )
                if fault.failFirstStatus == 429 {
                    response.headers[.retryAfter] = String(Int(fault.rateLimitRetryAfterSeconds.rounded(.up)))
                }
                return response
            }
            if let answer = fault.answer, fault.answerFirst == 0 || attempt <= fault.answerFirst {
                return canned(answer, request: request, email: email, body: body)
            }
            if let slow = fault.slowBody {
                return slowResponse(slow, hangMs: fault.hangMs)
            }
            if Double.random(in: 0..<1) < fault.hangRate {
                let deadline = ContinuousClock.now + .milliseconds(fault.hangMs)
                while ContinuousClock.now < deadline, !Task.isCancelled, !simulator.state.withLock({ $0.shuttingDown }) {
                    try? await Task.sleep(for: .milliseconds(50))
                }
                return nil
            }
            if Double.random(in: 0..<1) < fault.dropRate {
                return nil
            }
            if Double.random(in: 0..<1) < fault.serverErrorRate {
                let status = [500, 502, 503].randomElement()!
                return json(status: status, ["error": "Simulated server error", "code": status])
            }
            if Double.random(in: 0..<1) < fault.rateLimitRate {
                let until = Date().addingTimeInterval(fault.rateLimitRetryAfterSeconds)
                var response = json(
                    status: 429,
                    ["error": "Too many requests", "code": 429, "retryAfter": ISO8601DateFormatter().string(from: until)]
                )
                response.headers[.retryAfter] = String(Int(fault.rateLimitRetryAfterSeconds.rounded(.up)))
                return response
            }
        }
        guard let email else {
            return json(status: 404, ["error": "Not found", "code": 404])
        }
        guard request.headers[.authorization] == "Bearer \(simulator.configuration.token)" else {
            return json(status: 401, ["error": "Unauthorized", "code": 401])
        }
        switch request.method {
        case .get:
            guard let account = simulator.state.withLock({ $0.accounts[email] }) else { return notFound() }
            return accountResponse(account)
        case .delete:
            let remaining: Int? = simulator.state.withLock { state in
                guard state.accounts.removeValue(forKey: email) != nil else { return nil }
                return state.accounts.count
            }
            guard let remaining else { return notFound() }
            return json(status: 200, ["account": email, "deleted": true, "remaining": remaining])
        case .post:
            return upsert(email: email, body: body)
        default:
            return json(status: 405, ["error": "Method not allowed", "code": 405])
        }
    }

    private func upsert(email: String, body: ByteBuffer) -> Response {
        struct Body: Decodable {
            var email: String?
            var password: String?
            var maxJobs: Int?
        }
        guard let parsed = try? JSONDecoder().decode(Body.self, from: Data(buffer: body)) else {
            return badRequest("Request body must be a JSON object with email, password and maxJobs (an integer)")
        }
        guard let bodyEmail = parsed.email, !bodyEmail.isEmpty else { return badRequest("Required param email is missing") }
        guard let password = parsed.password, !password.isEmpty else { return badRequest("Required param password is missing") }
        guard let maxJobs = parsed.maxJobs else { return badRequest("Required param maxJobs is missing") }
        guard (1...10).contains(maxJobs) else { return badRequest("Parameter maxJobs valid range is 1-10") }
        guard bodyEmail == email else { return badRequest("Parameter email (\(bodyEmail)) must match email in the URL path") }

        let now = (Date().timeIntervalSince1970 * 1000).rounded() / 1000
        let ttl = Double(simulator.configuration.jwtTTL.components.seconds)
        enum Outcome { case stored(StoredAccount), rejected(Response) }
        let outcome: Outcome = simulator.state.withLock { state in
            switch state.behaviors[email] {
            case .errorState:
                return .rejected(
                    json(status: 596, ["error": "Account \(email) in error state, delete the account and add it again", "code": 596])
                )
            case .suspended:
                return .rejected(json(status: 401, ["error": "This account has been suspended.", "code": 401]))
            case .password(let expected) where expected != password:
                return .rejected(json(status: 401, ["error": "Wrong username/password combination.", "code": 401]))
            default:
                state.nextJWTID += 1
                let jwt = SimulatedJWT(token: "sim-jwt-\(UUID().uuidString)", exp: now + ttl, iat: now, id: state.nextJWTID)
                let account = StoredAccount(email: email, password: password, maxJobs: maxJobs, jwt: jwt)
                state.accounts[email] = account
                return .stored(account)
            }
        }
        switch outcome {
        case .stored(let account): return accountResponse(account)
        case .rejected(let response): return response
        }
    }

    private func accountResponse(_ account: StoredAccount) -> Response {
        struct Payload: Encodable {
            var email: String
            var password: String
            var maxJobs: Int
            var jwt: SimulatedJWT
        }
        let payload = Payload(email: account.email, password: account.password, maxJobs: account.maxJobs, jwt: account.jwt)
        return encoded(status: 200, payload)
    }

    private func canned(_ answer: SimulatedAnswer, request: Request, email: String?, body: ByteBuffer) -> Response {
        struct Sent: Decodable { var password: String? }
        let password = (try? JSONDecoder().decode(Sent.self, from: Data(buffer: body)))?.password ?? ""
        let token = request.headers[.authorization].map { $0.hasPrefix("Bearer ") ? String($0.dropFirst(7)) : $0 } ?? ""
        var text = answer.body
            .replacingOccurrences(of: "{email}", with: email ?? "")
            .replacingOccurrences(of: "{password}", with: password)
            .replacingOccurrences(of: "{token}", with: token)
        let padding = max(0, min(answer.bodyBytes, 64 << 20) - (text.utf8.count - "{padding}".utf8.count))
        text = text.replacingOccurrences(of: "{padding}", with: String(repeating: "x", count: text.contains("{padding}") ? padding : 0))
        var response = Response(
            status: HTTPResponse.Status(code: answer.status),
            headers: [.contentType: "application/json"],
            body: .init(byteBuffer: ByteBuffer(string: text))
        )
        for (name, value) in answer.headers {
            if let field = HTTPField.Name(name) { response.headers[field] = value }
        }
        return response
    }

    private func slowResponse(_ slow: SimulatedSlowBody, hangMs: Int) -> Response {
        let simulator = self.simulator
        let declared = max(0, slow.declaredBytes)
        let body = ResponseBody(contentLength: declared) { writer in
            let initial = min(max(0, slow.initialBytes), declared)
            try await writer.write(ByteBuffer(repeating: UInt8(ascii: " "), count: initial))
            var sent = initial
            let deadline = ContinuousClock.now + .milliseconds(hangMs)
            while ContinuousClock.now < deadline, !simulator.state.withLock({ $0.shuttingDown }) {
                if slow.trickleEveryMs > 0, sent < declared {
                    try await Task.sleep(for: .milliseconds(slow.trickleEveryMs))
                    try await writer.write(ByteBuffer(repeating: UInt8(ascii: " "), count: 1))
                    sent += 1
                } else {
                    try await Task.sleep(for: .milliseconds(50))
                }
            }
            // Never completes the declared length: the connection is closed instead.
            throw SimulatedDrop()
        }
        return Response(status: .ok, headers: [.contentType: "application/json"], body: body)
    }

    private func notFound() -> Response {
        Response(
            status: .notFound,
            headers: [.contentType: "text/plain; charset=utf-8"],
            body: .init(byteBuffer: ByteBuffer(string: "Configuration not found. To create configuration use POST /accounts/email."))
        )
    }

    private func badRequest(_ message: String) -> Response {
        json(status: 400, ["error": message, "code": 400])
    }

    // MARK: Admin

    private func adminResponse(request: Request, rawPath: String, body: ByteBuffer) -> Response {
        switch (request.method, rawPath) {
        case (.get, "/_admin/journal"):
            return encoded(status: 200, simulator.journal.redacted)
        case (.delete, "/_admin/journal"):
            simulator.resetJournal()
            return json(status: 200, ["reset": true])
        case (.put, "/_admin/faults"):
            guard let faults = try? JSONDecoder().decode([SimulatedFault].self, from: Data(buffer: body)) else {
                return badRequest("expected a JSON array of fault rules")
            }
            simulator.setFaults(faults)
            return json(status: 200, ["faults": faults.count])
        case (.put, _) where rawPath.hasPrefix("/_admin/accounts/"):
            let email = String(rawPath.dropFirst("/_admin/accounts/".count)).removingPercentEncoding ?? ""
            guard let behavior = try? JSONDecoder().decode(SimulatedAccountBehavior.self, from: Data(buffer: body)) else {
                return badRequest("expected a behavior, e.g. {\"suspended\":{}}")
            }
            simulator.setBehavior(behavior, for: email)
            return json(status: 200, ["email": email])
        default:
            return json(status: 404, ["error": "Not found", "code": 404])
        }
    }
}

func json(status: Int, _ object: [String: any Sendable]) -> Response {
    let data = (try? JSONSerialization.data(withJSONObject: object, options: [.sortedKeys])) ?? Data()
    return Response(
        status: HTTPResponse.Status(code: status),
        headers: [.contentType: "application/json"],
        body: .init(byteBuffer: ByteBuffer(data: data))
    )
}

func encoded(status: Int, _ value: some Encodable) -> Response {
    let data = (try? JSONEncoder().encode(value)) ?? Data()
    return Response(
        status: HTTPResponse.Status(code: status),
        headers: [.contentType: "application/json"],
        body: .init(byteBuffer: ByteBuffer(data: data))
    )
}
