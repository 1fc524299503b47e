import Foundation

// libFuzzer target: the Retry-After header and retryAfter body parsers
// (Sources/UseAPI/RetryAfter.swift) on any text.
// Built by scripts/fuzz.sh with swiftc -sanitize=fuzzer,address.
@_cdecl("LLVMFuzzerTestOneInput")
public func fuzzRetryAfter(_ start: UnsafeRawPointer, _ count: Int) -> CInt {
    let text = String(decoding: UnsafeRawBufferPointer(start: start, count: count), as: UTF8.self)
    let now = Date(timeIntervalSince1970: 1_732_266_598)
    for wait in [RetryAfter.parseHeader(text, now: now), RetryAfter.parseISO8601(text, now: now)] {
        if let wait, wait < .zero || wait > RetryAfter.maximum {
            fatalError("a wait outside 0...maximum")
        }
    }
    return 0
}
