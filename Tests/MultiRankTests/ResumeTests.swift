// Bitwise resume: a run stopped halfway and continued with --resume ends exactly where an
// uninterrupted run ends.

import Foundation
import Lockstep
import Testing

extension MultiRank {
    @Suite struct Resume {
        /// 2 ranks, 40 steps straight vs 17 steps (mid-epoch: 25 steps/epoch), stop, resume to 40.
        /// With momentum SGD (weight decay), with R-SGD, whose random draws must continue too, and
        /// with L-BFGS, whose curvature pairs must come back from the checkpoint.
        @Test(arguments: ["lr = 0.1\nmomentum = 0.9\nweight_decay = 1e-3",
                          "name = \"rsgd\"\nlr = 0.05\np0 = 0.9\ngamma = 0.95",
                          "name = \"lbfgs\"\nhistory = 3\ninner = 2"])
        func stopAndResumeMatchesStraightRunBitwise(_ optimizer: String) throws {
            let dir = try Scratch.folder("resume")
            try Scratch.dataset(at: dir + "/data.h5")
            try Scratch.job(at: "\(dir)/straight.toml", data: dir + "/data.h5", out: "\(dir)/straight", steps: 40, optimizer: optimizer)
            try Scratch.job(at: "\(dir)/split.toml", data: dir + "/data.h5", out: "\(dir)/split", steps: 40, optimizer: optimizer)

            let straight = try Launcher.run(ranks: 2, ["train", "\(dir)/straight.toml"])
            #expect(straight.exitCode == 0, "\(straight.stderr)")

            let first = try Launcher.run(ranks: 2, ["train", "\(dir)/split.toml", "--stop-after", "17"])
            #expect(first.exitCode == 0, "\(first.stderr)")
            #expect(first.stdout.contains("stopped after step 17"))
            #expect(FileManager.default.fileExists(atPath: Scratch.checkpoint("\(dir)/split", step: 17)))
            #expect(!FileManager.default.fileExists(atPath: Scratch.checkpoint("\(dir)/split", step: 40)))

            let second = try Launcher.run(ranks: 2, ["train", "\(dir)/split.toml", "--resume"])
            #expect(second.exitCode == 0, "\(second.stderr)")
            #expect(second.stdout.contains("resumed at step 17"))

            let a = try Scratch.checkpointTensors(Scratch.checkpoint("\(dir)/straight", step: 40))
            let b = try Scratch.checkpointTensors(Scratch.checkpoint("\(dir)/split", step: 40))
            #expect(a.count == b.count && a.count >= 12)   // 3 layers × (weight, bias) × (model, momentum or memory)
            for (path, values) in a {
                #expect(bitPatterns(values) == bitPatterns(try #require(b[path])), "\(path) differs after resume")
            }
            // The metrics log reads as one run: every step once, the same losses.
            let straightLosses = try Scratch.losses("\(dir)/straight")
            let splitLosses = try Scratch.losses("\(dir)/split")
            #expect(splitLosses.map(\.0) == Array(1...40))
            #expect(splitLosses.map(\.1) == straightLosses.map(\.1))
        }

        /// Stopped on 2 ranks, resumed on 3: the same data order continues (only the summation
        /// order changes), the log says so, and the run ends within 1e-4 of a straight 2-rank run.
        @Test func resumeOnAnotherWorldSizeContinues() throws {
            let dir = try Scratch.folder("resume-world")
            try Scratch.dataset(at: dir + "/data.h5")
            try Scratch.job(at: "\(dir)/straight.toml", data: dir + "/data.h5", out: "\(dir)/straight", steps: 40)
            try Scratch.job(at: "\(dir)/moved.toml", data: dir + "/data.h5", out: "\(dir)/moved", steps: 40)
            #expect(try Launcher.run(ranks: 2, ["train", "\(dir)/straight.toml"]).exitCode == 0)
            #expect(try Launcher.run(ranks: 2, ["train", "\(dir)/moved.toml", "--stop-after", "17"]).exitCode == 0)
            let resumed = try Launcher.run(ranks: 3, ["train", "\(dir)/moved.toml", "--resume"])
            #expect(resumed.exitCode == 0, "\(resumed.stderr)")
            #expect(resumed.stdout.contains("resumed at step 17"))
            #expect((resumed.stdout + resumed.stderr).contains("written by 2 ranks, now 3"), "\(resumed.stdout)")
            let a = try Scratch.checkpointTensors(Scratch.checkpoint("\(dir)/straight", step: 40))
            let b = try Scratch.checkpointTensors(Scratch.checkpoint("\(dir)/moved", step: 40))
            #expect(!a.isEmpty && a.count == b.count)
            for (path, values) in a {
                #expect(relativeDifference(values, b[path] ?? []) <= 1e-4, "\(path)")
            }
            #expect(try Scratch.losses("\(dir)/moved").map(\.0) == Array(1...40))
        }

        /// Without --resume, a run directory that has checkpoints is refused, and nothing in it changes.
        @Test func existingRunIsNotOverwritten() throws {
            let dir = try Scratch.folder("no-clobber")
            try Scratch.dataset(at: dir + "/data.h5")
            try Scratch.job(at: "\(dir)/job.toml", data: dir + "/data.h5", out: "\(dir)/run", steps: 10)
            #expect(try Launcher.run(ranks: 2, ["train", "\(dir)/job.toml"]).exitCode == 0)
            let checkpoint = Scratch.checkpoint("\(dir)/run", step: 10)
            let before = try Data(contentsOf: URL(fileURLWithPath: checkpoint))
            let metricsBefore = try Data(contentsOf: URL(fileURLWithPath: "\(dir)/run/metrics.jsonl"))

            let again = try Launcher.run(ranks: 2, ["train", "\(dir)/job.toml"])
            #expect(again.exitCode == 2)
            #expect(again.lockstepErrors.count == 1)
            #expect(again.lockstepErrors.first?.contains("--resume") == true)
            #expect(try Data(contentsOf: URL(fileURLWithPath: checkpoint)) == before)
            #expect(try Data(contentsOf: URL(fileURLWithPath: "\(dir)/run/metrics.jsonl")) == metricsBefore)
        }
    }
}
