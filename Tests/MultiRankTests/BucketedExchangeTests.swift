// exchange.bucket_mb: the gradient exchange in buckets started during backward gives the same
// training as one allreduce after backward: bitwise on 2 ranks (a sum of two numbers does not
// depend on how the buffer is cut), with micro-batches and with GSNR's fused [g, g²] exchange
// too; within summation order on 3 ranks.

import Foundation
import Testing

extension MultiRank {
    @Suite struct BucketedExchange {
        static let momentum = "lr = 0.1\nmomentum = 0.9\nweight_decay = 1e-3"
        static let vrMomentum = "lr = 0.2\nmomentum = 0.9\n\n[gsnr]\nenabled = true\ngamma = 0.1"
        static let vrLAMB = "name = \"lamb\"\nlr = 0.02\nweight_decay = 0.01\n\n[gsnr]\nenabled = true\ngamma = 0.1\ngroups_per_rank = 2"

        /// 100-byte buckets: each of the synthetic model's three dense layers gets its own bucket.
        static let buckets = ["--set", "exchange.bucket_mb=0.0001"]

        /// (optimizer, extra flags): plain, accumulated, GSNR with one group per rank, and GSNR with
        /// two groups per rank accumulated over micro-batches (24 per step: 12 per rank, 6 per group).
        static let cases: [(String, [String])] = [
            (momentum, []),
            (momentum, ["--set", "batch.micro=4"]),
            (vrMomentum, []),
            (vrLAMB, ["--set", "batch.micro=3"]),
        ]

        @Test(arguments: 0..<cases.count)
        func bucketsGiveTheSingleExchangeBitwiseOnTwoRanks(_ index: Int) throws {
            let (optimizer, extra) = Self.cases[index]
            let dir = try Scratch.folder("buckets-two-\(index)")
            try Scratch.dataset(at: dir + "/data.h5")
            let one = try OptimizerInvariance.train(dir, "single", ranks: 2, optimizer: optimizer, extra: extra)
            let many = try OptimizerInvariance.train(dir, "buckets", ranks: 2, optimizer: optimizer, extra: extra + Self.buckets)
            #expect(!one.0.isEmpty && one.0.map(\.1) == many.0.map(\.1), "losses differ \(extra)")
            #expect(Set(one.1.keys) == Set(many.1.keys) && !one.1.isEmpty)
            for (path, values) in one.1 {
                #expect(bitPatterns(values) == bitPatterns(many.1[path] ?? []), "\(path) differs \(extra)")
            }
            // Still one collective per step, and the wait after backward is logged on every line.
            let lines = try Scratch.metrics("\(dir)/buckets").filter { $0["loss"] != nil && $0["split"] == nil }
            #expect(!lines.isEmpty)
            #expect(lines.allSatisfy { $0["collectives"] as? Int == 1 && ($0["exchange_wait"] as? Double ?? -1) >= 0 })
        }

        @Test func bucketsAgreeWithinSummationOrderOnThreeRanks() throws {
            let dir = try Scratch.folder("buckets-three")
            try Scratch.dataset(at: dir + "/data.h5")
            for (name, optimizer) in [("momentum", Self.momentum), ("vr", Self.vrMomentum)] {
                let one = try OptimizerInvariance.train(dir, "\(name)-single", ranks: 3, optimizer: optimizer)
                let many = try OptimizerInvariance.train(dir, "\(name)-buckets", ranks: 3, optimizer: optimizer, extra: Self.buckets)
                OptimizerInvariance.expectClose(one, many, tolerance: 1e-5, "\(name): buckets vs one allreduce on 3 ranks")
            }
        }

        @Test func bucketsRefuseLBFGSAndTheFullBatch() throws {
            let dir = try Scratch.folder("buckets-bad")
            try Scratch.dataset(at: dir + "/data.h5")
            try Scratch.job(at: "\(dir)/lbfgs.toml", data: dir + "/data.h5", out: "\(dir)/run", optimizer: "name = \"lbfgs\"")
            try Scratch.job(at: "\(dir)/full.toml", data: dir + "/data.h5", out: "\(dir)/run")
            for (name, extra) in [("lbfgs", []), ("full", ["--set", "batch.global=\"full\""])] {
                let launch = try Launcher.run(ranks: 2, ["train", "\(dir)/\(name).toml"] + extra + Self.buckets)
                #expect(launch.exitCode == 2, "\(name)")
                #expect(launch.lockstepErrors.count == 1 && launch.lockstepErrors.first?.contains("exchange.bucket_mb") == true,
                        "\(name): \(launch.stderr)")
                #expect(!FileManager.default.fileExists(atPath: "\(dir)/run"), "\(name): nothing is written")
            }
        }
    }
}
