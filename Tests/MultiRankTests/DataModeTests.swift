// data.load = "stream" and "node" against "memory": the same job gives bitwise the same
// checkpoint on 1, 2 and 3 ranks (float32 and uint8 features, standardisation, micro-batches, GSNR groups, an
// increasing batch schedule), a stream run resumes bitwise (also from a memory run's
// checkpoint), a non-finite feature is found collectively with the in-memory message, a split
// larger than the process may hold streams where the in-memory path refuses it, and 3 ranks on
// one node share one copy.

import Foundation
import Lockstep
import Testing

extension MultiRank {
    @Suite struct DataModes {
        /// The synthetic set with its features quantised to bytes, for the uint8 path.
        static func uint8Dataset(at path: String, train: Int = 600, test: Int = 200, width: Int = 20) throws {
            var rng = Xoshiro256(seed: 11)
            let teacher = (0..<(width * 4)).map { _ in rng.nextUnit() * 2 - 1 }
            func split(_ n: Int) -> ([UInt8], [Int64]) {
                var x: [UInt8] = [], y: [Int64] = []
                for _ in 0..<n {
                    let sample = (0..<width).map { _ in UInt8(rng.nextUnit() * 255) }
                    let scores = (0..<4).map { c in (0..<width).reduce(0.0) { $0 + (Double(sample[$1]) / 255 - 0.5) * teacher[c * width + $1] } }
                    x += sample
                    y.append(Int64(scores.indices.max { scores[$0] < scores[$1] }!))
                }
                return (x, y)
            }
            let file = try HDF5File.create(path)
            let (trainX, trainY) = split(train), (testX, testY) = split(test)
            try file.write("/train/x", trainX, shape: [train, width])
            try file.write("/train/y", trainY, shape: [train])
            try file.write("/test/x", testX, shape: [test, width])
            try file.write("/test/y", testY, shape: [test])
            try file.finish()
        }

        /// What each case sets on top of the synthetic job (global batch 24, 600 samples, 80 steps:
        /// the increasing schedule runs epochs of 12, 24, 48 and 96), and whether it uses bytes.
        static let cases: [(name: String, bytes: Bool, sets: [String])] = [
            ("float32", false, []),
            ("uint8, standardized, micro-batches", true, ["data.normalization=\"standardize\"", "batch.micro=4"]),
            ("GSNR groups", false, ["gsnr.enabled=true", "gsnr.groups_per_rank=2"]),
            ("increasing batch", false, ["batch.global=12", "batch.schedule=\"increasing\"", "batch.growth=2", "batch.every_epochs=1"]),
        ]

        static func sets(_ list: [String]) -> [String] { list.flatMap { ["--set", $0] } }

        @Test(arguments: [1, 2, 3])
        func streamAndNodeTrainBitwiseLikeMemory(_ ranks: Int) throws {
            let dir = try Scratch.folder("data-modes")
            try Scratch.dataset(at: dir + "/float.h5")
            try Self.uint8Dataset(at: dir + "/bytes.h5")
            for (index, c) in Self.cases.enumerated() {
                try Scratch.job(at: "\(dir)/job\(index).toml", data: dir + (c.bytes ? "/bytes.h5" : "/float.h5"),
                                out: "\(dir)/unused", steps: 80)
                var checkpoints: [[String: [Float]]] = []
                for mode in ["memory", "stream", "node"] {
                    let out = "\(dir)/\(index)-\(mode)"
                    let run = try Launcher.run(ranks: ranks, ["train", "\(dir)/job\(index).toml"]
                                               + Self.sets(c.sets + ["data.load=\"\(mode)\"", "run.out=\"\(out)\"", "run.log_every=50"]))
                    #expect(run.exitCode == 0, "\(c.name), \(mode), \(ranks) rank(s): \(run.stderr)")
                    checkpoints.append(try Scratch.checkpointTensors(Scratch.checkpoint(out, step: 80)))
                }
                for (other, mode) in [(1, "stream"), (2, "node")] {
                    #expect(checkpoints[0].count >= 6 && checkpoints[0].count == checkpoints[other].count, "\(c.name), \(mode)")
                    for (path, values) in checkpoints[0] {
                        #expect(bitPatterns(values) == bitPatterns(checkpoints[other][path] ?? []), "\(c.name) on \(ranks) rank(s): \(path) differs between memory and \(mode)")
                    }
                }
            }
        }

        /// Stopped mid-epoch (25 steps per epoch) and resumed: streaming continues bitwise like a
        /// run that never stopped, whether the stopped run streamed, held the data in memory or
        /// shared it per node.
        @Test func streamResumesBitwise() throws {
            let dir = try Scratch.folder("data-modes-resume")
            try Scratch.dataset(at: dir + "/data.h5")
            try Scratch.job(at: dir + "/job.toml", data: dir + "/data.h5", out: dir + "/unused", steps: 40)
            let straight = try Launcher.run(ranks: 2, ["train", dir + "/job.toml"] + Self.sets(["run.out=\"\(dir)/straight\""]))
            #expect(straight.exitCode == 0, "\(straight.stderr)")
            let reference = try Scratch.checkpointTensors(Scratch.checkpoint(dir + "/straight", step: 40))
            for first in ["stream", "memory", "node"] {
                let out = "\(dir)/from-\(first)"
                let stopped = try Launcher.run(ranks: 2, ["train", dir + "/job.toml", "--stop-after", "17"]
                                                + Self.sets(["run.out=\"\(out)\"", "data.load=\"\(first)\""]))
                #expect(stopped.exitCode == 0, "\(stopped.stderr)")
                let resumed = try Launcher.run(ranks: 2, ["train", dir + "/job.toml", "--resume"]
                                                + Self.sets(["run.out=\"\(out)\"", "data.load=\"stream\""]))
                #expect(resumed.exitCode == 0 && resumed.stdout.contains("resumed at step 17"), "\(resumed.stdout)\n\(resumed.stderr)")
                let b = try Scratch.checkpointTensors(Scratch.checkpoint(out, step: 40))
                #expect(b.count == reference.count)
                for (path, values) in reference {
                    #expect(bitPatterns(values) == bitPatterns(b[path] ?? []), "\(path) differs after a \(first) run resumed streaming")
                }
            }
        }

        /// A NaN in sample 437 of 600, found by the rank whose slice holds it (rank 2 of 3):
        /// every rank stops with exit 2 and the one line the in-memory path prints.
        @Test func nonFiniteFeatureIsFoundCollectively() throws {
            let dir = try Scratch.folder("data-modes-nan")
            try Scratch.dataset(at: dir + "/clean.h5")
            let clean = try HDF5File.open(dir + "/clean.h5")
            var x = try clean.read("/train/x", as: Float.self)
            x[437 * 20 + 5] = .nan
            let file = try HDF5File.create(dir + "/data.h5")
            try file.write("/train/x", x, shape: [600, 20])
            for path in ["/train/y", "/test/y"] { try file.write(path, try clean.read(path, as: Int64.self), shape: [path == "/train/y" ? 600 : 200]) }
            try file.write("/test/x", try clean.read("/test/x", as: Float.self), shape: [200, 20])
            try file.finish()
            clean.close()
            try Scratch.job(at: dir + "/job.toml", data: dir + "/data.h5", out: dir + "/run", steps: 10)
            var lines: [String] = []
            for mode in ["memory", "stream", "node"] {
                let run = try Launcher.run(ranks: 3, ["train", dir + "/job.toml"] + Self.sets(["data.load=\"\(mode)\""]))
                #expect(run.exitCode == 2, "\(mode): \(run.stdout)\n\(run.stderr)")
                #expect(run.lockstepErrors.count == 1, "\(mode): \(run.stderr)")
                lines.append(run.lockstepErrors.first ?? "")
            }
            #expect(lines[0].contains("non-finite value (NaN or Inf) in sample 437"), "\(lines[0])")
            #expect(lines[0] == lines[1] && lines[0] == lines[2], "\(lines)")
        }

        /// A training split of 10^6 samples × 1000 float32 (4 GB, never written: HDF5 gives the fill
        /// value) under a 1.5 GiB address-space limit: the in-memory path refuses it in one line
        /// naming data.load = "stream", exit 2; streaming trains on it to the end.
        @Test func streamTrainsOnASplitLargerThanTheProcessMayHold() throws {
            let dir = try Scratch.folder("data-modes-large")
            let script = """
            import h5py, numpy as np, sys
            n, width = 1_000_000, 1000
            with h5py.File(sys.argv[1], "w") as f:
                f.create_dataset("/train/x", shape=(n, width), dtype="float32")
                f["/train/y"] = (np.arange(n) % 4).astype(np.int64)
                f["/test/x"] = np.zeros((100, width), dtype=np.float32)
                f["/test/y"] = (np.arange(100) % 4).astype(np.int64)
            """
            try script.write(toFile: dir + "/make.py", atomically: true, encoding: .utf8)
            let python = Process()
            python.executableURL = URL(fileURLWithPath: "/usr/bin/python3")
            python.arguments = [dir + "/make.py", dir + "/large.h5"]
            try python.run()
            python.waitUntilExit()
            try #require(python.terminationStatus == 0, "h5py (python3-h5py) must be installed: scripts/test installs it")
            try Scratch.job(at: dir + "/job.toml", data: dir + "/large.h5", out: dir + "/unused", steps: 5)
            for mode in ["memory", "stream"] {
                let process = Process()
                process.executableURL = URL(fileURLWithPath: "/usr/bin/prlimit")
                process.arguments = ["--as=\(3 << 29)", Launcher.binary, "train", dir + "/job.toml"]
                    + Self.sets(["data.load=\"\(mode)\"", "run.out=\"\(dir)/\(mode)\"", "run.eval_every=0"])
                let err = Pipe(), out = Pipe()
                process.standardError = err
                process.standardOutput = out
                try process.run()
                let stderr = String(decoding: err.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self)
                let stdout = String(decoding: out.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self)
                process.waitUntilExit()
                if mode == "memory" {
                    #expect(process.terminationStatus == 2, "\(stdout)\n\(stderr)")
                    #expect(stderr.contains("data.load = \"stream\"") && stderr.contains("needs 3.7 GiB"), "\(stderr)")
                } else {
                    #expect(process.terminationStatus == 0 && stdout.contains("done: 5 steps"), "\(stdout)\n\(stderr)")
                }
            }
        }

        /// 3 ranks on one node, data.load = "node": the windows MPI allocated hold exactly one
        /// copy of both splits ((600 + 200) samples × 20 float32 = 64000 bytes), on one node.
        @Test func threeRanksOnANodeShareOneCopy() throws {
            let dir = try Scratch.folder("data-modes-node")
            try Scratch.dataset(at: dir + "/data.h5")
            try Scratch.job(at: dir + "/job.toml", data: dir + "/data.h5", out: dir + "/run", steps: 10)
            let run = try Launcher.run(ranks: 3, ["train", dir + "/job.toml"] + Self.sets(["data.load=\"node\""]))
            #expect(run.exitCode == 0, "\(run.stderr)")
            #expect(run.stdout.contains("on each of 1 node(s) (64000 bytes in all windows)"), "\(run.stdout)")
        }
    }
}
