// Printing: only rank 0 prints progress; any rank may print an error, prefixed with its rank.
// Lines go straight to the file descriptors (no stdio buffering), so output from ranks that
// abort a moment later is never lost.
#if canImport(Glibc)
import Glibc
#endif

public enum Console {
    /// A progress line on standard output; the caller decides (by rank) whether to print at all.
    public static func info(_ line: String) { if !quiet { writeLine(line, to: 1) } }

    /// Progress lines are dropped while set (`lockstep bench` runs a training run silently).
    nonisolated(unsafe) private static var quiet = false

    /// Runs `body` with progress lines dropped (errors still print).
    public static func quietly<T>(_ body: () throws -> T) rethrows -> T {
        quiet = true
        defer { quiet = false }
        return try body()
    }

    /// One error line on standard error.
    public static func error(_ line: String) { writeLine("lockstep: " + line, to: 2) }

    private static func writeLine(_ line: String, to fd: Int32) {
        var bytes = Array(line.utf8)
        bytes.append(10)
        var offset = 0
        while offset < bytes.count {
            let n = bytes[offset...].withUnsafeBytes { write(fd, $0.baseAddress, $0.count) }
            if n <= 0 { return }
            offset += n
        }
    }
}
