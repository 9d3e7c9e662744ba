// A small CNN keeps rank-count invariance: the same job on 1 rank and on 3 ranks under mpirun
// ends with the same losses and parameters up to summation order, and its checkpoint holds the
// conv weights with their 4-D shape. A shape error in the model is one usage line on every rank.

import Foundation
import Lockstep
import Testing

extension MultiRank {
    @Suite struct ConvInvariance {
        /// [N, 8, 8] float images in 4 classes: the class is the quadrant holding a bright 3×3
        /// blob (at a random place inside it) on uniform noise; learnable by conv + pool.
        static func images(at path: String, train: Int = 480, test: Int = 96) throws {
            var rng = Xoshiro256(seed: 17)
            func split(_ n: Int) -> ([Float], [Int64]) {
                var x: [Float] = [], y: [Int64] = []
                for _ in 0..<n {
                    var image = (0..<64).map { _ in Float(rng.nextUnit() * 0.6 - 0.3) }
                    let label = rng.next(below: 4)
                    let top = (label / 2) * 4 + rng.next(below: 2), left = (label % 2) * 4 + rng.next(below: 2)
                    for r in top..<(top + 3) { for c in left..<(left + 3) { image[r * 8 + c] += 1 } }
                    x += image
                    y.append(Int64(label))
                }
                return (x, y)
            }
            let file = try HDF5File.create(path)
            let (trainX, trainY) = split(train), (testX, testY) = split(test)
            try file.write("/train/x", trainX, shape: [train, 8, 8])
            try file.write("/train/y", trainY, shape: [train])
            try file.write("/test/x", testX, shape: [test, 8, 8])
            try file.write("/test/y", testY, shape: [test])
            file.close()
        }

        /// conv 4@3×3 pad 1 → relu → maxpool 2 → conv 6@3×3 stride 2 pad 1 → relu → avgpool 2 → dense 4.
        static let layers = """
            layers = [
              { type = "conv2d", channels = 4, kernel = 3, padding = 1 },
              { type = "maxpool", kernel = 2 },
              { type = "conv2d", channels = 6, kernel = 3, stride = 2, padding = 1 },
              { type = "avgpool", kernel = 2 },
              { type = "dense", units = 4 },
            ]
            """

        static func train(_ dir: String, _ name: String, ranks: Int?, extra: [String] = []) throws
            -> ([(Int, Double)], [String: [Float]]) {
            let out = "\(dir)/\(name)"
            try Scratch.job(at: "\(dir)/\(name).toml", data: dir + "/images.h5", out: out, steps: 30, batch: 24,
                            optimizer: "lr = 0.1\nmomentum = 0.9\nnesterov = true\nweight_decay = 1e-4")
            // Scratch's job is an MLP; swap in the CNN (the [model] line is the only "layers =").
            let path = "\(dir)/\(name).toml"
            let text = try String(contentsOfFile: path, encoding: .utf8)
            let mlp = try #require(text.split(separator: "\n").first { $0.hasPrefix("layers =") })
            try text.replacingOccurrences(of: String(mlp), with: layers).write(toFile: path, atomically: true, encoding: .utf8)
            let launch = try Launcher.run(ranks: ranks, ["train", path] + extra)
            #expect(launch.exitCode == 0, "\(name): \(launch.stderr)")
            // A bucketed run says so (the model has three layers with parameters).
            #expect(launch.stdout.contains("exchange in 3 buckets") == extra.contains("exchange.bucket_mb=0.0001"), "\(launch.stdout)")
            return (try Scratch.losses(out), try Scratch.checkpointTensors(Scratch.checkpoint(out, step: 30)))
        }

        /// The bucketed exchange through conv layers (whose backward also lets the requests
        /// progress, once per sample): 100-byte buckets give each parameterised layer its own
        /// bucket, and 2 ranks end bitwise where one allreduce per step leaves them.
        @Test func bucketsThroughConvLayersAreBitwiseOnTwoRanks() throws {
            let dir = try Scratch.folder("conv-buckets")
            try Self.images(at: dir + "/images.h5")
            let one = try Self.train(dir, "single", ranks: 2)
            let many = try Self.train(dir, "buckets", ranks: 2, extra: ["--set", "exchange.bucket_mb=0.0001"])
            #expect(!one.0.isEmpty && one.0.map(\.1) == many.0.map(\.1), "losses differ")
            #expect(Set(one.1.keys) == Set(many.1.keys) && !one.1.isEmpty)
            for (path, values) in one.1 {
                #expect(bitPatterns(values) == bitPatterns(many.1[path] ?? []), "\(path) differs")
            }
        }

        @Test func oneRankAndThreeRanksAgree() throws {
            let dir = try Scratch.folder("conv-invariance")
            try Self.images(at: dir + "/images.h5")
            let one = try Self.train(dir, "one", ranks: nil)
            let three = try Self.train(dir, "three", ranks: 3)
            // It trained: the loss fell by a fifth at least.
            #expect(one.0.last!.1 < one.0.first!.1 * 0.8, "CNN: \(one.0.first!.1) → \(one.0.last!.1)")
            // Only the summation order differs (relative 1e-4).
            OptimizerInvariance.expectClose(one, three, tolerance: 1e-4, "CNN 1 vs 3 ranks")
            #expect(one.1.keys.contains("/model/conv1/weight") && one.1.keys.contains("/optimizer/momentum/conv0/weight"))

            let checkpoint = try HDF5File.open(Scratch.checkpoint(dir + "/one", step: 30))
            #expect(try checkpoint.info("/model/conv0/weight").shape == [4, 1, 3, 3])
            #expect(try checkpoint.info("/model/conv1/weight").shape == [6, 4, 3, 3])
            #expect(try checkpoint.info("/model/conv1/bias").shape == [6])
            #expect(try checkpoint.info("/model/dense0/weight").shape == [4, 6])
            checkpoint.close()
        }

        @Test func aKernelLargerThanTheImageIsAUsageError() throws {
            let dir = try Scratch.folder("conv-bad")
            try Self.images(at: dir + "/images.h5", train: 48, test: 24)
            try Scratch.job(at: "\(dir)/job.toml", data: dir + "/images.h5", out: "\(dir)/run")
            let launch = try Launcher.run(ranks: 2, ["train", "\(dir)/job.toml", "--set",
                                                     "model.layers=[{type=\"conv2d\", channels=2, kernel=9}, {units=4}]"])
            #expect(launch.exitCode == 2)
            #expect(launch.lockstepErrors.count == 1, "\(launch.stderr)")
            #expect(launch.lockstepErrors.first?.contains("model.layers.0.kernel") == true, "\(launch.stderr)")
        }
    }
}
