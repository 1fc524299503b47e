import Foundation
import NIOCore
import NIOHTTP1
import TestSupport
import Testing

@testable import UseAPI

@Suite("Fuzz: useapi's answers and wait hints never trap or escape their bounds")
struct ResponseFuzzTests {
    @Test("fuzz Retry-After and retryAfter: nil, or a wait within 0...RetryAfter.maximum")
    func fuzzRetryAfter() {
        let fuzzer = Fuzzer(
            name: "RetryAfter",
            corpus: ["120", "1.5", "1e16", "Wed, 21 Oct 2015 07:28:00 GMT", "Sunday, 06-Nov-94 08:49:37 GMT", "Sun Nov  6 08:49:37 1994",
                "PT45S", "P1DT2H3M4.5S", "2024-11-22T09:10:28.500Z", "PT99999999999999999999S"]
        )
        let now = Date(timeIntervalSince1970: 1_732_266_598)
        fuzzer.run { bytes in
            let text = String(decoding: bytes, as: UTF8.self)
            for wait in [RetryAfter.parseHeader(text, now: now), RetryAfter.parseISO8601(text, now: now)] {
                if let wait { #expect(wait >= .zero && wait <= RetryAfter.maximum, "\(text) gave \(wait)") }
            }
        }
    }

    @Test("fuzz error answers and account answers: bounded hints, secrets masked, no trap")
    func fuzzAnswers() {
        let password = "Fuzz-Pw-1"
        let token = "fuzz-token-2"
        let secrets = SecretRedactor(secrets: [password, token])
        let fuzzer = Fuzzer(
            name: "UseAPI answers",
            corpus: [
                #"{"error":"Too busy","errorDetails":"try later","code":429,"retryAfter":"PT12S"}"#,
                #"{"error":"refused Fuzz-Pw-1","errorDetails":{"token":"fuzz-token-2"},"retryAfter":1e400}"#,
                #"{"email":"a@b.io","maxJobs":3,"jwt":{"exp":1e300,"iat":-1,"id":"j","token":"t"}}"#,
                "Configuration not found.",
            ]
        )
        fuzzer.run { bytes in
            let body = ByteBuffer(bytes: bytes)
            let header = String(decoding: bytes.prefix(40), as: UTF8.self)
            let error = UseAPIClient.responseError(status: 429, headers: ["Retry-After": header], body: body, redacting: secrets)
            if let wait = error.retryAfter { #expect(wait >= .zero && wait <= RetryAfter.maximum) }
            for text in [error.error, error.errorDetails ?? ""] {
                #expect(!text.contains(password) && !text.contains(token), "a secret survived: \(text)")
            }
            if let account = UseAPIAccount(body: bytes), let jwt = account.jwt {
                #expect(jwt.exp.isFinite && jwt.iat.isFinite)
            }
        }
    }
}
