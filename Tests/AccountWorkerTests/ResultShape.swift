import StrictJSON
import Testing

/// The contract's field rules for one result (CONTRACT.md "Result message";
/// docs/schemas/result.schema.json): which keys each status and type carries,
/// their types, and the 1024-character cap on texts.
func expectContractShape(_ result: Received, sourceLocation: SourceLocation = #_sourceLocation) {
    guard case .object(let object) = result.json else {
        Issue.record("not a JSON object: \(result.raw.prefix(200))", sourceLocation: sourceLocation)
        return
    }
    var expected: Set<String> = [
        "commandId", "type", "email", "status", "code", "attempts", "durationMs", "source", "worker", "processedAt",
    ]
    switch (object["status"]?.string, object["type"]?.string) {
    case ("error", _):
        expected.formUnion(["error", "errorDetails", "stage"])
        #expect(object["error"]?.string != nil, "error must be a string", sourceLocation: sourceLocation)
        #expect(
            object["errorDetails"]?.string != nil || object["errorDetails"] == .null,
            "errorDetails must be a string or null",
            sourceLocation: sourceLocation
        )
        for key in ["error", "errorDetails"] {
            if let text = object[key]?.string {
                #expect(text.count <= 1024, "\(key) has \(text.count) characters", sourceLocation: sourceLocation)
            }
        }
        #expect(["validation", "api", "transport"].contains(object["stage"]?.string ?? ""), sourceLocation: sourceLocation)
    case ("ok", "account.upsert"):
        expected.formUnion(["maxJobs", "jwt", "jwtExpiresAt"])
        #expect((1...10).contains(object["maxJobs"]?.int ?? 0), sourceLocation: sourceLocation)
        if case .object(let jwt)? = object["jwt"] {
            #expect(Set(jwt.keys) == ["exp", "iat", "id"], "jwt keys \(jwt.keys.sorted())", sourceLocation: sourceLocation)
        } else {
            #expect(object["jwt"] == .null, sourceLocation: sourceLocation)
        }
    case ("ok", "account.delete"):
        #expect([200, 404].contains(object["code"]?.int ?? 0), sourceLocation: sourceLocation)
    default:
        Issue.record("unknown status/type: \(result.raw.prefix(200))", sourceLocation: sourceLocation)
    }
    #expect(Set(object.keys) == expected, "keys \(object.keys.sorted()), expected \(expected.sorted())", sourceLocation: sourceLocation)
    #expect(object.repeatedKeys.isEmpty, sourceLocation: sourceLocation)
    #expect((object["attempts"]?.int ?? -1) >= 0, sourceLocation: sourceLocation)
    #expect((object["durationMs"]?.int ?? -1) >= 0, sourceLocation: sourceLocation)
    #expect(object["commandId"]?.string != nil || object["commandId"] == .null, sourceLocation: sourceLocation)
    #expect(object["email"]?.string != nil || object["email"] == .null, sourceLocation: sourceLocation)
}
