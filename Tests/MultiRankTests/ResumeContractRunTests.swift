// The resume contract end to end (docs/checkpoints.md): the rows that continue — a warning on the
// first lines for a changed rate, a moved data file accepted, a finished run that says so — and a
// run of 10^15 epochs that starts at once and stops after 3 steps. The rows that refuse are
// cases of the bad-input corpus.

import Foundation
import Lockstep
import Testing

extension MultiRank {
    @Suite struct ResumeContractRun {
        /// A 20-step run of the standard job in `dir/run`, on 2 ranks.
        static func finishedRun(_ dir: String) throws {
            try Scratch.dataset(at: dir + "/data.h5")
            try Scratch.job(at: "\(dir)/job.toml", data: dir + "/data.h5", out: "\(dir)/run", steps: 20)
            let first = try Launcher.run(ranks: 2, ["train", "\(dir)/job.toml", "--stop-after", "10"])
            try #require(first.exitCode == 0, "\(first.stderr)")
        }

        @Test func aChangedRateWarnsFirstAndContinues() throws {
            let dir = try Scratch.folder("contract-rate")
            try Self.finishedRun(dir)
            let resumed = try Launcher.run(ranks: 2, ["train", "\(dir)/job.toml", "--resume", "--set", "optimizer.lr=0.05"])
            #expect(resumed.exitCode == 0, "\(resumed.stderr)")
            let first = resumed.stdout.split(separator: "\n").first.map(String.init) ?? ""
            #expect(first.hasPrefix("warning: resuming with optimizer.lr = 0.05 (the checkpoint has 0.1)"), "\(resumed.stdout)")
            #expect(resumed.stdout.contains("resumed at step 10") && resumed.stdout.contains("done: 20 steps"), "\(resumed.stdout)")
        }

        @Test func aMovedDataFileIsTheSameData() throws {
            let dir = try Scratch.folder("contract-moved")
            try Self.finishedRun(dir)
            try FileManager.default.moveItem(atPath: dir + "/data.h5", toPath: dir + "/moved.h5")
            let resumed = try Launcher.run(ranks: 2, ["train", "\(dir)/job.toml", "--resume", "--set", "data.file=\"\(dir)/moved.h5\""])
            #expect(resumed.exitCode == 0, "\(resumed.stderr)")
            #expect(!resumed.stdout.contains("warning"), "\(resumed.stdout)")
            // Bitwise the run that never moved: resume the original layout in a copy and compare.
            let straight = try Launcher.run(ranks: 2, ["train", "\(dir)/job.toml", "--set", "run.out=\"\(dir)/straight\"",
                                                       "--set", "data.file=\"\(dir)/moved.h5\""])
            #expect(straight.exitCode == 0, "\(straight.stderr)")
            let a = try Scratch.checkpointTensors(Scratch.checkpoint("\(dir)/run", step: 20))
            let b = try Scratch.checkpointTensors(Scratch.checkpoint("\(dir)/straight", step: 20))
            #expect(!a.isEmpty && a.keys.sorted() == b.keys.sorted())
            for (path, values) in a { #expect(bitPatterns(values) == bitPatterns(b[path] ?? []), "\(path)") }
        }

        @Test func aFinishedRunSaysSo() throws {
            let dir = try Scratch.folder("contract-done")
            try Self.finishedRun(dir)
            let rest = try Launcher.run(ranks: 2, ["train", "\(dir)/job.toml", "--resume"])
            try #require(rest.exitCode == 0, "\(rest.stderr)")
            let again = try Launcher.run(ranks: 2, ["train", "\(dir)/job.toml", "--resume"])
            #expect(again.exitCode == 0, "\(again.stderr)")
            #expect(again.stdout.contains("nothing to do: the run was already complete at step 20 of 20"), "\(again.stdout)")
            #expect(!again.stdout.contains("done:"), "\(again.stdout)")
        }

        @Test func aRunOfAQuadrillionEpochsStartsAtOnce() throws {
            let dir = try Scratch.folder("contract-long")
            try Scratch.dataset(at: dir + "/data.h5")
            try Scratch.job(at: "\(dir)/job.toml", data: dir + "/data.h5", out: "\(dir)/run")
            let text = try String(contentsOfFile: "\(dir)/job.toml", encoding: .utf8)
                .replacingOccurrences(of: "steps = 30\n", with: "epochs = 1000000000000000\n")
            try text.write(toFile: "\(dir)/job.toml", atomically: true, encoding: .utf8)
            let launch = try Launcher.run(ranks: 2, ["train", "\(dir)/job.toml", "--stop-after", "3",
                                                     "--set", "schedule.warmup_epochs=1000000000000", "--set", "schedule.decay=\"cosine\""], timeout: 60)
            #expect(launch.exitCode == 0, "\(launch.stderr)")
            #expect(launch.stdout.contains("25000000000000000 steps") && launch.stdout.contains("stopped after step 3"), "\(launch.stdout)")
            #expect(launch.seconds < 30)
        }
    }
}
