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
}
