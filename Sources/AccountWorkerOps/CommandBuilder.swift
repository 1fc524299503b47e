import AccountWorker
import Foundation
import Kafka

/// Builds command records for `account-worker send`, checked with the
/// worker's own validation so a mistake is caught before it is published.
public enum CommandBuilder {
    public struct Invalid: Error, CustomStringConvertible {
        public var description: String
    }

    public struct Built: Sendable {
        public var id: String
        public var key: String
        public var value: [UInt8]
    }

    /// A command from flags. The password never comes from a flag.
    public static func fromFields(
        id: String?,
        type: CommandType,
        email: String,
        password: String?,
        maxJobs: Int?,
        useWorkspace: String?
    ) throws(Invalid) -> Built {
        var object: [String: Any] = ["id": id ?? UUID().uuidString.lowercased(), "type": type.rawValue, "email": email]
        if let password { object["password"] = password }
        if let maxJobs { object["maxJobs"] = maxJobs }
        switch useWorkspace {
        case nil: break
        case "true": object["useWorkspace"] = true
        case "false": object["useWorkspace"] = false
        case let team?: object["useWorkspace"] = team
        }
        return try build(object, validate: true)
    }

    /// A command from one JSON line; an `id` is added when missing.
    public static func fromJSONLine(_ line: String, validate: Bool) throws(Invalid) -> Built {
        guard let object = (try? JSONSerialization.jsonObject(with: Data(line.utf8))) as? [String: Any] else {
            throw Invalid(description: "not one JSON object")
        }
        var command = object
        if command["id"] == nil { command["id"] = UUID().uuidString.lowercased() }
        return try build(command, validate: validate)
    }

    private static func build(_ object: [String: Any], validate: Bool) throws(Invalid) -> Built {
        guard let data = try? JSONSerialization.data(withJSONObject: object, options: [.sortedKeys, .withoutEscapingSlashes]) else {
            throw Invalid(description: "cannot encode the command")
        }
        let value = Array(data)
        if validate, case .failure(let rejection) = CommandDecoder().decode(value) {
            throw Invalid(description: rejection.message)
        }
        guard let email = object["email"] as? String, let id = object["id"] as? String else {
            throw Invalid(description: "a command needs a string id and email")
        }
        return Built(id: id, key: email, value: value)
    }
}

/// Which results `account-worker results` shows.
public struct ResultFilter: Sendable {
    public var status: String?
    public var email: String?
    public var code: Int?

    public init(status: String? = nil, email: String? = nil, code: Int? = nil) {
        self.status = status
        self.email = email
        self.code = code
    }

    public func matches(_ result: ResultView) -> Bool {
        if let status, result.status != status { return false }
        if let email, result.email?.lowercased() != email.lowercased() { return false }
        if let code, result.code != code { return false }
        return true
    }
}

/// Accounts by JWT expiry, soonest first: the latest successful upsert of
/// each account, forgotten when a later delete succeeds.
public struct ExpiringReport: Sendable {
    private var latest: [String: ResultView] = [:]

    public init() {}

    public mutating func add(_ result: ResultView) {
        guard result.status == "ok", let email = result.email?.lowercased() else { return }
        if result.type == "account.delete" {
            latest[email] = nil
        } else if result.jwt != nil {
            latest[email] = result
        }
    }

    public var soonestFirst: [ResultView] {
        latest.values.sorted { ($0.jwt?.exp ?? 0) < ($1.jwt?.exp ?? 0) }
    }

    /// One line for the demo: the accounts whose JWT expires within
    /// `seconds`, or the soonest one (what `results --expiring` reports).
    public func soonLine(within seconds: TimeInterval, now: Date = Date()) -> String {
        let soonest = soonestFirst.compactMap { result in result.jwt.map { (result.email ?? "?", $0.exp - now.timeIntervalSince1970) } }
        let days = Int(seconds / 86_400)
        let within = soonest.filter { $0.1 <= seconds }
        guard within.isEmpty else {
            return "expiring soon (JWT within \(days)d): "
                + within.map { "\(ResultTable.sanitized($0.0)) \(ResultTable.relative($0.1))" }.joined(separator: ", ")
        }
        let first = soonest.first.map { "; the soonest, \(ResultTable.sanitized($0.0)), expires \(ResultTable.relative($0.1))" } ?? ""
        return "expiring soon (JWT within \(days)d): none\(first)"
    }
}
