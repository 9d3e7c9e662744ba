// Monotonic wall time in seconds, for throughput and timing logs.
#if canImport(Glibc)
import Glibc
#endif

public enum Clock {
    public static func now() -> Double {
        var ts = timespec()
        clock_gettime(CLOCK_MONOTONIC, &ts)
        return Double(ts.tv_sec) + Double(ts.tv_nsec) * 1e-9
    }
}
