// A disk that fills up during a run (a real, small tmpfs, filled by another writer once the run
// has its first checkpoint): the next checkpoint write fails with every HDF5 call checked, the
// half-written file never replaces anything, the older checkpoint stays loadable, and the job
// ends on every rank with a message that names the full filesystem; with space again,
// --resume continues.

import Foundation
import Lockstep
import Testing

extension MultiRank {
    @Suite struct DiskFull {
        static func sh(_ command: String) -> Int32 {
            let p = Process()
            p.executableURL = URL(fileURLWithPath: "/bin/sh")
            p.arguments = ["-c", command]
            p.standardOutput = FileHandle.nullDevice
            p.standardError = FileHandle.nullDevice
            try? p.run()
            p.waitUntilExit()
            return p.terminationStatus
        }

        @Test func aFullDiskNeverCostsTheLastGoodCheckpoint() throws {
            let dir = try Scratch.folder("disk-full")
            let mount = dir + "/tmpfs"
            try FileManager.default.createDirectory(atPath: mount, withIntermediateDirectories: true)
            // Root is needed to mount; CI and the development machines run as root.
            try #require(Self.sh("mount -t tmpfs -o size=2m tmpfs '\(mount)'") == 0, "mount -t tmpfs failed: run the tests as root")
            defer { _ = Self.sh("umount -l '\(mount)'") }
            try Scratch.dataset(at: dir + "/data.h5", train: 6000)
            let job = "\(dir)/job.toml"
            try Scratch.job(at: job, data: dir + "/data.h5", out: "\(mount)/run", steps: 20_000)
            let edited = try String(contentsOfFile: job, encoding: .utf8)
                .replacingOccurrences(of: "checkpoint_every = 10", with: "checkpoint_every = 50")
                .replacingOccurrences(of: "keep_checkpoints = 100", with: "keep_checkpoints = 1")
                .replacingOccurrences(of: "log_every = 1", with: "log_every = 1000")
            try edited.write(toFile: job, atomically: true, encoding: .utf8)

            // The other writer: once the run has a checkpoint, fill every free byte.
            let checkpoints = "\(mount)/run/checkpoints"
            let filler = Thread {
                let deadline = Date().addingTimeInterval(60)
                while Checkpoint.list(in: checkpoints).isEmpty && Date() < deadline { usleep(1_000) }
                _ = Self.sh("dd if=/dev/zero of='\(mount)/filler' bs=4k 2>/dev/null")
            }
            filler.start()
            let launch = try Launcher.run(ranks: 2, ["train", job], timeout: 90)
            while filler.isExecuting { usleep(10_000) }

            #expect(!launch.timedOut, "hung")
            #expect(launch.exitCode == ExitStatus.failure, "exit \(launch.exitCode): \(launch.stderr)")
            #expect(launch.lockstepErrors.count == 1, "one line for the job: \(launch.stderr)")
            let line = launch.lockstepErrors.first ?? ""
            // Whichever write met the full disk first (a metrics line or the checkpoint) ends the run.
            #expect((line.contains("cannot write checkpoint") || line.contains("metrics.jsonl")) && line.contains("is full") && line.contains("--resume"), "\(line)")
            #expect(!launch.stderr.contains("Segmentation") && !launch.stderr.contains("signal 11"), "\(launch.stderr)")
            // Exactly the good checkpoint: no temporary file, nothing half-written under its name.
            let names = (try? FileManager.default.contentsOfDirectory(atPath: checkpoints)) ?? []
            #expect(names.count == 1 && !names.contains { $0.hasSuffix(".tmp") }, "\(names)")
            let newest = try #require(Checkpoint.list(in: checkpoints).last)
            let network = try Network(inputShape: [20], layers: [LayerSpec(units: 32, activation: .relu), LayerSpec(units: 16, activation: .relu),
                                                                   LayerSpec(units: 4, activation: .identity)])
            let contents = try Checkpoint.read(newest, network: network)
            #expect(contents.position.step >= 50 && contents.position.step % 50 == 0)

            // Space again: the run goes on from that checkpoint.
            try FileManager.default.removeItem(atPath: "\(mount)/filler")
            let resumed = try Launcher.run(ranks: 2, ["train", job, "--resume", "--stop-after", "\(contents.position.step + 50)"], timeout: 90)
            #expect(resumed.exitCode == 0, "\(resumed.stderr)")
            #expect(resumed.stdout.contains("resuming from \(newest)"), "\(resumed.stdout)")
            // Every line of the log is whole and each evaluation after the checkpoint is there again.
            let text = try String(contentsOfFile: "\(mount)/run/metrics.jsonl", encoding: .utf8)
            let lines = text.split(separator: "\n")
            #expect(try Scratch.metrics("\(mount)/run").count == lines.count && lines.allSatisfy { $0.hasSuffix("}") })
            let evaluated = try Scratch.metrics("\(mount)/run").filter { $0["split"] as? String == "test" }.compactMap { $0["step"] as? Int }
            #expect(evaluated == Array(stride(from: 10, through: contents.position.step + 50, by: 10)), "\(evaluated)")
        }
    }
}
