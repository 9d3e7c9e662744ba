// Sizes that come from input (a dataset's shape, a layer's units) are checked here before
// anything is allocated: with checked arithmetic, and against the memory this node has, so a
// file or a model too large for the machine is a one-line usage error, not an allocation crash.

#if canImport(Glibc)
import Glibc
#endif

public enum MemoryBudget {
    /// The product of `factors`, or nil if it overflows an Int.
    public static func product(_ factors: [Int]) -> Int? {
        var total = 1
        for f in factors {
            let (p, overflow) = total.multipliedReportingOverflow(by: f)
            guard !overflow, f >= 0 else { return nil }
            total = p
        }
        return total
    }

    /// Bytes this process may still allocate: MemAvailable from /proc/meminfo (what Linux could
    /// hand out without swapping), else physical memory; nil when neither can be read.
    public static func availableBytes() -> Int? {
        if let text = readTextFile("/proc/meminfo") {
            for line in text.split(separator: "\n") where line.hasPrefix("MemAvailable:") {
                let fields = line.split(separator: " ")
                if fields.count >= 2, let kib = Int(fields[1]) { return kib * 1024 }
            }
        }
        let pages = sysconf(Int32(_SC_PHYS_PAGES)), size = sysconf(Int32(_SC_PAGESIZE))
        return pages > 0 && size > 0 ? pages * size : nil
    }

    /// "1.5 GiB", "12.0 MiB", for messages.
    public static func describe(_ bytes: Int) -> String {
        let units = ["bytes", "KiB", "MiB", "GiB", "TiB", "PiB", "EiB"]
        var value = Double(bytes)
        var unit = 0
        while value >= 1024 && unit < units.count - 1 { value /= 1024; unit += 1 }
        return unit == 0 ? "\(bytes) bytes" : "\(format(value, 1)) \(units[unit])"
    }

    /// Throws `fix`-bearing usage error unless `count` elements of `elementSize` bytes (nil:
    /// the count overflowed) fit in the memory available now.
    public static func require(count: Int?, elementSize: Int, for what: String, fix: String) throws {
        guard let count, let bytes = product([count, elementSize]) else {
            throw LockstepError.usage("\(what) has more elements than this machine can address: \(fix)")
        }
        if let available = availableBytes(), bytes > available {
            throw LockstepError.usage("\(what) needs \(describe(bytes)) but this node has \(describe(available)) of memory available: \(fix)")
        }
    }
}
