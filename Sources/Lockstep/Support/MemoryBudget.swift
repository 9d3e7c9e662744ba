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

    /// Bytes this process may still allocate: the least of MemAvailable from /proc/meminfo (what
    /// Linux could hand out without swapping; else physical memory), what its address-space
    /// limit leaves (`ulimit -v`, `prlimit --as`), and what its cgroup v2 memory limit leaves
    /// (a SLURM job's --mem); nil when none can be read.
    public static func availableBytes() -> Int? {
        [nodeAvailableBytes(), addressSpaceLeft(), cgroupLeft()].compactMap { $0 }.min()
    }

    private static func nodeAvailableBytes() -> Int? {
        if let kib = field("MemAvailable:", of: "/proc/meminfo") { return kib * 1024 }
        let pages = sysconf(Int32(_SC_PHYS_PAGES)), size = sysconf(Int32(_SC_PAGESIZE))
        return pages > 0 && size > 0 ? pages * size : nil
    }

    /// RLIMIT_AS minus the address space already mapped (VmSize).
    private static func addressSpaceLeft() -> Int? {
        var limit = rlimit()
        guard getrlimit(Int32(RLIMIT_AS.rawValue), &limit) == 0, limit.rlim_cur != rlim_t.max,
              let cur = Int(exactly: limit.rlim_cur), let mappedKiB = field("VmSize:", of: "/proc/self/status") else { return nil }
        return max(cur - mappedKiB * 1024, 0)
    }

    /// memory.max minus memory.current of this process's cgroup (v2), when it has a limit.
    private static func cgroupLeft() -> Int? {
        guard let membership = readTextFile("/proc/self/cgroup"),
              let line = membership.split(separator: "\n").first(where: { $0.hasPrefix("0::") }) else { return nil }
        let folder = "/sys/fs/cgroup" + line.dropFirst(3).trimmingCharacters(in: .whitespaces)
        guard let maxText = readTextFile(folder + "/memory.max")?.trimmingCharacters(in: .whitespacesAndNewlines),
              let limit = Int(maxText),
              let current = readTextFile(folder + "/memory.current").flatMap({ Int($0.trimmingCharacters(in: .whitespacesAndNewlines)) })
        else { return nil }   // "max": no limit
        return max(limit - current, 0)
    }

    /// The first number after `key` in a /proc file of "Key:  value kB" lines.
    private static func field(_ key: String, of path: String) -> Int? {
        guard let text = readTextFile(path) else { return nil }
        for line in text.split(separator: "\n") where line.hasPrefix(key) {
            if let value = line.split(separator: " ").dropFirst().first.flatMap({ Int($0) }) { return value }
        }
        return nil
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
            throw LockstepError.usage("\(what) needs \(describe(bytes)) but this process has \(describe(available)) of memory available (the node's free memory, its address-space limit and its cgroup's, whichever is least): \(fix)")
        }
    }
}
