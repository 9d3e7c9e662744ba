// `run.stall_timeout`: a watchdog thread on every rank that ends the job when training stops
// making progress. The communicator marks when each collective starts and ends; the watchdog
// reads those marks (atomics, no MPI calls, no locks) and tells two cases apart:
//   - this rank has been outside any collective for longer than the timeout: it is the rank the
//     others wait for, so it names itself and aborts the job;
//   - this rank has been waiting inside a collective for longer than the timeout plus a grace
//     period: some rank never arrived (and, if it could, it has already named itself), so this
//     rank aborts the job saying where it waited.
// The grace period lets the stalled rank speak first when its watchdog is still alive; a rank
// that is stopped or wedged entirely is then reported by the ranks waiting for it.

import Synchronization
#if canImport(Glibc)
import Glibc
#endif

/// Where a rank is, for the watchdog: written by the main thread, read by the watchdog thread.
public final class ProgressMarks: Sendable {
    /// Monotonic nanoseconds when the current collective began; 0 outside collectives.
    let collectiveSince = Atomic<UInt64>(0)
    /// Monotonic nanoseconds of the last progress (a collective ended, a step began).
    let lastProgress = Atomic<UInt64>(0)
    /// The step being worked on (1-based), for messages.
    let step = Atomic<Int>(0)

    public init() {}

    func enterCollective() { collectiveSince.store(Clock.nanoseconds(), ordering: .relaxed) }

    func leaveCollective() {
        let now = Clock.nanoseconds()
        collectiveSince.store(0, ordering: .relaxed)
        lastProgress.store(now, ordering: .relaxed)
    }

    /// The training loop starts `step`.
    public func begin(step: Int) {
        self.step.store(step, ordering: .relaxed)
        lastProgress.store(Clock.nanoseconds(), ordering: .relaxed)
    }
}

public final class StallWatchdog: @unchecked Sendable {
    private let comm: Communicator
    private let timeout: Double
    private let grace: Double
    private let stopped = Atomic<Bool>(false)

    /// Starts watching `comm`'s marks; `timeout` in seconds (> 0).
    public init(comm: Communicator, timeout: Double) {
        self.comm = comm
        self.timeout = timeout
        grace = max(5, timeout / 5)
        comm.marks.lastProgress.store(Clock.nanoseconds(), ordering: .relaxed)
        // A plain pthread (no Foundation in the library): it only reads atomics and may abort.
        var thread = pthread_t()
        let context = Unmanaged.passRetained(self).toOpaque()
        pthread_create(&thread, nil, { context in
            let watchdog = Unmanaged<StallWatchdog>.fromOpaque(context!).takeRetainedValue()
            watchdog.watch()
            return nil
        }, context)
        pthread_detach(thread)
    }

    /// Stops watching (the loop is done); the thread ends within one check interval.
    public func stop() { stopped.store(true, ordering: .relaxed) }

    private func watch() {
        let marks = comm.marks
        while !stopped.load(ordering: .relaxed) {
            usleep(200_000)
            if stopped.load(ordering: .relaxed) { return }
            let now = Clock.nanoseconds()
            let step = marks.step.load(ordering: .relaxed)
            let since = marks.collectiveSince.load(ordering: .relaxed)
            if since != 0 {
                let waited = Self.seconds(from: since, to: now)
                if waited > timeout + grace {
                    comm.abort("waited \(format(waited, 1)) s in a collective at step \(step) for ranks that never arrived (run.stall_timeout = \(format(timeout, 0)) s); a rank that is still alive has named itself above, one that is not is stopped or hung")
                }
            } else {
                let idle = Self.seconds(from: marks.lastProgress.load(ordering: .relaxed), to: now)
                if idle > timeout {
                    comm.abort("stalled: \(format(idle, 1)) s at step \(step) without reaching a collective (run.stall_timeout = \(format(timeout, 0)) s); the other ranks are waiting for this one")
                }
            }
        }
    }

    /// Seconds from `start` to `now`, 0 when the main thread stamped `start` after this thread
    /// read `now` (the marks are read after the clock; unsigned wrap-around once read that as
    /// 585 years of stall and aborted a healthy run).
    public static func seconds(from start: UInt64, to now: UInt64) -> Double {
        now > start ? Double(now - start) * 1e-9 : 0
    }
}
