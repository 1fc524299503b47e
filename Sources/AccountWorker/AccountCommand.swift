import StrictJSON
import UseAPI

/// What a command asks for.
public enum CommandType: String, Sendable, Codable {
    case upsert = "account.upsert"
    case delete = "account.delete"
}

/// A command that passed validation.
public struct AccountCommand: Sendable {
    public var id: String
    public var type: CommandType
    public var email: String
    /// Present for upserts. A secret: never logged or echoed.
    public var password: String?
    public var maxJobs: Int?
    public var useWorkspace: UseAPIWorkspace?
}

/// Why a message was not accepted as a command. It becomes an error result
/// with `stage: "validation"`; undecodable messages also go to the DLQ.
public struct CommandRejection: Error, Sendable, Equatable {
    /// 400, or 413 for an oversize message.
    public var code: Int
    public var message: String
    /// The offending field, when one is to blame.
    public var field: String?
    /// The message could not be decoded at all (not one JSON object, or too
    /// large): it also goes to the dead-letter topic.
    public var isUndecodable: Bool
    /// What could still be read from the message, for the result.
    public var commandId: String?
    public var email: String?
    public var type: CommandType

    /// The `dlq-reason` header value.
    public var dlqReason: String { code == 413 ? "too-large" : "not-a-json-object" }
}

/// Decodes and validates command messages per the contract, in its order:
/// size limit, one JSON object, then the fields.
public struct CommandDecoder: Sendable {
    public var maxCommandBytes: Int

    public init(maxCommandBytes: Int = 65_536) {
        self.maxCommandBytes = maxCommandBytes
    }

    public func decode(_ value: [UInt8]?) -> Result<AccountCommand, CommandRejection> {
        guard let value, !value.isEmpty else {
            return .failure(undecodable(400, value == nil ? "the message has a null value" : "the message value is empty"))
        }
        guard value.count <= maxCommandBytes else {
            return .failure(undecodable(413, "the message is \(value.count) bytes, over the \(maxCommandBytes)-byte limit"))
        }
        guard case .object(let fields)? = try? JSONParser().parse(value) else {
            return .failure(undecodable(400, "the message value is not one JSON object"))
        }
        return validate(fields)
    }

    private func undecodable(_ code: Int, _ message: String) -> CommandRejection {
        CommandRejection(code: code, message: message, field: nil, isUndecodable: true, commandId: nil, email: nil, type: .upsert)
    }

    private func validate(_ fields: JSONObject) -> Result<AccountCommand, CommandRejection> {
        // What can be echoed in the result even when validation fails: never
        // a field the command repeats, since which copy is meant is unknown.
        let repeated = Set(fields.repeatedKeys)
        var readableID: String?
        if !repeated.contains("id"), case .string(let id)? = fields["id"], Self.isValidID(id) { readableID = id }
        var readableEmail: String?
        if !repeated.contains("email"), case .string(let email)? = fields["email"], email.utf8.count <= 1024 { readableEmail = email }
        var type = CommandType.upsert
        if !repeated.contains("type"), case .string(let raw)? = fields["type"], let parsed = CommandType(rawValue: raw) { type = parsed }

        func reject(_ field: String, _ message: String) -> Result<AccountCommand, CommandRejection> {
            .failure(
                CommandRejection(
                    code: 400,
                    message: message,
                    field: field,
                    isUndecodable: false,
                    commandId: readableID,
                    email: readableEmail,
                    type: type
                )
            )
        }

        if let key = fields.repeatedKeys.first {
            // Producers' languages disagree on which copy wins: refuse to guess.
            let field = String(key.prefix(64))
            return reject(field, "the field \"\(field)\" appears more than once")
        }
        guard case .string(let id)? = fields["id"] else {
            return reject("id", fields["id"] == nil ? "id is required" : "id must be a string")
        }
        guard Self.isValidID(id) else { return reject("id", "id must be 1-128 characters without control characters") }

        switch fields["type"] {
        case nil: break
        case .string(let raw)? where CommandType(rawValue: raw) != nil: break
        default: return reject("type", "type must be \"account.upsert\" or \"account.delete\"")
        }

        guard case .string(let email)? = fields["email"] else {
            return reject("email", fields["email"] == nil ? "email is required" : "email must be a string")
        }
        if let problem = Self.emailProblem(email) { return reject("email", problem) }

        var command = AccountCommand(id: id, type: type, email: email)
        guard type == .upsert else { return .success(command) }

        guard case .string(let password)? = fields["password"] else {
            return reject("password", fields["password"] == nil ? "password is required for an upsert" : "password must be a string")
        }
        guard !password.isEmpty, password.utf8.count <= 1024 else {
            return reject("password", "password must be 1-1024 bytes")
        }
        guard case .number(let number)? = fields["maxJobs"], let maxJobs = number.int64 else {
            return reject(
                "maxJobs",
                fields["maxJobs"] == nil ? "maxJobs is required for an upsert" : "maxJobs must be a JSON integer from 1 to 10"
            )
        }
        guard (1...10).contains(maxJobs) else { return reject("maxJobs", "maxJobs must be from 1 to 10") }
        command.password = password
        command.maxJobs = Int(maxJobs)

        switch fields["useWorkspace"] {
        case nil: break
        case .bool(let flag)?: command.useWorkspace = .enabled(flag)
        case .string(let team)? where !team.isEmpty: command.useWorkspace = .team(team)
        default: return reject("useWorkspace", "useWorkspace must be a boolean or a non-empty string")
        }
        return .success(command)
    }

    static func isValidID(_ id: String) -> Bool {
        let count = id.count
        return count >= 1 && count <= 128 && !id.unicodeScalars.contains { $0.properties.generalCategory == .control }
    }

    /// Why `email` is unacceptable, or nil when it is fine.
    static func emailProblem(_ email: String) -> String? {
        if email.isEmpty { return "email is required" }
        if email.utf8.count > 254 { return "email must be at most 254 bytes" }
        if email.unicodeScalars.contains(where: { $0.properties.isWhitespace || $0.properties.generalCategory == .control }) {
            return "email must not contain whitespace or control characters"
        }
        let parts = email.split(separator: "@", omittingEmptySubsequences: false)
        if parts.count != 2 { return "email must contain exactly one @" }
        if parts[0].isEmpty || parts[1].isEmpty { return "email needs a local part and a domain" }
        return nil
    }
}
