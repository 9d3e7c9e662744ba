// Every optimizer keeps rank-count invariance (1 rank vs 3 ranks under mpirun), and gradient
// accumulation in micro-batches gives the same training as the unsplit batch.

import Foundation
import Testing

extension MultiRank {
    @Suite struct OptimizerInvariance {
        static let optimizers: [String] = [
            "name = \"sgd\"\nlr = 0.1\nmomentum = 0.9\nnesterov = true\nweight_decay = 1e-3",
            "name = \"nshb\"\nlr = 0.3\nmomentum = 0.9",
            "name = \"adam\"\nlr = 0.01\nweight_decay = 1e-3",
            "name = \"adamw\"\nlr = 0.01\nweight_decay = 0.05",
            "name = \"lars\"\nlr = 0.5\nmomentum = 0.9\ntrust_coefficient = 0.02\nweight_decay = 1e-3",
            "name = \"lamb\"\nlr = 0.02\nweight_decay = 0.01",
            "name = \"rsgd\"\nlr = 0.05\np0 = 0.9\ngamma = 0.95\nweight_decay = 1e-3",
        ]

        /// Runs the synthetic job and returns (losses by step, final tensors).
        static func train(_ dir: String, _ name: String, ranks: Int?, optimizer: String, extra: [String] = []) throws
            -> ([(Int, Double)], [String: [Float]]) {
            let out = "\(dir)/\(name)"
            try Scratch.job(at: "\(dir)/\(name).toml", data: dir + "/data.h5", out: out, steps: 30, optimizer: optimizer)
            let launch = try Launcher.run(ranks: ranks, ["train", "\(dir)/\(name).toml"] + extra)
            #expect(launch.exitCode == 0, "\(name): \(launch.stderr)")
            return (try Scratch.losses(out), try Scratch.checkpointTensors(Scratch.checkpoint(out, step: 30)))
        }

        /// `lossFloor`: an absolute error every loss may have, for runs whose loss falls near 0,
        /// where float32 rounding (absolute, ~1e-7 of the first loss) dwarfs the loss itself.
        static func expectClose(_ a: ([(Int, Double)], [String: [Float]]), _ b: ([(Int, Double)], [String: [Float]]),
                                tolerance: Double, _ what: String, lossFloor: Double = 0) {
            #expect(a.0.map(\.0) == b.0.map(\.0), "\(what): logged steps differ")
            for ((step, x), (_, y)) in zip(a.0, b.0) {
                #expect(abs(x - y) <= tolerance * abs(x) + lossFloor, "\(what) step \(step): \(x) vs \(y)")
            }
            #expect(Set(a.1.keys) == Set(b.1.keys) && !a.1.isEmpty, "\(what): checkpoint contents differ")
            for (path, values) in a.1 {
                guard let other = b.1[path] else { continue }
                #expect(relativeDifference(values, other) <= tolerance, "\(what) \(path): \(relativeDifference(values, other))")
            }
        }

        @Test(arguments: optimizers)
        func oneRankAndThreeRanksAgree(_ optimizer: String) throws {
            let dir = try Scratch.folder("optimizer-invariance")
            try Scratch.dataset(at: dir + "/data.h5")
            let one = try Self.train(dir, "one", ranks: nil, optimizer: optimizer)
            let three = try Self.train(dir, "three", ranks: 3, optimizer: optimizer)
            // It trained: the loss fell by a fifth at least.
            #expect(one.0.last!.1 < one.0.first!.1 * 0.8, "\(optimizer): \(one.0.first!.1) → \(one.0.last!.1)")
            // Only the summation order differs (relative 1e-4).
            Self.expectClose(one, three, tolerance: 1e-4, optimizer.split(separator: "\n")[0] + " 1 vs 3 ranks")
        }

        /// 2 ranks × 12 samples each, whole vs 3 micro-batches of 4: the summed gradient equals the
        /// unsplit one up to summation order (relative 1e-5 over 30 steps of Adam and of momentum SGD).
        @Test(arguments: [optimizers[0], optimizers[2]])
        func accumulationMatchesUnsplitBatch(_ optimizer: String) throws {
            let dir = try Scratch.folder("accumulation")
            try Scratch.dataset(at: dir + "/data.h5")
            let whole = try Self.train(dir, "whole", ranks: 2, optimizer: optimizer)
            let micro = try Self.train(dir, "micro", ranks: 2, optimizer: optimizer, extra: ["--set", "batch.micro=4"])
            Self.expectClose(whole, micro, tolerance: 1e-5, "micro-batches of 4")
        }

        @Test func microBatchMustDivideTheRankShare() throws {
            let dir = try Scratch.folder("micro-bad")
            try Scratch.dataset(at: dir + "/data.h5")
            try Scratch.job(at: "\(dir)/job.toml", data: dir + "/data.h5", out: "\(dir)/run")
            let launch = try Launcher.run(ranks: 2, ["train", "\(dir)/job.toml", "--set", "batch.micro=5"])
            #expect(launch.exitCode == 2)
            #expect(launch.lockstepErrors.count == 1)
            #expect(launch.lockstepErrors.first?.contains("batch.micro = 5") == true)
        }
    }
}
