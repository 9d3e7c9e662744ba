// `lockstep-fuzz seeds DIR`: the HDF5 target's seed files, written with Lockstep's own writers
// (HDF5File, Checkpoint.write), small so that the fuzzer's mutations land in the metadata:
// datasets of each element type Dataset reads, and checkpoints of the DataTarget network for
// optimizers with none, one and two state buffers.

import Lockstep

enum Seeds {
    static func write(into folder: String) throws -> [String] {
        try makeDirectories(folder)
        var written: [String] = []
        func dataset(_ name: String, _ body: (HDF5File) throws -> Void) throws {
            let path = "\(folder)/\(name).h5"
            let file = try HDF5File.create(path)
            try body(file)
            file.close()
            written.append(path)
        }
        var rng = Xoshiro256(seed: 11)
        func floats(_ n: Int) -> [Float] { (0..<n).map { _ in Float(rng.nextUnit() * 2 - 1) } }
        func labels(_ n: Int) -> [Int64] { (0..<n).map { Int64($0 % DataTarget.classes) } }

        // Flat float32 features, int64 labels (as Tests/MultiRankTests/Support/Scratch.swift makes).
        try dataset("dataset-float32") { f in
            try f.write("/train/x", floats(8 * 20), shape: [8, 20])
            try f.write("/train/y", labels(8), shape: [8])
            try f.write("/test/x", floats(4 * 20), shape: [4, 20])
            try f.write("/test/y", labels(4), shape: [4])
        }
        // uint8 images [N, H, W] (kept as bytes), uint8 labels (as `lockstep import` writes).
        try dataset("dataset-uint8-images") { f in
            try f.write("/train/x", (0..<(6 * 5 * 5)).map { UInt8(truncatingIfNeeded: $0 &* 37) }, shape: [6, 5, 5])
            try f.write("/train/y", labels(6).map { UInt8($0) }, shape: [6])
            try f.write("/test/x", (0..<(2 * 5 * 5)).map { UInt8(truncatingIfNeeded: $0 &* 11) }, shape: [2, 5, 5])
            try f.write("/test/y", labels(2).map { UInt8($0) }, shape: [2])
        }
        // float64 features [N, C, H, W] (converted to float32), int32 labels.
        try dataset("dataset-float64-chw") { f in
            try f.write("/train/x", floats(4 * 2 * 3 * 3).map(Double.init), shape: [4, 2, 3, 3])
            try f.write("/train/y", labels(4).map { Int32($0) }, shape: [4])
            try f.write("/test/x", floats(2 * 2 * 3 * 3).map(Double.init), shape: [2, 2, 3, 3])
            try f.write("/test/y", labels(2).map { Int32($0) }, shape: [2])
        }

        // Checkpoints of DataTarget.network, as TrainingRun.writeCheckpoint writes them.
        let optimizers = [
            ("checkpoint-sgd", "name = \"sgd\"\nlr = 0.1"),                          // no state
            ("checkpoint-momentum", "name = \"sgd\"\nlr = 0.1\nmomentum = 0.9"),     // one buffer
            ("checkpoint-adam", "name = \"adam\"\nlr = 0.001"),                      // two buffers
        ]
        for (name, optimizer) in optimizers {
            let text = """
            [run]
            name = "\(name)"
            seed = 5
            steps = 6
            [data]
            file = "data.h5"
            [model]
            layers = [{ units = 8 }, { units = 4 }]
            [batch]
            global = 4
            [optimizer]
            \(optimizer)
            """
            let job = try Job.parse(text, source: "\(name).toml")
            precondition(job.layers == DataTarget.checkpointLayers, "the seed job's layers are DataTarget's")
            let network = try Network(inputShape: DataTarget.checkpointInputShape, layers: job.layers, extraGradientSlots: 2)
            network.initialize(seed: job.run.seed)
            let state = job.optimizer.make(for: network, seed: job.run.seed, stepsPerEpoch: 2)
            for (_, buffer) in state.stateBuffers {
                for i in 0..<buffer.count { buffer.pointer[i] = Float(rng.nextUnit()) * 0.01 }
            }
            state.updates = 3
            var position = TrainingPosition()
            position.step = 3
            position.epoch = 1
            position.epochStep = 1
            position.samplesSeen = 12
            let path = "\(folder)/\(name).h5"
            let header = CheckpointHeader(position: position, worldSize: 2, seed: job.run.seed, config: job.resolvedTOML,
                                          optimizerUpdates: state.updates, optimizerState: state.stateBuffers.map(\.name),
                                          data: DataIdentity(trainSamples: 24, testSamples: 8, fingerprint: 0x5EED))
            try Checkpoint.write(to: path, network: network, optimizer: state, header: header)
            written.append(path)
        }
        return written
    }
}
