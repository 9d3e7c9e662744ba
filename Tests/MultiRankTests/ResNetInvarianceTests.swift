// The ResNet layers keep the contract under real mpirun: BatchNorm with group or global
// statistics, residual blocks, dropout and augmentation (random crops) train the same on 1, 2 and 4 ranks (losses,
// parameters and running statistics within 1e-4), group statistics cost no collective beyond the
// step's one, a stop and resume is bitwise (running statistics included), local statistics say on
// the first line that they break invariance, and a group that does not divide a rank's pass is a
// one-line usage error on every rank.

import Foundation
import Lockstep
import Testing

extension MultiRank {
    @Suite struct ResNetInvariance {
        /// conv (no bias) → BN+ReLU → block (identity) → block (stride 2, projection) → dropout → GAP → dense 4.
        static func layers(_ stats: String) -> String {
            let group = stats == "group" ? ", group = 4" : ""
            let bnGroup = stats == "group" ? ", bn_group = 4" : ""
            return """
            layers = [
              { type = "conv2d", channels = 4, kernel = 3, padding = 1, bias = false, activation = "identity" },
              { type = "batchnorm", stats = "\(stats)"\(group), activation = "relu" },
              { type = "residual", channels = 4, bn_stats = "\(stats)"\(bnGroup) },
              { type = "residual", channels = 6, stride = 2, bn_stats = "\(stats)"\(bnGroup) },
              { type = "dropout", rate = 0.2 },
              { type = "globalavgpool" },
              { type = "dense", units = 4 },
            ]
            """
        }

        /// Writes the job (ConvInvariance's 8×8 images, batch 32, 20 steps, random crops) and runs it.
        /// `stopAt`: the step whose checkpoint to read (the last, unless the run is told to stop earlier).
        static func train(_ dir: String, _ name: String, ranks: Int?, stats: String = "group", steps: Int = 20,
                          stopAt: Int? = nil, extra: [String] = []) throws -> (Launch, [(Int, Double)], [String: [Float]]) {
            let out = "\(dir)/\(name)"
            let path = "\(dir)/\(name).toml"
            try Scratch.job(at: path, data: dir + "/images.h5", out: out, steps: steps, batch: 32,
                            optimizer: "lr = 0.05\nmomentum = 0.9\nweight_decay = 1e-4")
            let text = try String(contentsOfFile: path, encoding: .utf8)
            let mlp = try #require(text.split(separator: "\n").first { $0.hasPrefix("layers =") })
            // Random crops of the zero-padded image (no flips: the class is the blob's quadrant).
            try (text.replacingOccurrences(of: String(mlp), with: layers(stats)) + "\n[augment]\ncrop_padding = 1\n")
                .write(toFile: path, atomically: true, encoding: .utf8)
            let launch = try Launcher.run(ranks: ranks, ["train", path] + extra + (stopAt.map { ["--stop-after", "\($0)"] } ?? []))
            #expect(launch.exitCode == 0, "\(name): \(launch.stderr)")
            guard launch.exitCode == 0 else { return (launch, [], [:]) }
            return (launch, try Scratch.losses(out), try Scratch.checkpointTensors(Scratch.checkpoint(out, step: stopAt ?? steps)))
        }

        /// The `collectives` field of every logged step.
        static func collectives(_ runDir: String) throws -> Set<Int> {
            Set(try Scratch.metrics(runDir).compactMap { ($0["collectives"] as? NSNumber)?.intValue })
        }

        @Test(arguments: ["group", "global"])
        func oneTwoAndFourRanksAgree(_ stats: String) throws {
            let dir = try Scratch.folder("resnet-invariance-\(stats)")
            try ConvInvariance.images(at: dir + "/images.h5")
            let one = try Self.train(dir, "one", ranks: nil, stats: stats)
            let two = try Self.train(dir, "two", ranks: 2, stats: stats)
            let four = try Self.train(dir, "four", ranks: 4, stats: stats)
            // It trained, and the checkpoint holds the running statistics under the block.
            #expect(one.1.last!.1 < one.1.first!.1 * 0.9, "\(stats): \(one.1.first!.1) → \(one.1.last!.1)")
            #expect(one.2.keys.contains("/model/block1/shortcut_bn/running_var") && one.2.keys.contains("/model/bn0/running_mean"))
            #expect(one.2["/model/block0/bn2/running_var"] != [Float](repeating: 1, count: 4), "running statistics never moved")
            OptimizerInvariance.expectClose((one.1, one.2), (two.1, two.2), tolerance: 1e-4, "ResNet (\(stats)) 1 vs 2 ranks")
            OptimizerInvariance.expectClose((one.1, one.2), (four.1, four.2), tolerance: 1e-4, "ResNet (\(stats)) 1 vs 4 ranks")
            // Group statistics ride in the step's one allreduce; global ones add two per BN layer
            // (6 of them) per pass, which the first line counts.
            let perStep = stats == "group" ? 1 : 1 + 2 * 6
            #expect(try Self.collectives("\(dir)/four") == [perStep])
            #expect(two.0.stdout.contains(stats == "group" ? "group statistics over 4 samples" : "\(2 * 6) more collectives per step"),
                    "\(two.0.stdout)")
        }

        /// The running statistics ride in the top bucket's slots: buckets end bitwise where one
        /// allreduce per step leaves 2 ranks.
        @Test func bucketsCarryTheStatisticsBitwise() throws {
            let dir = try Scratch.folder("resnet-buckets")
            try ConvInvariance.images(at: dir + "/images.h5")
            let single = try Self.train(dir, "single", ranks: 2)
            let buckets = try Self.train(dir, "buckets", ranks: 2, extra: ["--set", "exchange.bucket_mb=0.0001"])
            #expect(buckets.0.stdout.contains("buckets overlapped with backward"), "\(buckets.0.stdout)")
            #expect(!single.2.isEmpty && Set(single.2.keys) == Set(buckets.2.keys))
            for (path, values) in single.2 {
                #expect(bitPatterns(values) == bitPatterns(buckets.2[path] ?? []), "\(path) differs")
            }
        }

        /// GSNR's gradient groups (4 in all: 1 rank × 4, 2 ranks × 2) with BatchNorm groups inside
        /// them: the statistics are copied into the moments buffer and the runs agree.
        @Test func gsnrGroupsWithBatchNormAgree() throws {
            let dir = try Scratch.folder("resnet-gsnr")
            try ConvInvariance.images(at: dir + "/images.h5")
            let one = try Self.train(dir, "one", ranks: nil, extra: ["--set", "gsnr.enabled=true", "--set", "gsnr.groups_per_rank=4"])
            let two = try Self.train(dir, "two", ranks: 2, extra: ["--set", "gsnr.enabled=true", "--set", "gsnr.groups_per_rank=2"])
            #expect(one.2["/model/bn0/running_var"] != [Float](repeating: 1, count: 4), "running statistics never moved")
            OptimizerInvariance.expectClose((one.1, one.2), (two.1, two.2), tolerance: 1e-4, "VR-SGD ResNet 1 vs 2 ranks")
        }

        @Test func stopAndResumeIsBitwise() throws {
            let dir = try Scratch.folder("resnet-resume")
            try ConvInvariance.images(at: dir + "/images.h5")
            let straight = try Self.train(dir, "straight", ranks: 2, steps: 30)
            _ = try Self.train(dir, "split", ranks: 2, steps: 30, stopAt: 17)
            let resumed = try Launcher.run(ranks: 2, ["train", "\(dir)/split.toml", "--resume"])
            #expect(resumed.exitCode == 0, "\(resumed.stderr)")
            let b = try Scratch.checkpointTensors(Scratch.checkpoint("\(dir)/split", step: 30))
            #expect(straight.2.count == b.count && straight.2.keys.contains("/model/block0/bn1/running_mean"))
            for (path, values) in straight.2 {
                #expect(bitPatterns(values) == bitPatterns(try #require(b[path])), "\(path) differs after resume")
            }
            #expect(try Scratch.losses("\(dir)/split").map(\.1) == straight.1.map(\.1))
        }

        @Test func localStatisticsSayTheyAreNotInvariant() throws {
            let dir = try Scratch.folder("resnet-local")
            try ConvInvariance.images(at: dir + "/images.h5")
            let run = try Self.train(dir, "local", ranks: 2, stats: "local", steps: 4)
            let first = run.0.stdout.split(separator: "\n").first.map(String.init) ?? ""
            #expect(first.hasPrefix("lockstep:") && first.contains("NOT rank-count invariant"), "\(first)")
        }

        @Test func aGroupThatDoesNotDivideThePassIsAUsageError() throws {
            let dir = try Scratch.folder("resnet-bad-group")
            try ConvInvariance.images(at: dir + "/images.h5", train: 96, test: 24)
            try Scratch.job(at: "\(dir)/job.toml", data: dir + "/images.h5", out: "\(dir)/run", batch: 24)
            // 24 over 2 ranks: passes of 12, which groups of 8 do not divide.
            let launch = try Launcher.run(ranks: 2, ["train", "\(dir)/job.toml", "--set",
                                                     "model.layers=[{type=\"conv2d\", channels=2, kernel=3, bias=false}, {type=\"batchnorm\", group=8}, {type=\"globalavgpool\"}, {units=4}]"])
            #expect(launch.exitCode == 2)
            #expect(launch.lockstepErrors.count == 1, "\(launch.stderr)")
            #expect(launch.lockstepErrors.first?.contains("model.layers.1.group") == true, "\(launch.stderr)")
        }
    }
}
