import Foundation
import Testing

@testable import AccountWorker

@Suite("UTC timestamps")
struct UTCTimestampTests {
    static let style = Date.ISO8601FormatStyle(includingFractionalSeconds: true)

    @Test("the text equals Date.ISO8601FormatStyle's for edge dates and 20,000 random ones in years 1970-9999")
    func matchesFormatStyle() {
        var seconds: [Double] = [
            0, 0.0005, 0.999, 1.9995, 59.9999, 951_782_400, 951_868_799.999, 1_735_689_600.123,
            CommandResult.latestTimestamp, 4_107_542_400, 253_402_300_799, 1_764_410_400.0009999,
        ]
        var random = SystemRandomNumberGenerator()
        for _ in 0..<20_000 {
            seconds.append(Double.random(in: 0...CommandResult.latestTimestamp, using: &random))
        }
        for value in seconds {
            let date = Date(timeIntervalSince1970: value)
            #expect(UTCTimestamp.string(from: date) == Self.style.format(date), "\(value)")
        }
    }

    @Test("dates before 1582 are proleptic Gregorian, as ISO 8601 says")
    func prolepticGregorian() {
        #expect(UTCTimestamp.string(from: Date(timeIntervalSince1970: -62_167_219_200)) == "0000-01-01T00:00:00.000Z")
        #expect(UTCTimestamp.string(from: Date(timeIntervalSince1970: -0.0005)) == "1969-12-31T23:59:59.999Z")
    }
}
