// The run directory lock: a second run in a directory another run is using is refused with a
// line naming the holder (exit 2) and changes nothing there; a lock left by a run that died
// (SIGKILL) is no lock at all.

import Foundation
import Lockstep
import Testing

extension MultiRank {
    @Suite struct RunDirectoryLock {
        @Test func aSecondRunIsRefusedAndADeadHoldersLockIsStale() throws {
            let dir = try Scratch.folder("run-lock")
            try Scratch.dataset(at: dir + "/data.h5", train: 6000)
            try Scratch.job(at: "\(dir)/job.toml", data: dir + "/data.h5", out: "\(dir)/run", steps: 200_000)
            // The holder: a long run on 2 ranks, alive until we kill it.
            let holder = Process()
            holder.executableURL = URL(fileURLWithPath: "/usr/bin/mpirun")
            holder.arguments = ["-n", "2", "--oversubscribe", Launcher.binary, "train", "\(dir)/job.toml"]
            holder.currentDirectoryURL = Launcher.packageRoot
            holder.environment = Launcher.environment([:])
            holder.standardOutput = FileHandle.nullDevice
            holder.standardError = FileHandle.nullDevice
            try holder.run()
            defer { if holder.isRunning { kill(holder.processIdentifier, SIGKILL) } }
            // Under way once its first checkpoint exists.
            let deadline = Date().addingTimeInterval(60)
            while Checkpoint.list(in: "\(dir)/run/checkpoints").isEmpty && Date() < deadline && holder.isRunning { usleep(10_000) }
            try #require(!Checkpoint.list(in: "\(dir)/run/checkpoints").isEmpty, "the holder run did not start")

            // Both a fresh start and a resume are refused while it lives, on 2 ranks and on 1.
            let holderRank0 = Signals.pids("^\(Launcher.binary) train \(dir)/job.toml$").min() ?? -1
            for (ranks, extra) in [(2, ["--resume"]), (1, [String]())] as [(Int, [String])] {
                let second = try Launcher.run(ranks: ranks == 1 ? nil : ranks, ["train", "\(dir)/job.toml"] + extra, timeout: 30)
                #expect(second.exitCode == 2, "\(second.stderr)")
                #expect(second.lockstepErrors.count == 1, "\(second.stderr)")
                let line = second.lockstepErrors.first ?? ""
                #expect(line.contains("\(dir)/run is in use by another run") && line.contains("process \(holderRank0)"), "\(line)")
                #expect(line.contains("--set run.out="), "\(line)")
            }

            // SIGKILL the holder's ranks and mpirun: nothing releases the lock but the kernel.
            for pid in Signals.pids("^\(Launcher.binary) train \(dir)/job.toml$") { kill(pid, SIGKILL) }
            kill(holder.processIdentifier, SIGKILL)
            holder.waitUntilExit()
            let deadlineGone = Date().addingTimeInterval(10)
            while !Signals.pids("^\(Launcher.binary) train \(dir)/job.toml$").isEmpty && Date() < deadlineGone { usleep(10_000) }
            let resumed = try Launcher.run(ranks: 2, ["train", "\(dir)/job.toml", "--resume", "--stop-after", "1"], timeout: 60)
            #expect(resumed.exitCode == 0, "a dead run's lock must not block: \(resumed.stderr)")
            #expect(resumed.stdout.contains("resuming from"), "\(resumed.stdout)")
        }
    }
}
