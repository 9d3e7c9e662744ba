// [augment] and [loss] in real runs: the small CNN of ConvInvarianceTests with random crops
// (padding 2), flips and label smoothing, on images whose classes survive both, trains the same
// on 1, 2 and 3 ranks (the draws follow the dataset row, not the rank), differs from the plain
// run, and resumes bitwise.

import Foundation
import Lockstep
import Testing

extension MultiRank {
    @Suite struct AugmentationRuns {
        static let augment = ["--set", "augment.crop_padding=2", "--set", "augment.flip=true", "--set", "loss.label_smoothing=0.1"]

        /// [N, 8, 8] float images in 4 classes that crops and flips keep: the class is the size of a
        /// bright square (side 1 to 4) on uniform noise, at a random place at least 2 pixels from
        /// every border, so no crop cuts it. (ConvInvariance's classes are quadrants, which a flip
        /// exchanges.)
        static func images(at path: String, train: Int = 480, test: Int = 96) throws {
            var rng = Xoshiro256(seed: 23)
            func split(_ n: Int) -> ([Float], [Int64]) {
                var x: [Float] = [], y: [Int64] = []
                for _ in 0..<n {
                    var image = (0..<64).map { _ in Float(rng.nextUnit() * 0.6 - 0.3) }
                    let label = rng.next(below: 4), side = label + 1
                    let (top, left) = (2 + rng.next(below: 5 - side), 2 + rng.next(below: 5 - side))
                    for r in top..<(top + side) { for c in left..<(left + side) { image[r * 8 + c] += 1 } }
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

        /// ConvInvariance's job (30 steps of batch 24 on 480 images: an epoch boundary at step 20),
        /// written to `<dir>/<name>.toml` with the run in `<dir>/<name>`.
        static func job(_ dir: String, _ name: String) throws -> String {
            let path = "\(dir)/\(name).toml"
            try Scratch.job(at: path, data: dir + "/images.h5", out: "\(dir)/\(name)", steps: 30, batch: 24,
                            optimizer: "lr = 0.1\nmomentum = 0.9\nnesterov = true\nweight_decay = 1e-4")
            let text = try String(contentsOfFile: path, encoding: .utf8)
            let mlp = try #require(text.split(separator: "\n").first { $0.hasPrefix("layers =") })
            try text.replacingOccurrences(of: String(mlp), with: ConvInvariance.layers).write(toFile: path, atomically: true, encoding: .utf8)
            return path
        }

        @Test func augmentedRunsAgreeOn1To3RanksAndDifferFromPlain() throws {
            let dir = try Scratch.folder("augment-invariance")
            try Self.images(at: dir + "/images.h5")
            var runs: [Int: ([(Int, Double)], [String: [Float]])] = [:]
            for ranks in [1, 2, 3] {
                let launch = try Launcher.run(ranks: ranks == 1 ? nil : ranks, ["train", try Self.job(dir, "run\(ranks)")] + Self.augment)
                #expect(launch.exitCode == 0, "\(ranks) ranks: \(launch.stderr)")
                #expect(launch.stdout.contains("training: random crops (padding 2), random horizontal flips, label smoothing 0.1"), "\(launch.stdout)")
                runs[ranks] = (try Scratch.losses("\(dir)/run\(ranks)"), try Scratch.checkpointTensors(Scratch.checkpoint("\(dir)/run\(ranks)", step: 30)))
            }
            let one = try #require(runs[1])
            #expect(one.0.count == 30)
            // It trained through the augmentation: the loss fell.
            #expect(one.0.last!.1 < one.0.first!.1 * 0.9, "\(one.0.first!.1) → \(one.0.last!.1)")
            for ranks in [2, 3] {
                OptimizerInvariance.expectClose(one, try #require(runs[ranks]), tolerance: 1e-4, "augmented CNN 1 vs \(ranks) ranks")
            }
            // The stored config holds the sections, so the checkpoint says how it was trained.
            let config = try String(contentsOfFile: "\(dir)/run1/config.toml", encoding: .utf8)
            #expect(config.contains("[augment]\ncrop_padding = 2\nflip = true") && config.contains("[loss]\nlabel_smoothing = 0.1"))

            // Without augmentation and smoothing the same job trains otherwise.
            let plain = try Launcher.run(ranks: nil, ["train", try Self.job(dir, "plain")])
            #expect(plain.exitCode == 0, "\(plain.stderr)")
            let plainLosses = try Scratch.losses("\(dir)/plain")
            #expect(plainLosses.count == 30 && zip(plainLosses, one.0).filter { $0.1 != $1.1 }.count == 30)
        }

        /// 2 ranks, straight to 30 vs stopped at 17 and resumed: bitwise the same parameters,
        /// momentum and losses (the draws depend on seed, epoch and row only; step 20 crosses an epoch).
        @Test func augmentedRunResumesBitwise() throws {
            let dir = try Scratch.folder("augment-resume")
            try Self.images(at: dir + "/images.h5")
            let straight = try Launcher.run(ranks: 2, ["train", try Self.job(dir, "straight")] + Self.augment)
            #expect(straight.exitCode == 0, "\(straight.stderr)")
            let split = try Self.job(dir, "split")
            let first = try Launcher.run(ranks: 2, ["train", split, "--stop-after", "17"] + Self.augment)
            #expect(first.exitCode == 0 && first.stdout.contains("stopped after step 17"), "\(first.stdout)\(first.stderr)")
            let second = try Launcher.run(ranks: 2, ["train", split, "--resume"] + Self.augment)
            #expect(second.exitCode == 0, "\(second.stderr)")
            #expect(second.stdout.contains("resumed at step 17"))
            let a = try Scratch.checkpointTensors(Scratch.checkpoint("\(dir)/straight", step: 30))
            let b = try Scratch.checkpointTensors(Scratch.checkpoint("\(dir)/split", step: 30))
            #expect(a.count == b.count && a.count >= 12)
            for (path, values) in a {
                #expect(bitPatterns(values) == bitPatterns(try #require(b[path])), "\(path) differs after resume")
            }
            let straightLosses = try Scratch.losses("\(dir)/straight"), splitLosses = try Scratch.losses("\(dir)/split")
            #expect(splitLosses.map(\.0) == Array(1...30))
            #expect(splitLosses.map { $0.1.bitPattern } == straightLosses.map { $0.1.bitPattern })
        }
    }
}
