// Checkpoint: bitwise round trip of parameters, optimizer state and position; listing; corrupt and mismatched files.
import Testing
import Lockstep
import Foundation
#if canImport(Glibc)
import Glibc
#endif

extension FileTests {
    @Suite struct CheckpointTests {
        static let specs = [LayerSpec(units: 3, activation: .relu), LayerSpec(units: 2, activation: .identity)]

        /// A 4 → 3 → 2 network after one momentum step, so both parameters and state are non-trivial.
        static func trained() -> (Network, SGD) {
            let network = Network(inputWidth: 4, layers: specs)
            network.initialize(seed: 11)
            var settings = SGDSettings()
            settings.momentum = 0.9
            let sgd = SGD(views: network.views, parameterCount: network.parameterCount, settings: settings)
            var rng = Xoshiro256(seed: 12)
            network.gradients.copy(from: uniformFloats(network.parameterCount, -1, 1, rng: &rng))
            sgd.step(parameters: network.parameters.pointer, gradients: network.gradients.pointer, lr: 0.1)
            return (network, sgd)
        }

        static func position(step: Int) -> TrainingPosition {
            var p = TrainingPosition()
            p.step = step
            p.epoch = 3
            p.epochStep = 2
            p.samplesSeen = 5376
            return p
        }

        static let config = "[run]\nname = \"with \\\"quotes\\\"\"\n\n[batch]\nglobal = 128\n"

        static func write(_ network: Network, _ sgd: SGD, to path: String, step: Int = 42) throws {
            try Checkpoint.write(to: path, network: network, optimizer: sgd, header: header(step: step, sgd))
        }

        static func header(step: Int, _ sgd: SGD) -> CheckpointHeader {
            CheckpointHeader(position: position(step: step), worldSize: 3, seed: 0xFEED_FACE_DEAD_BEEF, config: config,
                             optimizerUpdates: sgd.updates, optimizerState: sgd.stateBuffers.map(\.name),
                             data: DataIdentity(trainSamples: 60_000, testSamples: 10_000, fingerprint: 0x0123_4567_89AB_CDEF))
        }

        @Test func fileNamesAreZeroPadded() {
            #expect(Checkpoint.fileName(step: 0) == "step-00000000.h5")
            #expect(Checkpoint.fileName(step: 42) == "step-00000042.h5")
            #expect(Checkpoint.fileName(step: 12_345_678) == "step-12345678.h5")
        }

        @Test func roundTripIsBitwise() throws {
            let dir = try TemporaryDirectory()
            let (network, sgd) = Self.trained()
            let path = dir.file(Checkpoint.fileName(step: 42))
            try Self.write(network, sgd, to: path)
            #expect(!fileExists(path + ".tmp"), "the temporary file is renamed away")
            let contents = try Checkpoint.read(path, network: network)
            #expect(contents.parameters.map(\.bitPattern) == network.parameters.array.map(\.bitPattern))
            #expect(Array(contents.state.keys) == ["momentum"])
            let momentum = try #require(contents.state["momentum"])
            #expect(momentum.map(\.bitPattern) == sgd.stateBuffers[0].buffer.array.map(\.bitPattern))
            #expect(momentum.contains { $0 != 0 })
            #expect(contents.position == Self.position(step: 42))
            #expect(contents.header.optimizerUpdates == 1)
            #expect(contents.header == Self.header(step: 42, sgd))

            // Checkpoints are plain HDF5: parameters under /model/<layer>/<param> with their shapes.
            let file = try HDF5File.open(path)
            #expect(try file.info("/model/dense0/weight").shape == [3, 4])
            #expect(try file.info("/model/dense1/bias").shape == [2])
            #expect(try file.info("/optimizer/momentum/dense0/weight").dtypeName == "float32")
            #expect(try file.int64Attribute("format_version") == Checkpoint.formatVersion)
            #expect(try file.int64Attribute("step") == 42)
        }

        @Test func stateFreeOptimizerRoundTrips() throws {
            let dir = try TemporaryDirectory()
            let network = Network(inputWidth: 4, layers: Self.specs)
            network.initialize(seed: 3)
            let sgd = SGD(views: network.views, parameterCount: network.parameterCount, settings: SGDSettings())
            try Self.write(network, sgd, to: dir.file("c.h5"))
            let contents = try Checkpoint.read(dir.file("c.h5"), network: network)
            #expect(contents.state.isEmpty)
            #expect(contents.parameters == network.parameters.array)
        }

        @Test func listSortsByStepAndSkipsTemporaryFiles() throws {
            let dir = try TemporaryDirectory()
            let (network, sgd) = Self.trained()
            for step in [100, 7, 42] { try Self.write(network, sgd, to: dir.file(Checkpoint.fileName(step: step)), step: step) }
            try writeBytes([1, 2, 3], to: dir.file(Checkpoint.fileName(step: 200) + ".tmp"))   // a crash mid-write
            try writeBytes([1], to: dir.file("notes.txt"))
            try writeBytes([1], to: dir.file("best.h5"))
            #expect(Checkpoint.list(in: dir.path) == [7, 42, 100].map { dir.file(Checkpoint.fileName(step: $0)) })
            #expect(Checkpoint.list(in: dir.file("missing")).isEmpty)
        }

        @Test func truncatedFileIsUsageError() throws {
            let dir = try TemporaryDirectory()
            let (network, sgd) = Self.trained()
            let path = dir.file("c.h5")
            try Self.write(network, sgd, to: path)
            let bytes = try readBytes(path)
            try writeBytes(Array(bytes[0..<(bytes.count / 2)]), to: path)
            expectUsage([path]) { try Checkpoint.read(path, network: network) }
        }

        @Test func flippedParameterBitIsCaughtByChecksum() throws {
            let dir = try TemporaryDirectory()
            let (network, sgd) = Self.trained()
            let path = dir.file("c.h5")
            try Self.write(network, sgd, to: path)
            // Contiguous datasets store raw little-endian floats: find dense0/weight's bytes and flip
            // the lowest mantissa bit of one value, which no HDF5 structure check can notice.
            var bytes = try readBytes(path)
            let weight = network.views[0]
            let needle = Array(network.parameters.slice(weight.offset, weight.count)).flatMap { v in
                withUnsafeBytes(of: v.bitPattern.littleEndian) { Array($0) }
            }
            let at = try #require((0...(bytes.count - needle.count)).first { bytes[$0..<($0 + needle.count)].elementsEqual(needle) })
            bytes[at + 4] ^= 1
            try writeBytes(bytes, to: path)
            expectUsage([path, "checksum"]) { try Checkpoint.read(path, network: network) }
        }

        /// Every attribute resume uses is inside the checksum: changing any one of them (as a
        /// tampered or bit-flipped file would) makes the checkpoint fail to load.
        @Test(arguments: ["step", "epoch", "epoch_step", "samples_seen", "world_size", "seed", "optimizer_updates",
                          "config", "optimizer_state", "train_samples", "test_samples", "data_fingerprint"])
        func everyHeaderAttributeIsCoveredByTheChecksum(_ name: String) throws {
            let dir = try TemporaryDirectory()
            let (network, sgd) = Self.trained()
            let path = dir.file("c.h5")
            try Self.write(network, sgd, to: path)
            // h5py rewrites the attribute with its own type (an int64 plus one, a string with a suffix).
            let python = Process()
            python.executableURL = URL(fileURLWithPath: "/usr/bin/python3")
            python.arguments = ["-c", """
                import h5py, numpy, sys
                with h5py.File(sys.argv[1], "r+") as f:
                    v = f.attrs[sys.argv[2]]
                    if isinstance(v, bytes): f.attrs[sys.argv[2]] = numpy.bytes_(v + b"x")
                    else: f.attrs[sys.argv[2]] = (v + 1).astype(v.dtype)
                """, path, name]
            try python.run()
            python.waitUntilExit()
            try #require(python.terminationStatus == 0, "h5py (python3-h5py) is needed to edit the attribute")
            // A renamed state buffer is missed one step earlier: its tensors are not where it says.
            expectUsage([path, name == "optimizer_state" ? "no /optimizer/momentumx" : "checksum mismatch"]) { try Checkpoint.read(path, network: network) }
        }

        /// A format-1 checkpoint (tensor-only checksum, no data identity) from before the upgrade
        /// still loads: its tensors are verified, its data identity is unknown (nil).
        @Test func formatOneCheckpointsStillLoad() throws {
            let dir = try TemporaryDirectory()
            let (network, sgd) = Self.trained()
            let path = dir.file("c.h5")
            try Self.write(network, sgd, to: path)
            let python = Process()
            python.executableURL = URL(fileURLWithPath: "/usr/bin/python3")
            python.arguments = ["-c", """
                import h5py, numpy, sys
                paths = ["dense0/weight", "dense0/bias", "dense1/weight", "dense1/bias"]
                with h5py.File(sys.argv[1], "r+") as f:
                    h = 0xCBF29CE484222325
                    for group in ["model", "optimizer/momentum"]:
                        for p in paths:
                            for b in f[group + "/" + p][()].astype("<f4").tobytes():
                                h = ((h ^ b) * 0x100000001B3) & 0xFFFFFFFFFFFFFFFF
                    for name in ["train_samples", "test_samples", "data_fingerprint"]: del f.attrs[name]
                    f.attrs["format_version"] = numpy.int64(1)
                    f.attrs["checksum_fnv1a64"] = numpy.array([h], dtype=numpy.uint64)
                """, path]
            try python.run()
            python.waitUntilExit()
            try #require(python.terminationStatus == 0, "h5py (python3-h5py) is needed to write a format-1 file")
            let contents = try Checkpoint.read(path, network: network)
            #expect(contents.header.data == nil)
            #expect(contents.position == Self.position(step: 42))
            #expect(contents.parameters.map(\.bitPattern) == network.parameters.array.map(\.bitPattern))
        }

        @Test func differentModelIsUsageError() throws {
            let dir = try TemporaryDirectory()
            let (network, sgd) = Self.trained()
            let path = dir.file("c.h5")
            try Self.write(network, sgd, to: path)
            let wider = Network(inputWidth: 4, layers: [LayerSpec(units: 5, activation: .relu), LayerSpec(units: 2, activation: .identity)])
            expectUsage(["different model", "dense0/weight"]) { try Checkpoint.read(path, network: wider) }
            let deeper = Network(inputWidth: 4, layers: Self.specs + [LayerSpec(units: 2, activation: .identity)])
            expectUsage(["different model", "dense2"]) { try Checkpoint.read(path, network: deeper) }
        }

        @Test func otherFilesAndVersionsAreRejected() throws {
            let dir = try TemporaryDirectory()
            let (network, _) = Self.trained()
            // A dataset file is HDF5 but not a checkpoint.
            do {
                let f = try HDF5File.create(dir.file("data.h5"))
                try f.write("/train/x", [Float](repeating: 0, count: 4), shape: [2, 2])
            }
            expectUsage(["format_version"]) { try Checkpoint.read(dir.file("data.h5"), network: network) }
            // A future format version.
            do {
                let f = try HDF5File.create(dir.file("future.h5"))
                try f.setAttribute("format_version", Checkpoint.formatVersion + 1)
            }
            expectUsage(["format version \(Checkpoint.formatVersion + 1)"]) { try Checkpoint.read(dir.file("future.h5"), network: network) }
            expectUsage([dir.file("none.h5")]) { try Checkpoint.read(dir.file("none.h5"), network: network) }
        }

        @Test func failedWriteLeavesNothingBehind() throws {
            let dir = try TemporaryDirectory()
            let (network, sgd) = Self.trained()
            let path = dir.file("missing-folder/step-00000001.h5")
            #expect(throws: LockstepError.self) { try Self.write(network, sgd, to: path) }
            #expect(!fileExists(path) && !fileExists(path + ".tmp"))
        }
    }
}
