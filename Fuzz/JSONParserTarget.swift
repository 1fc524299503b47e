// libFuzzer target: the strict JSON parser (Sources/StrictJSON) on any bytes.
// Built by scripts/fuzz.sh with swiftc -sanitize=fuzzer,address.
@_cdecl("LLVMFuzzerTestOneInput")
public func fuzzJSONParser(_ start: UnsafeRawPointer, _ count: Int) -> CInt {
    let bytes = Array(UnsafeRawBufferPointer(start: start, count: count))
    guard let value = try? JSONParser().parse(bytes) else { return 0 }
    // What parses serializes to text that parses back to the same text.
    let text = value.serialized
    guard let again = try? JSONParser().parse(Array(text.utf8)), again.serialized == text else {
        fatalError("round trip changed the value")
    }
    if case .number(let number)? = value["maxJobs"] {
        _ = number.int64
        _ = number.finiteDouble
    }
    return 0
}
