// Rank-count invariance and determinism of real training runs under mpirun.

import Foundation
import Lockstep
import Testing

extension MultiRank {
    @Suite struct Invariance {
        /// One synthetic job run on 1 (a plain process, the MPI singleton), 2, 3 and 4 ranks.
        /// Global batch 24 splits evenly over each; 30 steps cross an epoch boundary (25 steps/epoch).
        @Test func sameLossesAndParametersOn1To4Ranks() throws {
            let dir = try Scratch.folder("invariance")
            try Scratch.dataset(at: dir + "/data.h5")
            var losses: [Int: [(Int, Double)]] = [:]
            var finals: [Int: [String: [Float]]] = [:]
            for ranks in [1, 2, 3, 4] {
                let out = "\(dir)/run\(ranks)"
                try Scratch.job(at: "\(dir)/job.toml", data: dir + "/data.h5", out: out)
                let launch = try Launcher.run(ranks: ranks == 1 ? nil : ranks, ["train", "\(dir)/job.toml"])
                #expect(launch.exitCode == 0, "\(ranks) ranks: \(launch.stderr)")
                losses[ranks] = try Scratch.losses(out)
                finals[ranks] = try Scratch.checkpointTensors(Scratch.checkpoint(out, step: 30))
            }
            let reference = try #require(losses[1])
            #expect(reference.count == 30)
            // Training happened: the loss fell.
            #expect(reference.last!.1 < reference.first!.1 * 0.8)
            for ranks in [2, 3, 4] {
                let other = try #require(losses[ranks])
                #expect(other.map(\.0) == reference.map(\.0))
                for ((step, a), (_, b)) in zip(reference, other) {
                    // Only the summation order differs: relative 1e-4.
                    #expect(abs(a - b) <= 1e-4 * abs(a), "step \(step): 1 rank \(a), \(ranks) ranks \(b)")
                }
                let ref = try #require(finals[1]), got = try #require(finals[ranks])
                #expect(Set(ref.keys) == Set(got.keys))
                for (path, a) in ref {
                    let b = try #require(got[path])
                    #expect(relativeDifference(a, b) <= 1e-4, "\(path) on \(ranks) ranks differs by \(relativeDifference(a, b))")
                }
            }
        }

        /// Same job, same world size, twice: bitwise-identical parameters and momentum.
        @Test func sameJobTwiceIsBitwiseIdentical() throws {
            let dir = try Scratch.folder("determinism")
            try Scratch.dataset(at: dir + "/data.h5")
            var results: [[String: [Float]]] = []
            for run in 0..<2 {
                try Scratch.job(at: "\(dir)/job\(run).toml", data: dir + "/data.h5", out: "\(dir)/run\(run)", steps: 20)
                let launch = try Launcher.run(ranks: 2, ["train", "\(dir)/job\(run).toml"])
                #expect(launch.exitCode == 0, "\(launch.stderr)")
                results.append(try Scratch.checkpointTensors(Scratch.checkpoint("\(dir)/run\(run)", step: 20)))
            }
            #expect(!results[0].isEmpty)
            #expect(results[0].keys.contains("/optimizer/momentum/dense0/weight"))
            for (path, a) in results[0] {
                #expect(bitPatterns(a) == bitPatterns(try #require(results[1][path])), "\(path) differs")
            }
        }
    }
}

/// max |a − b| / max |a| (a norm-wise relative difference that tolerates tiny elements).
func relativeDifference(_ a: [Float], _ b: [Float]) -> Double {
    precondition(a.count == b.count)
    let scale = a.map { abs(Double($0)) }.max() ?? 0
    let diff = zip(a, b).map { abs(Double($0) - Double($1)) }.max() ?? 0
    return scale == 0 ? diff : diff / scale
}

func bitPatterns(_ a: [Float]) -> [UInt32] { a.map(\.bitPattern) }
