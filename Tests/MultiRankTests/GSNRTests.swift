// GSNR (VRGD) under real mpirun: the same k gradient groups spread as 4 ranks × 1, 2 × 2 and
// 1 × 4 give the same training; γ = 1 is the base optimizer; a step is one collective; k = 1 is an error.

import Foundation
import Testing

extension MultiRank {
    @Suite struct GSNR {
        static let vrMomentum = "name = \"sgd\"\nlr = 0.2\nmomentum = 0.9\n\n[gsnr]\nenabled = true\ngamma = 0.1"
        static let vrLAMB = "name = \"lamb\"\nlr = 0.02\nweight_decay = 0.01\n\n[gsnr]\nenabled = true\ngamma = 0.1"

        static func train(_ dir: String, _ name: String, ranks: Int?, optimizer: String, steps: Int, set: [String]) throws
            -> ([(Int, Double)], [String: [Float]], [[String: Any]]) {
            let out = "\(dir)/\(name)"
            try Scratch.job(at: "\(dir)/\(name).toml", data: dir + "/data.h5", out: out, steps: steps, optimizer: optimizer)
            let launch = try Launcher.run(ranks: ranks, ["train", "\(dir)/\(name).toml"] + set.flatMap { ["--set", $0] })
            #expect(launch.exitCode == 0, "\(name): \(launch.stderr)")
            return (try Scratch.losses(out), try Scratch.checkpointTensors(Scratch.checkpoint(out, step: steps)),
                    try Scratch.metrics(out))
        }

        /// k = 4 groups of 6 samples (global batch 24): the data each group sees is fixed by the
        /// global batch, so only summation order may differ. Relative 1e-5 on: the first update
        /// (the optimizer buffers after step 1 hold it: u₁ = g′₁, m₁ = (1−β1)·g′₁), the loss of
        /// each of 3 steps, and the parameters after 3 steps.
        @Test(arguments: [vrMomentum, vrLAMB])
        func sameGroupsOnAnyRankCountGiveTheSameUpdate(_ optimizer: String) throws {
            let dir = try Scratch.folder("gsnr-spread")
            try Scratch.dataset(at: dir + "/data.h5")
            var runs: [(String, [(Int, Double)], [String: [Float]], [String: [Float]])] = []
            for (label, ranks, groups) in [("4x1", 4, 1), ("2x2", 2, 2), ("1x4", nil, 4)] as [(String, Int?, Int)] {
                let r = try Self.train(dir, label, ranks: ranks, optimizer: optimizer, steps: 3,
                                       set: ["gsnr.groups_per_rank=\(groups)", "run.checkpoint_every=1"])
                let first = try Scratch.checkpointTensors(Scratch.checkpoint("\(dir)/\(label)", step: 1))
                runs.append((label, r.0, first, r.1))
                if label == "4x1" {
                    // The multiplier was active: some elements were clipped at γ on every step.
                    let clipped = r.2.compactMap { $0["gsnr_clip_low"] as? [String: Double] }
                    #expect(clipped.count == 3 && clipped.allSatisfy { $0.values.contains { $0 > 0 } })
                }
            }
            let reference = runs[0]
            #expect(reference.2.keys.contains { $0.hasPrefix("/optimizer/") })
            for (label, losses, first, last) in runs.dropFirst() {
                for ((step, a), (_, b)) in zip(reference.1, losses) {
                    #expect(abs(a - b) <= 1e-5 * abs(a), "\(label) step \(step): \(a) vs \(b)")
                }
                for (path, values) in reference.2 where path.hasPrefix("/optimizer/") {
                    let diff = relativeDifference(values, first[path] ?? [])
                    #expect(diff <= 1e-5, "\(label) first update \(path): \(diff)")
                }
                for (path, values) in reference.3 where path.hasPrefix("/model/") {
                    let diff = relativeDifference(values, last[path] ?? [])
                    #expect(diff <= 1e-5, "\(label) step 3 \(path): \(diff)")
                }
            }
        }

        /// γ = 1 makes the multiplier 1: VR-momentum equals momentum SGD run on the same groups
        /// (batch.micro = the group size, so both sum the same partial gradients; relative 1e-6).
        @Test func gammaOneIsTheBaseOptimizer() throws {
            let dir = try Scratch.folder("gsnr-gamma1")
            try Scratch.dataset(at: dir + "/data.h5")
            let base = "name = \"sgd\"\nlr = 0.2\nmomentum = 0.9"
            let vr = try Self.train(dir, "vr", ranks: 2, optimizer: base + "\n\n[gsnr]\nenabled = true\ngamma = 1.0\ngroups_per_rank = 2",
                                    steps: 20, set: [])
            let plain = try Self.train(dir, "plain", ranks: 2, optimizer: base, steps: 20, set: ["batch.micro=6"])
            for ((step, a), (_, b)) in zip(vr.0, plain.0) {
                #expect(abs(a - b) <= 1e-6 * abs(a), "step \(step): \(a) vs \(b)")
            }
            for (path, values) in plain.1 {
                #expect(relativeDifference(values, vr.1[path] ?? []) <= 1e-6, "\(path)")
            }
        }

        /// The fused exchange: [Σ g_d, Σ g_d², loss] travels in one allreduce, so every step makes
        /// exactly one collective call, with and without GSNR.
        @Test func oneCollectivePerStep() throws {
            let dir = try Scratch.folder("gsnr-collectives")
            try Scratch.dataset(at: dir + "/data.h5")
            for (name, optimizer) in [("vr", Self.vrLAMB), ("plain", "name = \"lamb\"\nlr = 0.02")] {
                let run = try Self.train(dir, name, ranks: 3, optimizer: optimizer, steps: 8, set: ["gsnr.groups_per_rank=2"])
                let counts = run.2.filter { $0["split"] == nil }.map { $0["collectives"] as? Int }
                #expect(counts.count == 8)
                #expect(counts.allSatisfy { $0 == 1 }, "\(name): \(counts)")
            }
        }

        /// The statistics keys (apply = "update", smoothing, eps_relative, run.noise_scale) keep the contract:
        /// 4 groups as 2 ranks × 2 and 1 × 4 train alike (relative 1e-5 on losses and weights after 4 steps),
        /// the noise scale is logged, and a run stopped at step 2 and resumed ends bitwise where the straight
        /// one does (the shift and the smoothed multiplier come back from the checkpoint).
        @Test func statisticsKeysKeepInvarianceAndResume() throws {
            let dir = try Scratch.folder("gsnr-statistics")
            try Scratch.dataset(at: dir + "/data.h5")
            let optimizer = "name = \"adam\"\nlr = 0.01\n\n[gsnr]\nenabled = true\napply = \"update\"\nsmoothing = 0.5\neps_relative = 1e-7"
            let keys = ["run.noise_scale=true", "run.checkpoint_every=2"]
            let two = try Self.train(dir, "2x2", ranks: 2, optimizer: optimizer, steps: 4, set: keys + ["gsnr.groups_per_rank=2"])
            let one = try Self.train(dir, "1x4", ranks: nil, optimizer: optimizer, steps: 4, set: keys + ["gsnr.groups_per_rank=4"])
            for ((step, a), (_, b)) in zip(two.0, one.0) {
                #expect(abs(a - b) <= 1e-5 * abs(a), "step \(step): \(a) vs \(b)")
            }
            for (path, values) in two.1 where path.hasPrefix("/model/") {
                #expect(relativeDifference(values, one.1[path] ?? []) <= 1e-5, "\(path)")
            }
            let steps = two.2.filter { $0["split"] == nil && $0["step"] != nil }
            #expect(steps.count == 4 && steps.allSatisfy { $0["noise_trace"] is Double && $0["gsnr_step_ratio"] is [String: Double] })
            #expect(steps.allSatisfy { ($0["collectives"] as? Int) == 1 })

            try Scratch.job(at: "\(dir)/split.toml", data: dir + "/data.h5", out: "\(dir)/split", steps: 4, optimizer: optimizer)
            let set = (keys + ["gsnr.groups_per_rank=2"]).flatMap { ["--set", $0] }
            let first = try Launcher.run(ranks: 2, ["train", "\(dir)/split.toml", "--stop-after", "2"] + set)
            #expect(first.exitCode == 0, "\(first.stderr)")
            let second = try Launcher.run(ranks: 2, ["train", "\(dir)/split.toml", "--resume"] + set)
            #expect(second.exitCode == 0, "\(second.stderr)")
            let resumed = try Scratch.checkpointTensors(Scratch.checkpoint("\(dir)/split", step: 4))
            #expect(resumed.keys.contains { $0.contains("gsnr_shift") } && resumed.keys.contains { $0.contains("gsnr_momentum") })
            for (path, values) in two.1 {
                #expect(bitPatterns(values) == bitPatterns(try #require(resumed[path])), "\(path) differs after resume")
            }
        }

        /// run.noise_scale without GSNR folds the groups but leaves the update alone: the same training as
        /// momentum SGD over the same partial gradients (batch.micro = the group size; relative 1e-6).
        @Test func noiseScaleAloneLeavesTheUpdate() throws {
            let dir = try Scratch.folder("gsnr-noise")
            try Scratch.dataset(at: dir + "/data.h5")
            let base = "name = \"sgd\"\nlr = 0.2\nmomentum = 0.9"
            let noise = try Self.train(dir, "noise", ranks: 2, optimizer: base, steps: 6,
                                       set: ["run.noise_scale=true", "gsnr.groups_per_rank=2"])
            let plain = try Self.train(dir, "plain", ranks: 2, optimizer: base, steps: 6, set: ["batch.micro=6"])
            for ((step, a), (_, b)) in zip(noise.0, plain.0) {
                #expect(abs(a - b) <= 1e-6 * abs(a), "step \(step): \(a) vs \(b)")
            }
            for (path, values) in plain.1 where path.hasPrefix("/model/") {
                #expect(relativeDifference(values, noise.1[path] ?? []) <= 1e-6, "\(path)")
            }
            let steps = noise.2.filter { $0["split"] == nil && $0["step"] != nil }
            #expect(steps.count == 6 && steps.allSatisfy { ($0["noise_trace"] as? Double).map { $0 > 0 } == true })
            #expect(steps.allSatisfy { $0["gsnr_mean"] == nil }, "no multiplier, no GSNR fields")
        }

        @Test func oneGroupIsAnError() throws {
            let dir = try Scratch.folder("gsnr-k1")
            try Scratch.dataset(at: dir + "/data.h5")
            try Scratch.job(at: "\(dir)/job.toml", data: dir + "/data.h5", out: "\(dir)/run", optimizer: Self.vrMomentum)
            let launch = try Launcher.run(ranks: nil, ["train", "\(dir)/job.toml"])
            #expect(launch.exitCode == 2)
            #expect(launch.lockstepErrors.count == 1)
            #expect(launch.lockstepErrors.first?.contains("at least 2 gradient groups") == true)
        }
    }
}
