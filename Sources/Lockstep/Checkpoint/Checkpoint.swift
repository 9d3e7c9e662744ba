// HDF5 checkpoints: parameters (and the layers' non-trainable state, when a layer has any) under
// /model/<layer>/<param>, optimizer state under
// /optimizer/<state>/<layer>/<param>, and root attributes for the training position, world
// size, format version, data identity, the resolved job config and a checksum over all of it.
// Written to a temporary name, closed with every HDF5 call checked, read back and verified,
// fsynced and only then renamed, so a reader only ever sees complete files. Loading executes nothing.

#if canImport(Glibc)
import Glibc
#endif

/// Where training stood when a checkpoint was written.
public struct TrainingPosition: Equatable, Sendable {
    /// Optimizer steps taken so far.
    public var step = 0
    /// The epoch the next step belongs to, and the step's index inside it.
    public var epoch = 0
    public var epochStep = 0
    /// Training samples consumed so far (all ranks together).
    public var samplesSeen = 0
    public init() {}
}

/// What identifies a run's training data: resume refuses another file (docs/checkpoints.md).
public struct DataIdentity: Equatable, Sendable {
    public var trainSamples: Int
    public var testSamples: Int
    /// `Dataset.fingerprint` of the training split.
    public var fingerprint: UInt64
    /// How the inputs were normalised (nil in checkpoints written before it was recorded).
    /// Informational: resume checks `data.normalization` through the config, not this.
    public var input: InputNormalization?
    public init(trainSamples: Int, testSamples: Int, fingerprint: UInt64, input: InputNormalization? = nil) {
        self.trainSamples = trainSamples
        self.testSamples = testSamples
        self.fingerprint = fingerprint
        self.input = input
    }
    public init(train: any DataSource, test: any DataSource, normalization: Normalization? = nil,
                stats: (mean: Double, std: Double)? = nil) {
        self.init(trainSamples: train.count, testSamples: test.count, fingerprint: train.fingerprint,
                  input: normalization.map { InputNormalization(mode: $0, scale: train.scale, shift: train.shift, stats: stats,
                                                                         sampleShape: train.sampleShape) })
    }
}

/// Every root attribute resume uses, in the order the checksum covers them.
public struct CheckpointHeader: Equatable, Sendable {
    public var position: TrainingPosition
    public var worldSize: Int
    public var seed: UInt64
    /// The resolved job the checkpoint was trained with.
    public var config: String
    /// Updates the optimizer had applied (Adam's t).
    public var optimizerUpdates: Int
    /// Names of the optimizer state buffers, in the order they are stored.
    public var optimizerState: [String]
    /// nil only in a format-1 checkpoint, which did not record it.
    public var data: DataIdentity?

    public init(position: TrainingPosition, worldSize: Int, seed: UInt64, config: String, optimizerUpdates: Int,
                optimizerState: [String], data: DataIdentity?) {
        self.position = position
        self.worldSize = worldSize
        self.seed = seed
        self.config = config
        self.optimizerUpdates = optimizerUpdates
        self.optimizerState = optimizerState
        self.data = data
    }

    /// Adds the header to a checksum after the tensors: a tampered or bit-flipped position is
    /// as detectable as a flipped weight.
    func add(to checksum: inout FNV1a64) {
        let data = self.data ?? DataIdentity(trainSamples: 0, testSamples: 0, fingerprint: 0)
        let numbers: [Int64] = [Checkpoint.formatVersion, Int64(position.step), Int64(position.epoch), Int64(position.epochStep),
                                Int64(position.samplesSeen), Int64(worldSize), Int64(bitPattern: seed), Int64(optimizerUpdates),
                                Int64(data.trainSamples), Int64(data.testSamples), Int64(bitPattern: data.fingerprint)]
        numbers.map(\.littleEndian).withUnsafeBytes { checksum.add($0) }
        for text in [config, optimizerState.joined(separator: ",")] {
            withUnsafeBytes(of: Int64(text.utf8.count).littleEndian) { checksum.add($0) }
            Array(text.utf8).withUnsafeBytes { checksum.add($0) }
        }
    }
}

public struct CheckpointContents {
    public var header: CheckpointHeader
    public var parameters: [Float]
    /// The layers' non-trainable state, laid out as `Network.state` (empty when it has none).
    public var layerState: [Float]
    /// Optimizer state buffers, by name.
    public var state: [String: [Float]]
    /// `checksum_fnv1a64`, verified against the contents and the header.
    public var checksum: UInt64
    public var position: TrainingPosition { header.position }
}

public enum Checkpoint {
    /// 2: the checksum covers the header (position, world size, seed, config, data identity).
    public static let formatVersion: Int64 = 2

    /// `checkpoints/step-00000042.h5`
    public static func fileName(step: Int) -> String {
        let digits = String(step)
        return "step-" + String(repeating: "0", count: max(0, 8 - digits.count)) + digits + ".h5"
    }

    /// Writes atomically: `path`.tmp with every HDF5 call checked, closed, read back and verified
    /// against the checksum, fsynced, renamed to `path`, folder fsynced. On any failure the
    /// temporary file is removed and `path` (and every older checkpoint) is left as it was.
    public static func write(to path: String, network: Network, optimizer: any OptimizerState, header: CheckpointHeader) throws {
        let temporary = path + ".tmp"
        do {
            let file = try HDF5File.create(temporary)
            for view in network.views {
                try file.write("/model/\(view.path)", UnsafeBufferPointer(network.parameters.slice(view.offset, view.count)), shape: view.spec.shape)
            }
            for view in network.stateViews {
                try file.write("/model/\(view.path)", UnsafeBufferPointer(network.state.slice(view.offset, view.count)), shape: view.spec.shape)
            }
            for (name, buffer) in optimizer.stateBuffers {
                for view in network.views {
                    try file.write("/optimizer/\(name)/\(view.path)", UnsafeBufferPointer(buffer.slice(view.offset, view.count)), shape: view.spec.shape)
                }
            }
            guard let data = header.data else { preconditionFailure("a checkpoint is written with its data identity") }
            var checksum = tensorChecksum(network: network, state: optimizer.stateBuffers)
            header.add(to: &checksum)
            try file.setAttribute("format_version", formatVersion)
            try file.setAttribute("step", Int64(header.position.step))
            try file.setAttribute("epoch", Int64(header.position.epoch))
            try file.setAttribute("epoch_step", Int64(header.position.epochStep))
            try file.setAttribute("samples_seen", Int64(header.position.samplesSeen))
            try file.setAttribute("world_size", Int64(header.worldSize))
            try file.setAttribute("seed", scalar: header.seed)
            try file.setAttribute("optimizer_state", header.optimizerState.joined(separator: ","))
            try file.setAttribute("optimizer_updates", Int64(header.optimizerUpdates))
            try file.setAttribute("config", header.config)
            try file.setAttribute("train_samples", Int64(data.trainSamples))
            try file.setAttribute("test_samples", Int64(data.testSamples))
            try file.setAttribute("data_fingerprint", scalar: data.fingerprint)
            try file.setAttribute("checksum_fnv1a64", scalar: checksum.value)
            if let input = data.input { try input.write(to: file) }
            try file.finish()
            try syncToDisk(temporary)
            // What is on disk, not what we meant to write: a short write that HDF5 did not
            // report would fail here, before anything replaces a good checkpoint.
            let written = try read(temporary, network: network)
            guard written.checksum == checksum.value, written.header == header else {
                throw LockstepError.runtime("\(temporary) does not read back as written: the disk or filesystem holding it is failing")
            }
            guard rename(temporary, path) == 0 else {
                throw LockstepError.runtime("cannot rename \(temporary) to \(path): \(String(cString: strerror(errno)))")
            }
            try syncToDisk(folder(of: path))
        } catch {
            // Asked before the unlink: removing our own half-written file may free the space.
            let message = (error as? LockstepError)?.message ?? "\(error)"
            let full = message.contains("No space left on device") || message.contains("Disk quota exceeded")
                ? "the filesystem holding \(folder(of: path)) is full" : diskFull(folder(of: path))
            unlink(temporary)
            guard let full else { throw error }
            throw LockstepError.runtime("cannot write checkpoint \(path): \(full) (\(message)); the older checkpoints are kept: free space and continue with --resume")
        }
    }

    /// Whether `error` from `read` says the file is damaged (so the way on is the checkpoint
    /// before it), rather than locked, from another version, or of another model. HDF5File's and
    /// read's own wordings for damage, kept together here.
    public static func isDamage(_ error: LockstepError) -> Bool {
        ["checksum mismatch", "truncated", "corrupt", "not an HDF5 file", "is impossible", "has no attribute"]
            .contains { error.message.contains($0) }
    }

    /// "the filesystem holding X is full (12 KiB free)" when it is, else nil.
    static func diskFull(_ folder: String) -> String? {
        var info = statvfs()
        guard statvfs(folder, &info) == 0 else { return nil }
        let free = Int(info.f_bavail) * Int(info.f_frsize)
        // A checkpoint write failed and less than a megabyte is left: that is why.
        guard free < 1 << 20 else { return nil }
        return "the filesystem holding \(folder) is full (\(MemoryBudget.describe(free)) free)"
    }

    /// FNV-1a over the parameters, the layers' state (none in most networks, which leaves the
    /// sum as it was before layers had state) and then each optimizer state buffer, tensor by
    /// tensor in the network's order: the first part of `checksum_fnv1a64` (the header follows).
    /// Every rank recomputes it after a resume broadcast.
    public static func tensorChecksum(network: Network, state: [(name: String, buffer: FloatBuffer)]) -> FNV1a64 {
        var checksum = FNV1a64()
        for view in network.views { checksum.add(UnsafeBufferPointer(network.parameters.slice(view.offset, view.count))) }
        for view in network.stateViews { checksum.add(UnsafeBufferPointer(network.state.slice(view.offset, view.count))) }
        for buffer in state.map(\.buffer) {
            for view in network.views { checksum.add(UnsafeBufferPointer(buffer.slice(view.offset, view.count))) }
        }
        return checksum
    }

    /// Reads and verifies a checkpoint written for `network`'s architecture. The header's values
    /// are range-checked here only as far as no job is needed; resume checks them against the job.
    public static func read(_ path: String, network: Network) throws -> CheckpointContents {
        let file = try HDF5File.open(path)
        let version = try file.int64Attribute("format_version")
        // Version 1 (before the checksum covered the header) still resumes: its tensors are
        // checked by their checksum, its position against the job's plan like any other.
        guard version == formatVersion || version == 1 else {
            throw LockstepError.usage("\(path) has checkpoint format version \(version); this lockstep reads versions 1 and \(formatVersion)")
        }
        var checksum = FNV1a64()
        var parameters = [Float](repeating: 0, count: network.parameterCount)
        for view in network.views {
            let values = try readTensor(file, "/model/\(view.path)", shape: view.spec.shape)
            parameters.replaceSubrange(view.offset..<(view.offset + view.count), with: values)
            values.withUnsafeBufferPointer { checksum.add($0) }
        }
        var layerState = [Float](repeating: 0, count: network.stateCount)
        for view in network.stateViews {
            let values = try readTensor(file, "/model/\(view.path)", shape: view.spec.shape)
            layerState.replaceSubrange(view.offset..<(view.offset + view.count), with: values)
            values.withUnsafeBufferPointer { checksum.add($0) }
        }
        var state: [String: [Float]] = [:]
        let names = try file.stringAttribute("optimizer_state").split(separator: ",").map(String.init)
        // Each name must have its tensors in the file, so the list cannot size more than the file holds.
        guard Set(names).count == names.count else {
            throw LockstepError.usage("\(path): attribute optimizer_state lists \(names): the checkpoint is corrupt")
        }
        for name in names {
            var buffer = [Float](repeating: 0, count: network.parameterCount)
            for view in network.views {
                let values = try readTensor(file, "/optimizer/\(name)/\(view.path)", shape: view.spec.shape)
                buffer.replaceSubrange(view.offset..<(view.offset + view.count), with: values)
                values.withUnsafeBufferPointer { checksum.add($0) }
            }
            state[name] = buffer
        }
        var position = TrainingPosition()
        position.step = Int(try file.int64Attribute("step"))
        position.epoch = Int(try file.int64Attribute("epoch"))
        position.epochStep = Int(try file.int64Attribute("epoch_step"))
        position.samplesSeen = Int(try file.int64Attribute("samples_seen"))
        let header = CheckpointHeader(
            position: position, worldSize: Int(try file.int64Attribute("world_size")),
            seed: try scalar(file, "seed", as: UInt64.self), config: try file.stringAttribute("config"),
            optimizerUpdates: Int(try file.int64Attribute("optimizer_updates")), optimizerState: names,
            data: version == 1 ? nil : DataIdentity(trainSamples: Int(try file.int64Attribute("train_samples")),
                                                     testSamples: Int(try file.int64Attribute("test_samples")),
                                                     fingerprint: try scalar(file, "data_fingerprint", as: UInt64.self),
                                                     input: try InputNormalization.read(from: file)))
        if version != 1 { header.add(to: &checksum) }
        let stored = try scalar(file, "checksum_fnv1a64", as: UInt64.self)
        guard stored == checksum.value else {
            throw LockstepError.usage("\(path): checksum mismatch, the checkpoint is corrupt")
        }
        // Covered by the checksum, so only a writer's bug could get these wrong; still, nothing
        // from disk sizes or indexes anything unchecked.
        guard position.step >= 1, position.epoch >= 0, position.epochStep >= 1, position.samplesSeen >= 1,
              header.worldSize >= 1, header.optimizerUpdates >= 0 else {
            throw LockstepError.usage("\(path): its training position (step \(position.step), epoch \(position.epoch), epoch step \(position.epochStep), samples \(position.samplesSeen)) is impossible")
        }
        return CheckpointContents(header: header, parameters: parameters, layerState: layerState, state: state, checksum: checksum.value)
    }

    static func scalar<T: HDF5Element>(_ file: HDF5File, _ name: String, as: T.Type) throws -> T {
        guard let value = try file.attribute(name, as: T.self).first else {
            throw LockstepError.usage("\(file.path): attribute \(name) is empty: the checkpoint is corrupt")
        }
        return value
    }

    /// Complete checkpoints in `folder`, oldest (lowest step) first; temporary files are never listed.
    public static func list(in folder: String) -> [String] {
        guard let dir = opendir(folder) else { return [] }
        defer { closedir(dir) }
        var names: [String] = []
        while let entry = readdir(dir) {
            let name = withUnsafeBytes(of: entry.pointee.d_name) { String(decoding: $0.prefix { $0 != 0 }, as: UTF8.self) }
            if name.hasPrefix("step-") && name.hasSuffix(".h5") { names.append(name) }
        }
        // By step number, not by name: past 8 digits the zero padding no longer orders them.
        let step: (String) -> Int = { Int($0.dropFirst(5).dropLast(3)) ?? -1 }
        return names.sorted { step($0) < step($1) }.map { folder + "/" + $0 }
    }

    private static func readTensor(_ file: HDF5File, _ path: String, shape: [Int]) throws -> [Float] {
        guard file.exists(path) else {
            throw LockstepError.usage("\(file.path) has no \(path): the checkpoint is from a different model")
        }
        let info = try file.info(path)
        guard info.shape == shape else {
            throw LockstepError.usage("\(file.path): \(path) has shape \(info.shape) but the model needs \(shape): the checkpoint is from a different model")
        }
        return try file.read(path, as: Float.self)
    }

    private static func folder(of path: String) -> String {
        guard let slash = path.lastIndex(of: "/") else { return "." }
        return String(path[..<slash])
    }

}
