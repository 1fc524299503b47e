import Foundation
import NIOCore
import NIOHTTP1
import Testing

@testable import UseAPI

@Suite("Reading useapi's answers")
struct ResponseParsingTests {
    let now = Date(timeIntervalSince1970: 1_732_266_598)

    @Test("Retry-After as seconds and as an HTTP date")
    func retryAfterHeader() {
        #expect(RetryAfter.parseHeader("120", now: now) == .seconds(120))
        #expect(RetryAfter.parseHeader(" 1.5 ", now: now) == .milliseconds(1500))
        let date = Date(timeIntervalSince1970: 1_732_266_598 + 30)
        let formatter = DateFormatter()
        formatter.locale = Locale(identifier: "en_US_POSIX")
        formatter.timeZone = TimeZone(identifier: "GMT")
        formatter.dateFormat = "EEE, dd MMM yyyy HH:mm:ss 'GMT'"
        #expect(RetryAfter.parseHeader(formatter.string(from: date), now: now) == .seconds(30))
        #expect(RetryAfter.parseHeader("soon", now: now) == nil)
        // A date in the past means "now", never a negative wait.
        #expect(RetryAfter.parseHeader("Wed, 21 Oct 2015 07:28:00 GMT", now: now) == .zero)
    }

    @Test("a date hint with bytes outside printable ASCII is ignored, never handed to DateFormatter (which trapped on it)")
    func nonASCIIDates() {
        // libFuzzer's crash input: DateFormatter stopped the process with "Incorrect range CFRange".
        let crash = String(decoding: [0x53, 0x75, 0xDF, 0xB1, 0x90, 0x89, 0x20, 0x20, 0x37, 0x20, 0x30, 0x3A, 0x34, 0x39, 0x3A, 0x33, 0x37, 0x20, 0x31, 0x35] as [UInt8], as: UTF8.self)
        #expect(RetryAfter.parseHeader(crash, now: now) == nil)
        #expect(RetryAfter.parseHeader("Wed, 21 Oct 2015 07:28:00 GMT\u{7F}", now: now) == nil)
        #expect(RetryAfter.parseISO8601("2024-11-22T09:10:28Z\u{300}", now: now) == nil)
        #expect(RetryAfter.parseISO8601(crash, now: now) == nil)
    }

    @Test("hint dates are read without ICU, as DateFormatter read them: IMF-fixdate, RFC 850, asctime, ISO-8601 with offsets")
    func hintDates() {
        // Sun, 06 Nov 1994 08:49:37 GMT is 784111777 (RFC 9110's example).
        #expect(UntrustedDate.http("Sun, 06 Nov 1994 08:49:37 GMT") == 784_111_777)
        #expect(UntrustedDate.http("Sunday, 06-Nov-94 08:49:37 GMT") == 784_111_777)
        #expect(UntrustedDate.http("Sun Nov  6 08:49:37 1994") == 784_111_777)
        #expect(UntrustedDate.http("Thu, 29 Feb 2024 23:59:59 GMT") == 1_709_251_199)
        #expect(UntrustedDate.iso8601("1994-11-06T08:49:37Z") == 784_111_777)
        #expect(UntrustedDate.iso8601("1994-11-06T10:49:37+02:00") == 784_111_777)
        #expect(UntrustedDate.iso8601("1994-11-06T03:19:37-0530") == 784_111_777)
        #expect(UntrustedDate.iso8601("1994-11-06T08:49:37.25Z") == 784_111_777.25)
        for malformed in [
            "Sun, 06 Nov 1994 08:49:37 UTC", "Sun, 31 Feb 1994 08:49:37 GMT", "Sun, 06 Nov 1994 24:00:00 GMT", "Sun, 6 Nov 1994 08:49:37 GMT",
            "Sun Nov 6 08:49:37 1994", "1994-13-06T08:49:37Z", "1994-11-06T08:49:37", "1994-11-06T08:49:37.Z",
            "1994-11-06T08:49:37.1234567890Z", "1994-11-06T08:49:37+24:00", "9999-99-99T99:99:99Z", "",
        ] {
            #expect(UntrustedDate.http(malformed) == nil && UntrustedDate.iso8601(malformed) == nil, "\(malformed)")
        }
        let formatter = ISO8601DateFormatter()
        var random = SystemRandomNumberGenerator()
        for _ in 0..<2_000 {
            let date = Date(timeIntervalSince1970: Double(Int64.random(in: 0...253_402_300_799, using: &random)))
            #expect(UntrustedDate.iso8601(formatter.string(from: date)) == date.timeIntervalSince1970)
        }
    }

    @Test("retryAfter in the body: an ISO-8601 timestamp or duration")
    func retryAfterBody() {
        #expect(RetryAfter.parseISO8601("2024-11-22T09:10:28Z", now: now) == .seconds(30))
        #expect(RetryAfter.parseISO8601("2024-11-22T09:10:28.500Z", now: now) == .milliseconds(30_500))
        #expect(RetryAfter.parseISO8601("PT45S", now: now) == .seconds(45))
        #expect(RetryAfter.parseISO8601("PT1M30S", now: now) == .seconds(90))
        #expect(RetryAfter.parseISO8601("later", now: now) == nil)
    }

    @Test("error bodies: JSON, the header over the body field, plain text, malformed JSON, empty")
    func errorBodies() {
        let jsonBody = ByteBuffer(string: #"{"error":"Too busy","errorDetails":"try later","code":429,"retryAfter":"PT12S"}"#)
        let fromBody = UseAPIClient.responseError(status: 429, headers: [:], body: jsonBody)
        #expect(fromBody.error == "Too busy")
        #expect(fromBody.errorDetails == "try later")
        #expect(fromBody.retryAfter == .seconds(12))

        let fromHeader = UseAPIClient.responseError(status: 429, headers: ["Retry-After": "3"], body: jsonBody)
        #expect(fromHeader.retryAfter == .seconds(3))

        let plain = UseAPIClient.responseError(status: 404, headers: [:], body: ByteBuffer(string: "Configuration not found.\n"))
        #expect(plain.error == "Configuration not found.")

        // The seed's own 401 example is not valid JSON.
        let seed401 = #"{ "error": "Unauthorized", "Wrong username/password combination.", "code": 401 }"#
        let malformed = UseAPIClient.responseError(status: 401, headers: [:], body: ByteBuffer(string: seed401))
        #expect(malformed.statusCode == 401)
        #expect(malformed.error.contains("Wrong username/password combination."))

        let empty = UseAPIClient.responseError(status: 503, headers: [:], body: ByteBuffer())
        #expect(empty.error == "Service Unavailable")
        let nonStandard = UseAPIClient.responseError(status: 596, headers: [:], body: ByteBuffer())
        #expect(nonStandard.statusCode == 596)
        #expect(!nonStandard.error.isEmpty)
    }

    @Test(
        "absurd Retry-After headers are clamped or ignored, never trusted",
        arguments: [
            ("1e16", RetryAfter.maximum), ("99999999999999999999", RetryAfter.maximum),
            ("1e999", RetryAfter.maximum), (String(repeating: "9", count: 120), RetryAfter.maximum),
            ("Fri, 31 Dec 9999 23:59:59 GMT", RetryAfter.maximum),
            ("-5", nil), ("nan", nil), ("inf", nil), ("0x10", nil), ("", nil), ("1.2.3", nil), ("+", nil),
            (String(repeating: "9", count: 200), nil),
        ] as [(String, Duration?)]
    )
    func absurdRetryAfterHeader(value: String, expected: Duration?) {
        #expect(RetryAfter.parseHeader(value, now: now) == expected)
    }

    @Test(
        "absurd retryAfter body values are clamped or ignored, never trusted",
        arguments: [
            ("PT99999999999999999999S", RetryAfter.maximum), ("P99999999999D", RetryAfter.maximum),
            ("PT\(String(repeating: "9", count: 100))H", RetryAfter.maximum),
            ("P", nil), ("PT", nil), ("P1Y", nil), ("PT1.2.3S", nil), ("PTS", nil),
            ("P1DT", nil), ("PT-5S", nil), ("P1TT1S", nil),
        ] as [(String, Duration?)]
    )
    func absurdRetryAfterBody(value: String, expected: Duration?) {
        #expect(RetryAfter.parseISO8601(value, now: now) == expected)
    }

    @Test("a hint from a 429 body or header never exceeds RetryAfter.maximum, numbers included")
    func absurdHintsInAnswers() {
        let header = UseAPIClient.responseError(status: 429, headers: ["Retry-After": "1e16"], body: ByteBuffer())
        #expect(header.retryAfter == RetryAfter.maximum)
        let body = UseAPIClient.responseError(status: 429, headers: [:], body: ByteBuffer(string: #"{"retryAfter":"PT99999999999999999999S"}"#))
        #expect(body.retryAfter == RetryAfter.maximum)
        let number = UseAPIClient.responseError(status: 429, headers: [:], body: ByteBuffer(string: #"{"retryAfter":1e400}"#))
        #expect(number.retryAfter == RetryAfter.maximum)
        let negative = UseAPIClient.responseError(status: 429, headers: [:], body: ByteBuffer(string: #"{"retryAfter":-3}"#))
        #expect(negative.retryAfter == nil)
    }

    @Test("error fields of any JSON type become text; a missing errorDetails stays nil")
    func errorFieldTypes() {
        let object = UseAPIClient.responseError(
            status: 400,
            headers: [:],
            body: ByteBuffer(string: #"{"error":{"reason":"bad"},"errorDetails":["a",1e400],"note":1e400}"#)
        )
        #expect(object.error == #"{"reason":"bad"}"#)
        #expect(object.errorDetails == #"["a",1e400]"#)
        let none = UseAPIClient.responseError(status: 400, headers: [:], body: ByteBuffer(string: #"{"error":"Runway rejected the configuration","code":400}"#))
        #expect(none.error == "Runway rejected the configuration")
        #expect(none.errorDetails == nil)
        let nullError = UseAPIClient.responseError(status: 409, headers: [:], body: ByteBuffer(string: #"{"error":null}"#))
        #expect(nullError.error == "Conflict")
    }

    @Test("account answers: absurd or mistyped numbers never fail a 2xx or trap")
    func accountAnswers() throws {
        let absurd = try #require(
            UseAPIAccount(body: Array(#"{"email":"a@b.io","maxJobs":1e400,"jwt":{"exp":1e300,"iat":-1e300,"id":99999999999999999999,"token":"t"}}"#.utf8))
        )
        #expect(absurd.maxJobs == nil)
        #expect(absurd.jwt?.exp == 1e300)
        #expect(absurd.jwt?.id == .double(1e20))
        let unreadableJWT = try #require(UseAPIAccount(body: Array(#"{"maxJobs":3,"jwt":{"exp":1e400,"iat":1}}"#.utf8)))
        #expect(unreadableJWT.jwt == nil)
        #expect(unreadableJWT.maxJobs == 3)
        let stringy = try #require(UseAPIAccount(body: Array(#"{"maxJobs":"3","jwt":{"exp":"soon","iat":1}}"#.utf8)))
        #expect(stringy.maxJobs == nil && stringy.jwt == nil)
        #expect(UseAPIAccount(body: Array("[1]".utf8)) == nil)
        #expect(UseAPIAccount(body: Array("".utf8)) == nil)
    }
}
