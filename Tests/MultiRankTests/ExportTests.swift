// `lockstep export --format safetensors`, read back by the safetensors package itself (PyPI, in
// .venv-tests from scripts/python-peers): every tensor under its PyTorch name, bit for bit the
// checkpoint's, BatchNorm's num_batches_tracked, sorted keys, 8-byte aligned data, the metadata.

import Foundation
import Lockstep
import Testing

extension MultiRank {
    @Suite struct Export {
        static let python = Launcher.packageRoot.appendingPathComponent(".venv-tests/bin/python").path

        @Test func safetensorsLoadsBitForBitWithTheSafetensorsPackage() throws {
            let (dir, _) = try MultiRank.Eval.convRun()
            let checkpoint = Scratch.checkpoint(dir + "/run", step: 24)
            let output = dir + "/model.safetensors"
            let export = try Launcher.run(ranks: 2, ["export", checkpoint, "--format", "safetensors", "--output", output])
            try #require(export.exitCode == 0, "\(export.stderr)")
            #expect(!FileManager.default.fileExists(atPath: output + ".tmp"))
            let script = """
            import json, struct, sys
            from safetensors.numpy import load_file
            from safetensors import safe_open
            tensors = load_file(sys.argv[1])
            out = {"tensors": {k: {"dtype": str(v.dtype), "shape": list(v.shape),
                                   "bits": v.reshape(-1).view("uint32").tolist() if v.dtype.name == "float32" else v.reshape(-1).tolist()}
                               for k, v in tensors.items()}}
            with safe_open(sys.argv[1], "np") as f:
                out["metadata"] = f.metadata()
            raw = open(sys.argv[1], "rb").read()
            n = struct.unpack("<Q", raw[:8])[0]
            header = json.loads(raw[8:8 + n])
            out["header_length"] = n
            out["keys"] = list(header.keys())
            out["offsets"] = [header[k]["data_offsets"] for k in header if k != "__metadata__"]
            print(json.dumps(out))
            """
            let run = try Launcher.execute([Self.python, "-c", script, output], timeout: 120)
            try #require(run.exitCode == 0, "needs safetensors in .venv-tests (scripts/python-peers; scripts/test runs it): \(run.stderr)")
            let parsed = try #require(try JSONSerialization.jsonObject(with: Data(run.stdout.utf8)) as? [String: Any])
            let loaded = try #require(parsed["tensors"] as? [String: [String: Any]])
            let ours = try Scratch.checkpointTensors(checkpoint).filter { $0.key.hasPrefix("/model/") }
            let file = try HDF5File.open(checkpoint)
            var expected = Set<String>()
            for (path, values) in ours {
                let name = path.dropFirst("/model/".count).replacingOccurrences(of: "/", with: ".")
                expected.insert(name)
                let tensor = try #require(loaded[name], "\(name) missing from the export")
                #expect(tensor["dtype"] as? String == "float32")
                #expect(tensor["shape"] as? [Int] == (try file.info(path).shape), "\(name)")
                #expect((tensor["bits"] as? [NSNumber])?.map { $0.uint32Value } == values.map(\.bitPattern), "\(name) bit for bit")
            }
            // Every BatchNorm's num_batches_tracked: int64, shape [], the checkpoint's step.
            for bn in ["bn0", "block0.bn1", "block0.bn2"] {
                expected.insert(bn + ".num_batches_tracked")
                let tracked = try #require(loaded[bn + ".num_batches_tracked"], "\(bn).num_batches_tracked")
                #expect(tracked["dtype"] as? String == "int64" && tracked["shape"] as? [Int] == [] && tracked["bits"] as? [Int] == [24])
            }
            #expect(ours["/model/block0/bn2/running_var"] != nil)
            #expect(Set(loaded.keys) == expected)
            // Sorted keys, the header padded to 8 bytes, tensors back to back in key order.
            let keys = try #require(parsed["keys"] as? [String])
            #expect(keys == keys.sorted { Array($0.utf8).lexicographicallyPrecedes(Array($1.utf8)) } && keys.first == "__metadata__")
            #expect((parsed["header_length"] as? Int).map { $0 % 8 == 0 } == true)
            let offsets = try #require(parsed["offsets"] as? [[Int]])
            #expect(offsets.first?.first == 0 && zip(offsets, offsets.dropFirst()).allSatisfy { $0[1] == $1[0] })
            let metadata = try #require(parsed["metadata"] as? [String: String])
            #expect(metadata["lockstep_config"] == (try file.stringAttribute("config")))
            #expect(metadata["normalization"] == "scale" && metadata["lockstep_step"] == "24" && metadata["sample_shape"] == "1,6,6")
            #expect(metadata["input_scale"].flatMap(Float.init) == (try file.attribute("input_scale", as: Float.self).first))
            file.close()
        }

        @Test func onnxAndUnknownFormatsAreUsageErrors() throws {
            for (format, words) in [("onnx", "not implemented yet"), ("tflite", "--format must be safetensors")] {
                let launch = try Launcher.run(ranks: nil, ["export", "/nonexistent.h5", "--format", format])
                #expect(launch.exitCode == 2)
                #expect(launch.lockstepErrors.count == 1 && launch.lockstepErrors.first?.contains(words) == true, "\(launch.stderr)")
            }
            let missing = try Launcher.run(ranks: 2, ["export", "/nonexistent.h5", "--format", "safetensors"])
            #expect(missing.exitCode == 2 && missing.lockstepErrors.count == 1 && missing.lockstepErrors[0].contains("no such checkpoint"), "\(missing.stderr)")
        }
    }
}
