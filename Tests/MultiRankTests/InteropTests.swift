// Interoperability with h5py (Debian's python3-h5py, run as a real Python process): datasets
// written by h5py with its defaults train, and checkpoints read back in h5py as we wrote them.

import Foundation
import Lockstep
import Testing

extension MultiRank {
    @Suite struct Interop {
        static let python = "/usr/bin/python3"

        static func runPython(_ script: String) throws -> (Int32, String) {
            let p = Process()
            p.executableURL = URL(fileURLWithPath: python)
            p.arguments = ["-c", script]
            let out = Pipe()
            p.standardOutput = out
            p.standardError = out
            try p.run()
            let data = out.fileHandleForReading.readDataToEndOfFile()
            p.waitUntilExit()
            return (p.terminationStatus, String(decoding: data, as: UTF8.self))
        }

        @Test func h5pyDatasetTrainsAndCheckpointReadsInH5py() throws {
            let (ok, version) = try Self.runPython("import h5py; print(h5py.__version__)")
            try #require(ok == 0, "needs h5py for /usr/bin/python3 (apt install python3-h5py; scripts/test does): \(version)")
            let dir = try Scratch.folder("interop")
            // h5py defaults: float64 features of shape [N, 4, 5], int64 labels, under /train and /test.
            let (written, log) = try Self.runPython("""
            import h5py, numpy as np
            rng = np.random.default_rng(0)
            w = rng.standard_normal((20, 3))
            with h5py.File("\(dir)/data.h5", "w") as f:
                for split, n in (("train", 240), ("test", 60)):
                    x = rng.standard_normal((n, 4, 5))
                    f[split + "/x"] = x
                    f[split + "/y"] = np.argmax(x.reshape(n, 20) @ w, axis=1)
            """)
            #expect(written == 0, "\(log)")
            try """
            [run]
            steps = 12
            out = "\(dir)/run"
            log_every = 1
            [data]
            file = "\(dir)/data.h5"
            normalization = "standardize"
            [model]
            layers = [{ units = 8 }, { units = 3 }]
            [batch]
            global = 20
            [optimizer]
            lr = 0.2
            momentum = 0.5
            """.write(toFile: dir + "/job.toml", atomically: true, encoding: .utf8)
            let launch = try Launcher.run(ranks: 2, ["train", dir + "/job.toml"])
            #expect(launch.exitCode == 0, "\(launch.stderr)")

            let checkpoint = Scratch.checkpoint(dir + "/run", step: 12)
            let ours = try Scratch.checkpointTensors(checkpoint)
            let (read, json) = try Self.runPython("""
            import h5py, json
            with h5py.File("\(checkpoint)", "r") as f:
                out = {k: f.attrs[k].tolist() if hasattr(f.attrs[k], "tolist") else f.attrs[k] for k in ("step", "epoch", "world_size", "format_version")}
                out["ints"] = [int(f.attrs[k]) for k in ("step", "epoch", "epoch_step", "samples_seen", "world_size", "seed", "optimizer_updates",
                                                        "train_samples", "test_samples", "data_fingerprint", "checksum_fnv1a64")]
                out["scalar_shapes"] = sorted({str(f.attrs[k].shape) for k in f.attrs if hasattr(f.attrs[k], "shape") and k != "sample_shape"})
                out["sample_shape"] = [int(d) for d in f.attrs["sample_shape"]]
                out["normalization"] = [f.attrs["normalization"].decode() if isinstance(f.attrs["normalization"], bytes) else f.attrs["normalization"],
                                        float(f.attrs["input_scale"]), float(f.attrs["input_shift"]),
                                        float(f.attrs["normalization_mean"]), float(f.attrs["normalization_std"])]
                import numpy as np
                with h5py.File("\(dir)/data.h5", "r") as d:
                    x = d["train/x"][()].astype(np.float32).astype(np.float64)
                out["numpy_stats"] = [float(x.mean()), float(x.std())]
                out["config"] = f.attrs["config"].decode() if isinstance(f.attrs["config"], bytes) else f.attrs["config"]
                out["shapes"] = {}
                out["values"] = {}
                def visit(name, obj):
                    if isinstance(obj, h5py.Dataset):
                        out["shapes"]["/" + name] = list(obj.shape)
                        out["values"]["/" + name] = [float(v) for v in obj[()].ravel()]
                f.visititems(visit)
                print(json.dumps(out))
            """)
            try #require(read == 0, "\(json)")
            let parsed = try #require(try JSONSerialization.jsonObject(with: Data(json.utf8)) as? [String: Any])
            // Scalars, not 1-element arrays: int(f.attrs["step"]) works under NumPy 2.
            #expect((parsed["step"] as? Int) == 12)
            #expect((parsed["world_size"] as? Int) == 2)
            #expect((parsed["config"] as? String)?.contains("global = 20") == true)
            #expect((parsed["ints"] as? [NSNumber])?.count == 11)
            #expect((parsed["scalar_shapes"] as? [String]) == ["()"], "every numeric attribute but sample_shape is a scalar")
            #expect((parsed["sample_shape"] as? [Int]) == [4, 5])
            // The normalisation it was trained with (standardize): x·scale + shift with the
            // training split's statistics, which NumPy recomputes from the file (Float64, its
            // own summation order: 1e-9 relative).
            let norm = try #require(parsed["normalization"] as? [Any])
            #expect(norm.first as? String == "standardize")
            let numbers = norm.dropFirst().compactMap { ($0 as? NSNumber)?.doubleValue }
            let stats = try #require((parsed["numpy_stats"] as? [NSNumber])?.map(\.doubleValue))
            try #require(numbers.count == 4 && stats.count == 2)
            #expect(abs(numbers[2] - stats[0]) <= 1e-9 * max(1, abs(stats[0])) && abs(numbers[3] - stats[1]) <= 1e-9 * stats[1])
            #expect(Float(numbers[0]) == Float(1 / numbers[3]) && Float(numbers[1]) == Float(-numbers[2] / numbers[3]))
            let shapes = try #require(parsed["shapes"] as? [String: [Int]])
            #expect(shapes["/model/dense0/weight"] == [8, 20])
            #expect(shapes["/model/dense1/bias"] == [3])
            #expect(shapes["/optimizer/momentum/dense0/weight"] == [8, 20])
            let values = try #require(parsed["values"] as? [String: [Double]])
            #expect(Set(values.keys) == Set(ours.keys))
            for (path, mine) in ours {
                // Float32 → Python float → JSON → Double is exact for float32 values.
                #expect(values[path]?.map { Float($0) } == mine, "\(path)")
            }
        }
    }
}
