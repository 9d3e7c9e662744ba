// Pre-timeout checkpoint: SIGUSR1 or SIGTERM reaching mpirun or any one rank makes every rank
// stop at the same step boundary, write a checkpoint and exit 75; --resume then ends exactly
// where an uninterrupted run ends (bitwise).

import Foundation
import Lockstep
import Testing

extension MultiRank {
    @Suite struct Signals {
        /// Long enough that a signal sent once the first checkpoint exists lands mid-run even on a
        /// loaded machine (steps take tens of µs: 8000 left a window of about 0.1 s).
        static let steps = 40_000
        static let checkpointEvery = 5000

        static func writeJob(_ dir: String, _ name: String) throws {
            let text = """
            [run]
            seed = 5
            steps = \(steps)
            out = "\(dir)/\(name)"
            log_every = 250
            eval_every = \(checkpointEvery)
            checkpoint_every = \(checkpointEvery)

            [data]
            file = "\(dir)/data.h5"
            normalization = "none"

            [model]
            layers = [{ units = 32 }, { units = 4 }]

            [batch]
            global = 24

            [optimizer]
            lr = 0.05
            momentum = 0.9

            """
            try text.write(toFile: "\(dir)/\(name).toml", atomically: true, encoding: .utf8)
        }

        /// Pids whose command line matches the extended regex `pattern`.
        static func pids(_ pattern: String) -> [Int32] {
            let pgrep = Process()
            pgrep.executableURL = URL(fileURLWithPath: "/usr/bin/pgrep")
            pgrep.arguments = ["-f", pattern]
            let out = Pipe()
            pgrep.standardOutput = out
            try? pgrep.run()
            pgrep.waitUntilExit()
            return String(decoding: out.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self).split(separator: "\n").compactMap { Int32($0) }
        }

        /// Once the run has written its first checkpoint (step 5000 of 40000), sends `signal` to
        /// the processes `target` picks.
        static func signal(_ signal: Int32, when runDir: String, to target: @escaping @Sendable () -> [Int32]) -> Thread {
            let thread = Thread {
                let deadline = Date().addingTimeInterval(60)
                while Date() < deadline && Checkpoint.list(in: "\(runDir)/checkpoints").isEmpty { usleep(5_000) }
                for pid in target() { kill(pid, signal) }
            }
            thread.start()
            return thread
        }

        static func expectResumeMatchesStraightRun(_ dir: String, interrupted name: String, ranks: Int?) throws {
            // The last line logged is the step the job stopped at, and its checkpoint is the newest.
            let stopped = try Scratch.metrics("\(dir)/\(name)").compactMap { $0["step"] as? Int }.max() ?? 0
            #expect(stopped > checkpointEvery && stopped < steps, "stopped mid-run, at \(stopped)")
            let checkpoints = Checkpoint.list(in: "\(dir)/\(name)/checkpoints")
            #expect(checkpoints.last.map { $0.hasSuffix(Checkpoint.fileName(step: stopped)) } == true, "a checkpoint at the stop: \(checkpoints)")
            let resumed = try Launcher.run(ranks: ranks, ["train", "\(dir)/\(name).toml", "--resume"])
            #expect(resumed.exitCode == 0, "\(resumed.stderr)")
            let straight = try Launcher.run(ranks: ranks, ["train", "\(dir)/straight.toml"])
            #expect(straight.exitCode == 0, "\(straight.stderr)")
            let a = try Scratch.checkpointTensors(Scratch.checkpoint("\(dir)/straight", step: steps))
            let b = try Scratch.checkpointTensors(Scratch.checkpoint("\(dir)/\(name)", step: steps))
            #expect(!a.isEmpty && a.count == b.count)
            for (path, values) in a {
                #expect(bitPatterns(values) == bitPatterns(b[path] ?? []), "\(path) differs after signal + resume")
            }
        }

        /// SLURM's --signal=B:USR1 path: the batch script forwards SIGUSR1 to mpirun, which
        /// forwards it to every rank.
        @Test func usr1ToMpirunCheckpointsAndExits75() throws {
            let dir = try Scratch.folder("signal-mpirun")
            try Scratch.dataset(at: dir + "/data.h5", train: 6000)
            for name in ["interrupted", "straight"] { try Self.writeJob(dir, name) }
            let marker = "\(dir)/interrupted.toml"
            let sender = Self.signal(SIGUSR1, when: "\(dir)/interrupted") { Self.pids("mpirun .* \(marker)$") }
            let launch = try Launcher.run(ranks: 2, ["train", marker], timeout: 60, deliverSignals: true)
            while sender.isExecuting { usleep(10_000) }
            #expect(launch.exitCode == ExitStatus.interrupted, "\(launch.stderr)")
            #expect(launch.stdout.contains("stopped by SIGUSR1 after step"), "\(launch.stdout)")
            try Self.expectResumeMatchesStraightRun(dir, interrupted: "interrupted", ranks: 2)
        }

        /// A signal only one rank sees (SIGTERM to rank 1's process): the flag rides in the
        /// step's allreduce, so rank 0 stops at the same step and speaks for the job.
        @Test func sigtermToOneRankStopsEveryRank() throws {
            let dir = try Scratch.folder("signal-one-rank")
            try Scratch.dataset(at: dir + "/data.h5", train: 6000)
            for name in ["interrupted", "straight"] { try Self.writeJob(dir, name) }
            let marker = "\(dir)/interrupted.toml"
            let sender = Self.signal(SIGTERM, when: "\(dir)/interrupted") {
                Array(Self.pids("^\(Launcher.binary) train \(marker)$").suffix(1))
            }
            let launch = try Launcher.run(ranks: 3, ["train", marker], timeout: 60)
            while sender.isExecuting { usleep(10_000) }
            #expect(launch.exitCode == ExitStatus.interrupted, "\(launch.stderr)")
            #expect(launch.stdout.contains("stopped by a signal to another rank after step")
                    || launch.stdout.contains("stopped by SIGTERM after step"), "\(launch.stdout)")
            try Self.expectResumeMatchesStraightRun(dir, interrupted: "interrupted", ranks: 3)
        }

        /// SIGUSR1 to mpirun while the ranks are still loading data (a job preempted right after
        /// it started): no rank dies of it; the job ends with exit 75 before training a step, writes
        /// nothing to lose, and --resume starts from step 0.
        @Test func usr1DuringStartUpExits75BeforeTheFirstStep() throws {
            let dir = try Scratch.folder("signal-startup")
            // ~320 MB of float32 features: reading and checking them takes the ranks a while.
            let (n, width) = (200_000, 400)
            do {
                let file = try HDF5File.create(dir + "/data.h5")
                try file.write("/train/x", [Float](repeating: 0.25, count: n * width), shape: [n, width])
                try file.write("/train/y", (0..<n).map { Int64($0 % 4) }, shape: [n])
                try file.write("/test/x", [Float](repeating: 0.25, count: 10 * width), shape: [10, width])
                try file.write("/test/y", (0..<10).map { Int64($0 % 4) }, shape: [10])
                file.close()
            }
            try Scratch.job(at: "\(dir)/job.toml", data: dir + "/data.h5", out: "\(dir)/run", steps: 5)
            let marker = "\(dir)/job.toml"
            let sender = Thread {
                // Both ranks exist and have had time to start (their handler is installed before
                // MPI_Init); the run directory does not exist until the data has loaded.
                let deadline = Date().addingTimeInterval(30)
                while Self.pids("^\(Launcher.binary) train \(marker)$").count < 2 && Date() < deadline { usleep(2_000) }
                usleep(150_000)
                for pid in Self.pids("mpirun .* \(marker)$") { kill(pid, SIGUSR1) }
            }
            sender.start()
            let launch = try Launcher.run(ranks: 2, ["train", marker], timeout: 60, deliverSignals: true)
            while sender.isExecuting { usleep(10_000) }
            #expect(launch.exitCode == ExitStatus.interrupted, "exit \(launch.exitCode): \(launch.stderr)")
            #expect(launch.stdout.contains("stopped by SIGUSR1 before step 1 (during start-up)"), "\(launch.stdout)")
            #expect(Checkpoint.list(in: "\(dir)/run/checkpoints").isEmpty, "nothing was trained, so nothing to checkpoint")
            let resumed = try Launcher.run(ranks: 2, ["train", marker, "--resume"], timeout: 120)
            #expect(resumed.exitCode == 0, "\(resumed.stderr)")
            #expect(resumed.stdout.contains("starting from step 0") && resumed.stdout.contains("done: 5 steps"), "\(resumed.stdout)")
        }

        /// One process without mpirun (a laptop run): SIGTERM, checkpoint, 75, resume.
        @Test func sigtermToASingletonCheckpointsAndExits75() throws {
            let dir = try Scratch.folder("signal-singleton")
            try Scratch.dataset(at: dir + "/data.h5", train: 6000)
            for name in ["interrupted", "straight"] { try Self.writeJob(dir, name) }
            let marker = "\(dir)/interrupted.toml"
            // Not anchored at the binary's path: argv[0] of a directly spawned process is its bare name.
            let sender = Self.signal(SIGTERM, when: "\(dir)/interrupted") { Self.pids("lockstep train \(marker)$") }
            let launch = try Launcher.run(ranks: nil, ["train", marker], timeout: 60)
            while sender.isExecuting { usleep(10_000) }
            #expect(launch.exitCode == ExitStatus.interrupted, "\(launch.stderr)")
            try Self.expectResumeMatchesStraightRun(dir, interrupted: "interrupted", ranks: nil)
        }
    }
}
