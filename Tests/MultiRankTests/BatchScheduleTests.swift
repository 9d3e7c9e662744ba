// Increasing batch size under mpirun: rank-count invariance with the batch changing at epoch
// boundaries, bitwise resume in the epoch after a change, and the full-gradient norm.

import Foundation
import Testing

extension MultiRank {
    @Suite struct BatchSchedules {
        /// 600 samples, batch 12 → 24 → 48 (epochs of 50, 25 and 12 steps); 80 steps reach epoch 2.
        static let schedule = ["batch.global=12", "batch.schedule=\"increasing\"", "batch.growth=2",
                               "run.full_grad_norm_every=1"]
        static let nshb = "name = \"nshb\"\nlr = 0.2\nmomentum = 0.9"

        static func train(_ dir: String, _ name: String, ranks: Int?, extra: [String] = []) throws -> Launch {
            try Scratch.job(at: "\(dir)/\(name).toml", data: dir + "/data.h5", out: "\(dir)/\(name)", steps: 80, optimizer: nshb)
            let launch = try Launcher.run(ranks: ranks, ["train", "\(dir)/\(name).toml"] + (schedule + extra).flatMap { ["--set", $0] })
            #expect(launch.exitCode == 0, "\(name): \(launch.stderr)")
            return launch
        }

        static func fullGradients(_ run: String) throws -> [(Int, Double)] {
            try Scratch.metrics(run).filter { $0["measure"] as? String == "full_gradient" }
                .map { ($0["samples"] as! Int, ($0["full_grad_norm"] as! NSNumber).doubleValue) }
        }

        @Test func batchGrowsAndRanksAgree() throws {
            let dir = try Scratch.folder("batch-schedule")
            try Scratch.dataset(at: dir + "/data.h5")
            _ = try Self.train(dir, "one", ranks: nil)
            _ = try Self.train(dir, "three", ranks: 3)
            let lines = try Scratch.metrics("\(dir)/one").filter { $0["split"] == nil && $0["measure"] == nil }
            // The logged batch follows the schedule: 12 in epoch 0, 24 in epoch 1, 48 in epoch 2.
            let batches = Dictionary(lines.map { ($0["epoch"] as! Int, $0["batch"] as! Int) }, uniquingKeysWith: { a, _ in a })
            #expect(batches == [0: 12, 1: 24, 2: 48])
            #expect((lines.last?["samples"] as? Int) == 50 * 12 + 25 * 24 + 5 * 48)
            let a = try Scratch.losses("\(dir)/one"), b = try Scratch.losses("\(dir)/three")
            #expect(a.count == 80 && a.map(\.0) == b.map(\.0))
            for ((step, x), (_, y)) in zip(a, b) { #expect(abs(x - y) <= 1e-4 * abs(x), "step \(step)") }
            // ‖∇f‖ over the whole training set after epochs 0 and 1, with the samples processed so far.
            let fa = try Self.fullGradients("\(dir)/one"), fb = try Self.fullGradients("\(dir)/three")
            #expect(fa.map(\.0) == [600, 1200] && fb.map(\.0) == [600, 1200])
            for ((_, x), (_, y)) in zip(fa, fb) { #expect(x > 0 && abs(x - y) <= 1e-4 * x, "\(x) vs \(y)") }
        }

        /// Stop in epoch 1 (after the batch doubled), resume, cross into epoch 2 (doubled again):
        /// bitwise the uninterrupted run.
        @Test func resumeAfterABatchChangeIsBitwise() throws {
            let dir = try Scratch.folder("batch-resume")
            try Scratch.dataset(at: dir + "/data.h5")
            _ = try Self.train(dir, "straight", ranks: 2)
            try Scratch.job(at: "\(dir)/split.toml", data: dir + "/data.h5", out: "\(dir)/split", steps: 80, optimizer: Self.nshb)
            let first = try Launcher.run(ranks: 2, ["train", "\(dir)/split.toml", "--stop-after", "60"] + Self.schedule.flatMap { ["--set", $0] })
            #expect(first.exitCode == 0, "\(first.stderr)")
            let second = try Launcher.run(ranks: 2, ["train", "\(dir)/split.toml", "--resume"] + Self.schedule.flatMap { ["--set", $0] })
            #expect(second.exitCode == 0, "\(second.stderr)")
            #expect(second.stdout.contains("resumed at step 60 (epoch 1)"))
            let x = try Scratch.checkpointTensors(Scratch.checkpoint("\(dir)/straight", step: 80))
            let y = try Scratch.checkpointTensors(Scratch.checkpoint("\(dir)/split", step: 80))
            #expect(!x.isEmpty && x.count == y.count)
            for (path, values) in x { #expect(bitPatterns(values) == bitPatterns(y[path] ?? []), "\(path)") }
            #expect(try Self.fullGradients("\(dir)/straight").map(\.1) == Self.fullGradients("\(dir)/split").map(\.1))
        }
    }
}
