// data.validation under a real mpirun: holding out the last N training rows trains bitwise like a
// file whose training split stops before those rows and stores them as /validation (so they are
// never trained on, and the standardisation statistics leave them out), with the same validation
// metrics, in every data.load mode; a fraction holds out ⌈f·N⌉ rows and the first lines say so.

import Foundation
import Lockstep
import Testing

extension MultiRank {
    @Suite struct ValidationSplit {
        /// `source`'s splits with its last `held` training rows moved to /validation.
        static func moveTail(of source: String, rows held: Int, to path: String) throws {
            let input = try HDF5File.open(source)
            defer { input.close() }
            let x = try input.read("/train/x", as: Float.self), y = try input.read("/train/y", as: Int64.self)
            let width = try input.info("/train/x").shape[1], cut = y.count - held
            let output = try HDF5File.create(path)
            try output.write("/train/x", Array(x[..<(cut * width)]), shape: [cut, width])
            try output.write("/train/y", Array(y[..<cut]), shape: [cut])
            try output.write("/validation/x", Array(x[(cut * width)...]), shape: [held, width])
            try output.write("/validation/y", Array(y[cut...]), shape: [held])
            try output.write("/test/x", try input.read("/test/x", as: Float.self), shape: try input.info("/test/x").shape)
            try output.write("/test/y", try input.read("/test/y", as: Int64.self), shape: [try input.info("/test/y").shape[0]])
            output.close()
        }

        /// (step, accuracy, loss) of every evaluation of `split`.
        static func evaluations(_ run: String, split: String) throws -> [[Double]] {
            try Scratch.metrics(run).filter { $0["split"] as? String == split }.map {
                [Double($0["step"] as! Int), ($0["accuracy"] as! NSNumber).doubleValue, ($0["loss"] as! NSNumber).doubleValue]
            }
        }

        @Test(arguments: [1, 2])
        func heldOutRowsTrainLikeAStoredValidationSplit(_ ranks: Int) throws {
            let dir = try Scratch.folder("validation")
            try Scratch.dataset(at: dir + "/whole.h5")
            try Self.moveTail(of: dir + "/whole.h5", rows: 120, to: dir + "/moved.h5")
            try Scratch.job(at: dir + "/job.toml", data: dir + "/whole.h5", out: dir + "/unused", steps: 40)
            // Standardisation makes the statistics part of the check: they must leave the held-out rows out.
            let common = ["data.normalization=\"standardize\"", "run.log_every=20"]
            func train(_ name: String, _ sets: [String]) throws -> String {
                let out = "\(dir)/\(name)"
                let run = try Launcher.run(ranks: ranks, ["train", dir + "/job.toml"] + (common + sets + ["run.out=\"\(out)\""]).flatMap { ["--set", $0] })
                #expect(run.exitCode == 0, "\(name): \(run.stderr)")
                return out
            }
            let stored = try train("stored", ["data.file=\"\(dir)/moved.h5\""])
            let reference = try Scratch.checkpointTensors(Scratch.checkpoint(stored, step: 40))
            let expected = try Self.evaluations(stored, split: "validation")
            #expect(expected.count == 4, "one validation line per evaluation (every 10 steps)")
            for mode in ["memory", "stream", "node"] {
                let held = try train("held-\(mode)", ["data.validation=120", "data.load=\"\(mode)\""])
                let tensors = try Scratch.checkpointTensors(Scratch.checkpoint(held, step: 40))
                #expect(tensors.keys.sorted() == reference.keys.sorted())
                for (name, values) in reference {
                    #expect(tensors[name] == values, "\(mode): \(name) differs from the stored-split run")
                }
                #expect(try Self.evaluations(held, split: "validation") == expected, "\(mode): validation metrics differ")
                #expect(try Self.evaluations(held, split: "test") == Self.evaluations(stored, split: "test"))
            }
        }

        @Test func aFractionHoldsOutTheCeilingAndSaysSo() throws {
            let dir = try Scratch.folder("validation-fraction")
            try Scratch.dataset(at: dir + "/data.h5")
            try Scratch.job(at: dir + "/job.toml", data: dir + "/data.h5", out: dir + "/run", steps: 20)
            // 600 training rows: ⌈0.105 · 600⌉ = 63 held out, 537 left (steps per epoch follow them).
            let run = try Launcher.run(ranks: 2, ["train", dir + "/job.toml", "--set", "data.validation=0.105"])
            #expect(run.exitCode == 0, "\(run.stderr)")
            #expect(run.stdout.contains("validation: the last 63 of the training rows"), "\(run.stdout)")
            #expect(run.stdout.contains("22 steps/epoch"), "537 rows at batch 24: \(run.stdout)")
            let lines = try Self.evaluations(dir + "/run", split: "validation")
            #expect(lines.map { Int($0[0]) } == [10, 20])
            // Accuracy over 63 samples is a multiple of 1/63.
            for line in lines { #expect(abs(line[1] * 63 - (line[1] * 63).rounded()) < 1e-9) }
            let config = try String(contentsOfFile: dir + "/run/config.toml", encoding: .utf8)
            #expect(config.contains("validation = 0.105"))
        }
    }
}
