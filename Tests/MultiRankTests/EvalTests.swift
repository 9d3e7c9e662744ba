// `lockstep eval`: runs trained under mpirun -n 2 (an MLP with a held-out validation split, and a
// conv + BatchNorm + residual model on uint8 images), evaluated from their checkpoints alone on
// 1, 2 and 3 ranks: bitwise the run's own last evaluation, a consistent confusion matrix, and
// every mistake one line with exit 2 on every rank.

import Foundation
import Lockstep
import Testing

extension MultiRank {
    @Suite struct Eval {
        /// A learnable float set [N, 20], 4 classes; splits large enough for several 256-row blocks.
        static func mlpRun() throws -> (dir: String, data: String) {
            let dir = try Scratch.folder("eval-mlp")
            let data = dir + "/data.h5"
            try Scratch.dataset(at: data, train: 1600, test: 1100, width: 20, classes: 4)
            try """
            [run]
            seed = 3
            steps = 30
            out = "\(dir)/run"
            eval_every = 10
            checkpoint_every = 10
            [data]
            file = "\(data)"
            normalization = "standardize"
            validation = 700
            [model]
            layers = [{ units = 32 }, { units = 16 }, { units = 4 }]
            [batch]
            global = 24
            [optimizer]
            lr = 0.1
            momentum = 0.9
            """.write(toFile: dir + "/job.toml", atomically: true, encoding: .utf8)
            let launch = try Launcher.run(ranks: 2, ["train", dir + "/job.toml"])
            try #require(launch.exitCode == 0, "\(launch.stderr)")
            return (dir, data)
        }

        /// uint8 images [N, 1, 6, 6] (normalization "scale"), labels by a fixed random teacher;
        /// a conv, BatchNorm and a residual block, so the checkpoint holds running statistics.
        static func convRun() throws -> (dir: String, data: String) {
            let dir = try Scratch.folder("eval-conv")
            let data = dir + "/data.h5"
            try images(at: data, train: 512, test: 600, side: 6)
            try """
            [run]
            seed = 5
            steps = 24
            out = "\(dir)/run"
            eval_every = 12
            checkpoint_every = 12
            [data]
            file = "\(data)"
            normalization = "scale"
            [model]
            layers = [
              { type = "conv2d", channels = 4, kernel = 3, padding = 1, bias = false, activation = "identity" },
              { type = "batchnorm", group = 8, activation = "relu" },
              { type = "residual", channels = 4, bn_group = 8 },
              { type = "globalavgpool" },
              { type = "dense", units = 3 },
            ]
            [batch]
            global = 32
            [optimizer]
            lr = 0.05
            momentum = 0.9
            """.write(toFile: dir + "/job.toml", atomically: true, encoding: .utf8)
            let launch = try Launcher.run(ranks: 2, ["train", dir + "/job.toml"])
            try #require(launch.exitCode == 0, "\(launch.stderr)")
            return (dir, data)
        }

        static func images(at path: String, train: Int, test: Int, side: Int) throws {
            var rng = Xoshiro256(seed: 11)
            let width = side * side
            let teacher = (0..<(3 * width)).map { _ in rng.nextUnit() * 2 - 1 }
            let file = try HDF5File.create(path)
            for (split, n) in [("train", train), ("test", test)] {
                var x: [UInt8] = [], y: [Int64] = []
                for _ in 0..<n {
                    let sample = (0..<width).map { _ in UInt8(rng.nextUnit() * 255) }
                    let scores = (0..<3).map { c in (0..<width).reduce(0.0) { $0 + Double(sample[$1]) * teacher[c * width + $1] } }
                    x += sample
                    y.append(Int64(scores.indices.max { scores[$0] < scores[$1] }!))
                }
                try file.write("/\(split)/x", x, shape: [n, 1, side, side])
                try file.write("/\(split)/y", y, shape: [n])
            }
            file.close()
        }

        /// `lockstep eval ... --json` on `ranks`, parsed; the numbers "accuracy", "loss" and each
        /// "class_accuracy" are replaced by Swift's exact parse of their text (Foundation's JSON
        /// parser on Linux can be off by an ulp).
        static func eval(ranks: Int, _ args: [String]) throws -> [String: Any] {
            let launch = try Launcher.run(ranks: ranks, ["eval"] + args + ["--json"])
            try #require(launch.exitCode == 0, "\(launch.stderr)")
            let line = try #require(launch.stdout.split(separator: "\n").last, "no output")
            var parsed = try #require(try JSONSerialization.jsonObject(with: Data(line.utf8)) as? [String: Any], "\(line)")
            parsed["accuracy"] = exactNumber(String(line), "accuracy")
            parsed["loss"] = exactNumber(String(line), "loss")
            if let range = line.range(of: "\"class_accuracy\": [") {
                let list = line[range.upperBound...].prefix { $0 != "]" }
                parsed["class_accuracy"] = list.split(separator: ",").map { Double($0.trimmingCharacters(in: .whitespaces)) as Any }
            }
            return parsed
        }

        /// The number after `"key": ` in a JSON line, parsed by Swift (exact).
        static func exactNumber(_ line: String, _ key: String) -> Double? {
            guard let range = line.range(of: "\"\(key)\": ") else { return nil }
            return Double(String(line[range.upperBound...].prefix { $0 != "," && $0 != "}" }))
        }

        /// The run's last evaluation line of `split` (at `step` when given), with exact numbers.
        static func lastEval(_ run: String, split: String, step: Int? = nil) throws -> [String: Any] {
            let text = try String(contentsOfFile: run + "/metrics.jsonl", encoding: .utf8)
            let line = try #require(text.split(separator: "\n").last { line in
                line.contains("\"split\": \"\(split)\"") && (step.map { line.hasPrefix("{\"step\": \($0),") } ?? true)
            })
            var parsed = try #require(try JSONSerialization.jsonObject(with: Data(line.utf8)) as? [String: Any])
            parsed["accuracy"] = exactNumber(String(line), "accuracy")
            parsed["loss"] = exactNumber(String(line), "loss")
            return parsed
        }

        static func bits(_ value: Any?) -> UInt64? { (value as? Double)?.bitPattern }

        /// Eval on 1, 2 and 3 ranks equals the run's own last evaluation of `split` bit for bit;
        /// the confusion matrix's rows count `labels`, its trace / N is the accuracy.
        static func checkAgrees(run: String, checkpoint: String, split: String, labels: [Int64], classes: Int) throws {
            let logged = try lastEval(run, split: split)
            for ranks in [1, 2, 3] {
                let r = try eval(ranks: ranks, [checkpoint, "--split", split])
                #expect(r["step"] as? Int == logged["step"] as? Int)
                #expect(r["samples"] as? Int == labels.count)
                #expect(bits(r["accuracy"]) == bits(logged["accuracy"]), "\(split) accuracy on \(ranks) rank(s): \(r["accuracy"] ?? "-") vs \(logged["accuracy"] ?? "-")")
                #expect(bits(r["loss"]) == bits(logged["loss"]), "\(split) loss on \(ranks) rank(s): \(r["loss"] ?? "-") vs \(logged["loss"] ?? "-")")
                let confusion = try #require(r["confusion"] as? [[Int]])
                #expect(confusion.count == classes && confusion.allSatisfy { $0.count == classes })
                let counts = (0..<classes).map { c in labels.filter { $0 == c }.count }
                #expect(confusion.map { $0.reduce(0, +) } == counts, "rows sum to the class counts")
                #expect(r["class_samples"] as? [Int] == counts)
                let trace = (0..<classes).reduce(0) { $0 + confusion[$1][$1] }
                #expect(r["correct"] as? Int == trace)
                #expect(Double(trace) / Double(labels.count) == r["accuracy"] as? Double)
                let perClass = try #require(r["class_accuracy"] as? [Any])
                for c in 0..<classes where counts[c] > 0 {
                    #expect(perClass[c] as? Double == Double(confusion[c][c]) / Double(counts[c]))
                }
            }
        }

        @Test func mlpTestAndHeldOutValidationEqualTheRunsLastEvaluation() throws {
            let (dir, data) = try Self.mlpRun()
            let checkpoint = Scratch.checkpoint(dir + "/run", step: 30)
            let file = try HDF5File.open(data)
            let testLabels = try file.read("/test/y", as: Int64.self)
            let trainLabels = try file.read("/train/y", as: Int64.self)
            file.close()
            try Self.checkAgrees(run: dir + "/run", checkpoint: checkpoint, split: "test", labels: testLabels, classes: 4)
            // data.validation = 700: the last 700 training rows, never trained on.
            try Self.checkAgrees(run: dir + "/run", checkpoint: checkpoint, split: "validation",
                                 labels: Array(trainLabels.suffix(700)), classes: 4)
            // A run directory means its newest checkpoint; --split train is the 900 rows trained on.
            let train = try Self.eval(ranks: 2, [dir + "/run", "--split", "train"])
            #expect(train["checkpoint"] as? String == checkpoint)
            #expect(train["samples"] as? Int == 900)
            #expect((train["confusion"] as? [[Int]])?.map { $0.reduce(0, +) } == (0..<4).map { c in trainLabels.prefix(900).filter { $0 == c }.count })
            // An earlier checkpoint equals the run's evaluation at its own step.
            let early = try Self.eval(ranks: 3, [Scratch.checkpoint(dir + "/run", step: 10)])
            let logged = try Self.lastEval(dir + "/run", split: "test", step: 10)
            #expect(logged["step"] as? Int == 10)
            #expect(Self.bits(early["loss"]) == Self.bits(logged["loss"]) && Self.bits(early["accuracy"]) == Self.bits(logged["accuracy"]))
            // A checkpoint from before the normalisation and sample shape were recorded (outside
            // the checksum, so h5py can remove them): the statistics are recomputed from the rows
            // trained on, and the result is the same.
            let old = dir + "/old.h5"
            try FileManager.default.copyItem(atPath: checkpoint, toPath: old)
            let (removed, log) = try Interop.runPython("""
            import h5py
            with h5py.File("\(old)", "a") as f:
                for k in ("normalization", "input_scale", "input_shift", "normalization_mean", "normalization_std", "sample_shape"):
                    del f.attrs[k]
            """)
            try #require(removed == 0, "needs h5py for /usr/bin/python3: \(log)")
            for split in ["test", "validation"] {
                let r = try Self.eval(ranks: 3, [old, "--split", split])
                let logged = try Self.lastEval(dir + "/run", split: split)
                #expect(Self.bits(r["loss"]) == Self.bits(logged["loss"]) && Self.bits(r["accuracy"]) == Self.bits(logged["accuracy"]), "\(split)")
            }
            // Markdown by default: the summary line and both tables.
            let markdown = try Launcher.run(ranks: 2, ["eval", checkpoint])
            #expect(markdown.exitCode == 0, "\(markdown.stderr)")
            #expect(markdown.stdout.contains("| class | samples | correct | accuracy |"))
            #expect(markdown.stdout.contains("| true \\ predicted | 0 | 1 | 2 | 3 |"))
            #expect(markdown.stdout.split(separator: "\n").filter { $0.hasPrefix("accuracy ") }.count == 1, "rank 0 alone prints")
        }

        @Test func convBatchNormResidualEqualsTheRunsLastEvaluation() throws {
            let (dir, data) = try Self.convRun()
            let checkpoint = Scratch.checkpoint(dir + "/run", step: 24)
            let tensors = try Scratch.checkpointTensors(checkpoint)
            #expect(tensors["/model/block0/bn2/running_var"] != nil && tensors["/model/bn0/running_mean"] != nil)
            let file = try HDF5File.open(data)
            let labels = try file.read("/test/y", as: Int64.self)
            file.close()
            try Self.checkAgrees(run: dir + "/run", checkpoint: checkpoint, split: "test", labels: labels, classes: 3)
        }

        @Test func mistakesAreOneLineExit2OnEveryRank() throws {
            let (dir, _) = try Self.convRun()
            let checkpoint = Scratch.checkpoint(dir + "/run", step: 24)
            // A damaged copy: the first half of the file.
            let damaged = dir + "/damaged.h5"
            let bytes = try Data(contentsOf: URL(fileURLWithPath: checkpoint))
            try bytes.prefix(bytes.count / 2).write(to: URL(fileURLWithPath: damaged))
            // A data file whose samples have another shape ([N, 1, 5, 5]).
            try Self.images(at: dir + "/small.h5", train: 40, test: 40, side: 5)
            // The same shape, stored as float32 instead of uint8: the inputs would be scaled otherwise.
            let floats = try HDF5File.create(dir + "/floats.h5")
            for split in ["train", "test"] {
                try floats.write("/\(split)/x", [Float](repeating: 0.5, count: 40 * 36), shape: [40, 1, 6, 6])
                try floats.write("/\(split)/y", [Int64](repeating: 1, count: 40), shape: [40])
            }
            floats.close()
            let cases: [([String], String)] = [
                ([dir + "/no-such.h5"], "no such checkpoint"),
                ([damaged], "damaged"),
                ([checkpoint, "--split", "validation"], "no validation split"),
                ([checkpoint, "--data", dir + "/small.h5"], "shape"),
                ([checkpoint, "--data", dir + "/missing.h5"], "no such readable data file"),
                ([checkpoint, "--data", dir + "/floats.h5"], "stored as another type"),
                ([checkpoint, "--split", "dev"], "--split must be test, train or validation"),
            ]
            for (args, words) in cases {
                for ranks in [1, 2] {
                    let launch = try Launcher.run(ranks: ranks, ["eval"] + args, timeout: 60)
                    #expect(!launch.timedOut, "\(args) on \(ranks) rank(s) hung")
                    #expect(launch.exitCode == 2, "\(args) on \(ranks) rank(s): exit \(launch.exitCode): \(launch.stderr)")
                    let lines = launch.stderr.split(separator: "\n").filter { $0.hasPrefix("lockstep:") }
                    #expect(lines.count == 1 && lines[0].contains(words), "\(args) on \(ranks) rank(s): \(launch.stderr)")
                    #expect(launch.stdout.isEmpty)
                }
            }
        }
    }
}
