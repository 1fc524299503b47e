import StrictJSON

/// Replaces secrets (a command's password, the API token) by `***` in text
/// that may echo them: useapi's error texts, before they reach an error, a
/// result or a log line. It also catches a secret echoed JSON-escaped.
public struct SecretRedactor: Sendable {
    public static let mask = "***"
    private let needles: [String]

    /// Empty secrets are ignored; longer ones are replaced first, so a
    /// secret that contains another is masked whole.
    public init(secrets: [String?]) {
        var needles = Set<String>()
        for case let secret? in secrets where !secret.isEmpty {
            needles.insert(secret)
            needles.formUnion(Self.jsonEscapedForms(secret))
        }
        self.needles = needles.sorted { $0.utf8.count > $1.utf8.count }
    }

    public func redact(_ text: String) -> String {
        var text = text
        for needle in needles where text.contains(needle) {
            text = text.replacing(needle, with: Self.mask)
        }
        return text
    }

    /// The secret as a JSON string literal's content (how useapi would echo
    /// it inside JSON text), and the same with `/` escaped as some encoders do.
    private static func jsonEscapedForms(_ text: String) -> [String] {
        let literal = JSONValue.string(text).serialized
        let content = String(literal.dropFirst().dropLast())
        return [content, content.replacing("/", with: "\\/")]
    }
}
