// Nothing hangs: when one rank of a running job is killed (SIGKILL, mid-training), raises an
// error the others never see, stalls outside a collective, or is stopped (SIGSTOP), the whole
// job ends with a non-zero exit well within 30 s, naming the rank where it can, and no rank is
// left waiting in a collective.

import Foundation
import Testing

extension MultiRank {
    @Suite struct Faults {
        @Test func killedRankEndsTheWholeJob() throws {
            let dir = try Scratch.folder("fault-kill")
            try Scratch.dataset(at: dir + "/data.h5", train: 6000)
            // Long enough to be killed mid-run: 1,000,000 steps would take hours.
            try Scratch.job(at: "\(dir)/job.toml", data: dir + "/data.h5", out: "\(dir)/run", steps: 1_000_000)
            let marker = "\(dir)/job.toml"
            _ = Self.signalLastRank(SIGKILL, once: dir, marker: marker)
            let launch = try Launcher.run(ranks: 2, ["train", marker], timeout: 120)
            #expect(!launch.timedOut, "the job hung after a rank was killed")
            #expect(launch.exitCode != 0)
            // mpirun names the rank that died and how.
            #expect(launch.stderr.contains("signal 9"), "\(launch.stderr)")
            // The job ran for a while before the kill, then ended promptly.
            let lines = (try? String(contentsOfFile: "\(dir)/run/metrics.jsonl", encoding: .utf8))?.split(separator: "\n").count ?? 0
            #expect(lines > 20)
            #expect(launch.seconds < 90, "took \(launch.seconds) s")
        }

        /// Once the run in `dir` has logged more than 20 lines, sends `signal` to the last rank
        /// process of the job file `marker` (anchored at the binary: mpirun's own command line
        /// contains the same words).
        static func signalLastRank(_ signal: Int32, once dir: String, marker: String) -> Thread {
            let thread = Thread {
                let deadline = Date().addingTimeInterval(60)
                while Date() < deadline {
                    if let text = try? String(contentsOfFile: "\(dir)/run/metrics.jsonl", encoding: .utf8),
                       text.split(separator: "\n").count > 20 { break }
                    usleep(50_000)
                }
                if let victim = Signals.pids("^\(Launcher.binary) train \(marker)").last { kill(victim, signal) }
            }
            thread.start()
            return thread
        }

        /// A long synthetic job whose processes a test can find by `marker`.
        static func longJob(_ name: String) throws -> (dir: String, marker: String) {
            let dir = try Scratch.folder(name)
            try Scratch.dataset(at: dir + "/data.h5", train: 6000)
            try Scratch.job(at: "\(dir)/job.toml", data: dir + "/data.h5", out: "\(dir)/run", steps: 1_000_000)
            return (dir, "\(dir)/job.toml")
        }

        @Test func errorOnlyOneRankSeesAbortsTheJobNamingIt() throws {
            let (_, marker) = try Self.longJob("fault-error")
            let launch = try Launcher.run(ranks: 3, ["train", marker], timeout: 60, environment: ["LOCKSTEP_TEST_FAULT": "error:1:20"])
            #expect(!launch.timedOut)
            #expect(launch.exitCode != 0)
            #expect(launch.lockstepErrors.contains { $0.contains("rank 1:") && $0.contains("injected fault at step 20") }, "\(launch.stderr)")
            #expect(launch.seconds < 30, "took \(launch.seconds) s")
        }

        /// Rank 1 sleeps outside any collective at step 20; with run.stall_timeout = 2 its own
        /// watchdog names it and ends the job.
        @Test func stalledRankNamesItselfAndEndsTheJob() throws {
            let (_, marker) = try Self.longJob("fault-stall")
            let launch = try Launcher.run(ranks: 2, ["train", marker, "--set", "run.stall_timeout=2"], timeout: 60,
                                          environment: ["LOCKSTEP_TEST_FAULT": "stall:1:20"])
            #expect(!launch.timedOut)
            #expect(launch.exitCode != 0)
            #expect(launch.lockstepErrors.contains { $0.contains("rank 1: stalled") && $0.contains("step 20") }, "\(launch.stderr)")
            #expect(launch.seconds < 30, "took \(launch.seconds) s")
        }

        /// A rank stopped outright (SIGSTOP: its watchdog is frozen too) cannot speak; the rank
        /// waiting for it ends the job after the timeout plus the grace period (2 + 5 s).
        @Test func stoppedRankIsReportedByTheRankWaitingForIt() throws {
            let (dir, marker) = try Self.longJob("fault-sigstop")
            _ = Self.signalLastRank(SIGSTOP, once: dir, marker: marker)
            let launch = try Launcher.run(ranks: 2, ["train", marker, "--set", "run.stall_timeout=2"], timeout: 60)
            #expect(!launch.timedOut)
            #expect(launch.exitCode != 0)
            #expect(launch.lockstepErrors.contains { $0.contains("rank 0: waited") && $0.contains("never arrived") }, "\(launch.stderr)")
            #expect(launch.seconds < 30, "took \(launch.seconds) s")
        }
    }
}
