#if canImport(Glibc)
import Glibc
#endif
import Foundation

/// The `process_*` metrics every official Prometheus client exports, read
/// from `/proc/self` at scrape time (Linux; elsewhere none).
enum ProcessMetrics {
    static func exposition() -> String {
        #if os(Linux)
        var lines: [String] = []
        func add(_ name: String, _ type: String, _ help: String, _ value: Double?) {
            guard let value else { return }
            lines.append("# HELP \(name) \(help)")
            lines.append("# TYPE \(name) \(type)")
            lines.append("\(name) \(format(value))")
        }
        let stat = procStat()
        let ticks = Double(sysconf(Int32(_SC_CLK_TCK)))
        let pageSize = Double(sysconf(Int32(_SC_PAGESIZE)))
        add(
            "process_cpu_seconds_total", "counter", "Total user and system CPU time spent in seconds.",
            stat.map { (Double($0.utime) + Double($0.stime)) / ticks }
        )
        add("process_virtual_memory_bytes", "gauge", "Virtual memory size in bytes.", stat.map { Double($0.vsize) })
        add("process_resident_memory_bytes", "gauge", "Resident memory size in bytes.", stat.map { Double($0.rss) * pageSize })
        add(
            "process_start_time_seconds", "gauge", "Start time of the process since unix epoch in seconds.",
            stat.flatMap { stat in bootTime().map { $0 + Double(stat.startTicks) / ticks } }
        )
        add(
            "process_open_fds", "gauge", "Number of open file descriptors.",
            (try? FileManager.default.contentsOfDirectory(atPath: "/proc/self/fd")).map { Double($0.count) }
        )
        add("process_max_fds", "gauge", "Maximum number of open file descriptors.", maxFileDescriptors())
        return lines.map { $0 + "\n" }.joined()
        #else
        return ""
        #endif
    }

    static func format(_ value: Double) -> String {
        value == value.rounded() && abs(value) < 1e15 ? String(Int64(value)) : String(value)
    }

    struct Stat {
        var utime: UInt64
        var stime: UInt64
        var startTicks: UInt64
        var vsize: UInt64
        var rss: UInt64
    }

    /// `/proc/self/stat`: fields after the command name, which is in
    /// parentheses and may itself hold spaces or parentheses.
    static func procStat() -> Stat? {
        guard let text = try? String(contentsOfFile: "/proc/self/stat", encoding: .utf8),
            let close = text.lastIndex(of: ")")
        else { return nil }
        // Fields from 3 (state) on; field N is at index N - 3.
        let fields = text[text.index(after: close)...].split(separator: " ").map(String.init)
        func field(_ number: Int) -> UInt64? {
            number - 3 < fields.count ? UInt64(fields[number - 3].trimmingCharacters(in: .whitespacesAndNewlines)) : nil
        }
        guard let utime = field(14), let stime = field(15), let start = field(22), let vsize = field(23), let rss = field(24) else {
            return nil
        }
        return Stat(utime: utime, stime: stime, startTicks: start, vsize: vsize, rss: rss)
    }

    static func bootTime() -> Double? {
        guard let text = try? String(contentsOfFile: "/proc/stat", encoding: .utf8) else { return nil }
        for line in text.split(separator: "\n") where line.hasPrefix("btime ") {
            return Double(line.dropFirst("btime ".count).trimmingCharacters(in: .whitespaces))
        }
        return nil
    }

    static func maxFileDescriptors() -> Double? {
        guard let text = try? String(contentsOfFile: "/proc/self/limits", encoding: .utf8) else { return nil }
        for line in text.split(separator: "\n") where line.hasPrefix("Max open files") {
            let fields = line.dropFirst("Max open files".count).split(separator: " ")
            guard let soft = fields.first else { return nil }
            return soft == "unlimited" ? nil : Double(soft)
        }
        return nil
    }
}
