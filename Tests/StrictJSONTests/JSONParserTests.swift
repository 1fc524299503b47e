import StrictJSON
import TestSupport
import Testing

@Suite("StrictJSON: one JSON value, strictly, from untrusted bytes")
struct JSONParserTests {
    func parse(_ text: String) throws(JSONParseError) -> JSONValue {
        try JSONParser().parse(Array(text.utf8))
    }

    @Test("values of every kind; numbers keep their text whatever their size")
    func values() throws {
        let value = try parse(#" {"s":"a\"b\\c\/d\u00e9\ud83d\ude00","n":-12.5e+3,"big":1e400,"huge":99999999999999999999,"t":true,"f":false,"z":null,"a":[1,[2],{}]} "#)
        #expect(value["s"]?.string == "a\"b\\c/dé😀")
        #expect(value["n"]?.number?.text == "-12.5e+3")
        #expect(value["n"]?.double == -12_500)
        #expect(value["big"]?.number?.text == "1e400")
        #expect(value["big"]?.double == nil, "1e400 is no finite Double")
        #expect(value["huge"]?.number?.int64 == nil)
        #expect(value["t"]?.bool == true && value["f"]?.bool == false && value["z"] == .null)
        #expect(value["a"] == .array([.number(try #require(parse("1").number)), .array([try parse("2")]), .object(JSONObject())]))
    }

    @Test(
        "whole numbers within Int64 are integers: 5, 5.0, 5e0; not 5.5, 2^63 or 1e400",
        arguments: [
            ("5", 5), ("5.0", 5), ("5e0", 5), ("-0", 0), ("9223372036854775807", Int64.max), ("-9223372036854775808", Int64.min),
            ("5.5", nil), ("9223372036854775808", nil), ("1e19", nil), ("1e400", nil), ("-1e400", nil), ("1e-400", nil),
            ("10.000000000000000001", nil), ("0.5e1", 5), ("1E1", 10), ("-12.50e1", -125), ("0.0", 0), ("0e999999999", 0),
            ("9.223372036854775807e18", Int64.max), ("123456789012345678901234567890e-20", nil), ("1000e-3", 1),
        ] as [(String, Int64?)]
    )
    func integers(text: String, expected: Int64?) throws {
        #expect(try parse(text).number?.int64 == expected)
    }

    @Test("repeated keys are reported, the first value is the one looked up")
    func repeatedKeys() throws {
        let object = try #require(try parse(#"{"id":"a","x":1,"id":"b","id":"c","x":2}"#).object)
        #expect(object["id"]?.string == "a")
        #expect(object.repeatedKeys == ["id", "x"])
        #expect(try parse(#"{"a":{"b":1,"b":2}}"#).object?.repeatedKeys == [], "nested repeats belong to the nested object")
    }

    @Test(
        "what is not one strict JSON value is rejected",
        arguments: [
            "", " ", "{", "}", "{\"a\":1,}", "[1,]", "[1 2]", "{\"a\" 1}", "{a:1}", "'s'", "01", "1.", ".5", "-", "1e", "1e+",
            "+1", "NaN", "Infinity", "tru", "nul", "\"\\x\"", "\"\\u12\"", "\"\\ud800\"", "\"\\udc00\"", "\"\\ud800\\u0041\"",
            "\"a\u{01}b\"", "\"unterminated", "{} {}", "[] x", "\u{FEFF}{}", "{\"a\":1}}",
        ]
    )
    func rejected(text: String) {
        #expect(throws: JSONParseError.self) { try parse(text) }
    }

    @Test("invalid UTF-8 inside a string is rejected, escaped or not")
    func invalidUTF8() {
        for bytes in [[0x22, 0xFF, 0x22], [0x22, 0xC3, 0x22], [0x22, 0x5C, 0x6E, 0xED, 0xA0, 0x80, 0x22], [0x7B, 0x22, 0xC0, 0xAF, 0x22, 0x3A, 0x31, 0x7D]]
            as [[UInt8]]
        {
            #expect(throws: JSONParseError.self) { try JSONParser().parse(bytes) }
        }
    }

    @Test("nesting is bounded: deeper containers are validated without recursion and kept as text, never a stack overflow")
    func depth() throws {
        let deep = String(repeating: "[", count: 100_000) + String(repeating: "]", count: 100_000)
        let value = try parse(deep)
        #expect(value.serialized == deep)
        var level = value
        var depth = 0
        while case .array(let elements) = level, let first = elements.first {
            level = first
            depth += 1
        }
        #expect(depth == 128)
        guard case .nested(let text) = level else {
            Issue.record("the innermost built value is not .nested")
            return
        }
        #expect(text.utf8.count == 2 * 99_872 && text.hasPrefix("[[") && text.hasSuffix("]]"))
        let objects = String(repeating: #"{"a":"#, count: 300) + #"[1,"x",{"b":null},true]"# + String(repeating: "}", count: 300)
        #expect(try parse(objects).serialized == objects)
        for broken in [
            String(repeating: "[", count: 200) + String(repeating: "]", count: 199),
            String(repeating: "[", count: 200) + "}" + String(repeating: "]", count: 199),
            String(repeating: #"{"a":"#, count: 200) + "1,}" + String(repeating: "}", count: 199),
            String(repeating: "[", count: 200) + "1 2" + String(repeating: "]", count: 200),
            String(repeating: "[", count: 200) + "{1:2}" + String(repeating: "]", count: 200),
            String(repeating: "[", count: 200) + "[,]" + String(repeating: "]", count: 200),
        ] {
            #expect(throws: JSONParseError.self) { try parse(broken) }
        }
    }

    @Test("serialized text parses back to the same value")
    func roundTrip() throws {
        let value = try parse(#"{"b":[1e400,"x\n\u0001\"",null,true],"a":{"c":-0.5}}"#)
        #expect(value.serialized == #"{"a":{"c":-0.5},"b":[1e400,"x\n\u0001\"",null,true]}"#)
        #expect(try JSONParser().parse(Array(value.serialized.utf8)) == value)
    }

    @Test("fuzz: no input traps the parser; what parses serializes and parses back to itself")
    func fuzz() {
        let fuzzer = Fuzzer(
            name: "JSONParser",
            corpus: [
                #"{"id":"c-1","email":"alice@example.com","password":"pw","maxJobs":5,"note":1e400}"#,
                #"{"error":"Too busy","errorDetails":{"a":[1,2.5,"\u00e9"]},"retryAfter":"PT12S","code":429}"#,
                #"{"email":"a@b.io","maxJobs":3,"jwt":{"exp":1732266598.123,"iat":1729674598,"id":1001,"token":"t"}}"#,
                #"[true,false,null,"\ud83d\ude00",-0.0e-0]"#,
            ]
        )
        fuzzer.run { bytes in
            guard let value = try? JSONParser().parse(bytes) else { return }
            // Repeated keys are dropped by serializing, so compare the texts.
            let reparsed = try? JSONParser().parse(Array(value.serialized.utf8))
            #expect(reparsed?.serialized == value.serialized, "round trip changed \(String(decoding: bytes, as: UTF8.self))")
        }
    }
}
