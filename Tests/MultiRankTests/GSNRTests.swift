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
        /// global batch, so only summation order may differ (relative 1e-5 after 10 steps).
        @Test(arguments: [vrMomentum, vrLAMB])
        func sameGroupsOnAnyRankCountGiveTheSameUpdate(_ optimizer: String) throws {
            let dir = try Scratch.folder("gsnr-spread")
            try Scratch.dataset(at: dir + "/data.h5")
            let fourByOne = try Self.train(dir, "4x1", ranks: 4, optimizer: optimizer, steps: 10, set: ["gsnr.groups_per_rank=1"])
            let twoByTwo = try Self.train(dir, "2x2", ranks: 2, optimizer: optimizer, steps: 10, set: ["gsnr.groups_per_rank=2"])
            let oneByFour = try Self.train(dir, "1x4", ranks: nil, optimizer: optimizer, steps: 10, set: ["gsnr.groups_per_rank=4"])
            #expect(fourByOne.1.keys.contains { $0.hasPrefix("/optimizer/") })
            for (label, other) in [("2x2", twoByTwo), ("1x4", oneByFour)] {
                for ((step, a), (_, b)) in zip(fourByOne.0, other.0) {
                    #expect(abs(a - b) <= 1e-5 * abs(a), "\(label) step \(step): \(a) vs \(b)")
                }
                for (path, values) in fourByOne.1 {
                    let diff = relativeDifference(values, other.1[path] ?? [])
                    #expect(diff <= 1e-5, "\(label) \(path): \(diff)")
                }
            }
            // The multiplier was active: some elements were clipped at γ on every logged step.
            let clipped = fourByOne.2.compactMap { $0["gsnr_clip_low"] as? [String: Double] }
            #expect(clipped.count == 10)
            #expect(clipped.allSatisfy { $0.values.contains { $0 > 0 } })
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
