// HDF5 checkpoints: parameters under /model/<layer>/<param>, optimizer state under
// /optimizer/<state>/<layer>/<param>, and root attributes for the training position, world
// size, format version, checksum and the resolved job config. Written to a temporary name,
// fsynced and renamed, so a reader only ever sees complete files. Loading executes nothing.

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

public struct CheckpointContents {
    public var position: TrainingPosition
    public var worldSize: Int
    public var seed: UInt64
    public var config: String
    public var parameters: [Float]
    /// Updates the optimizer had applied (Adam's t).
    public var optimizerUpdates: Int
    /// Optimizer state buffers, by name.
    public var state: [String: [Float]]
    /// `checksum_fnv1a64`, verified against the contents.
    public var checksum: UInt64
}

public enum Checkpoint {
    public static let formatVersion: Int64 = 1

    /// `checkpoints/step-00000042.h5`
    public static func fileName(step: Int) -> String {
        let digits = String(step)
        return "step-" + String(repeating: "0", count: max(0, 8 - digits.count)) + digits + ".h5"
    }

    /// Writes atomically: `path`.tmp, fsync, rename to `path`, fsync the folder.
    public static func write(to path: String, network: Network, optimizer: any OptimizerState,
                             position: TrainingPosition, worldSize: Int, seed: UInt64, config: String) throws {
        let temporary = path + ".tmp"
        do {
            let file = try HDF5File.create(temporary)
            for view in network.views {
                try file.write("/model/\(view.path)", UnsafeBufferPointer(network.parameters.slice(view.offset, view.count)), shape: view.spec.shape)
            }
            for (name, buffer) in optimizer.stateBuffers {
                for view in network.views {
                    try file.write("/optimizer/\(name)/\(view.path)", UnsafeBufferPointer(buffer.slice(view.offset, view.count)), shape: view.spec.shape)
                }
            }
            let checksum = contentChecksum(network: network, state: optimizer.stateBuffers)
            try file.setAttribute("format_version", formatVersion)
            try file.setAttribute("step", Int64(position.step))
            try file.setAttribute("epoch", Int64(position.epoch))
            try file.setAttribute("epoch_step", Int64(position.epochStep))
            try file.setAttribute("samples_seen", Int64(position.samplesSeen))
            try file.setAttribute("world_size", Int64(worldSize))
            try file.setAttribute("seed", [seed])
            try file.setAttribute("optimizer_state", optimizer.stateBuffers.map(\.name).joined(separator: ","))
            try file.setAttribute("optimizer_updates", Int64(optimizer.updates))
            try file.setAttribute("config", config)
            try file.setAttribute("checksum_fnv1a64", [checksum])
            file.close()
            try syncFile(temporary)
            guard rename(temporary, path) == 0 else {
                throw LockstepError.runtime("cannot rename \(temporary) to \(path): \(String(cString: strerror(errno)))")
            }
            try syncFile(folder(of: path))
        } catch {
            unlink(temporary)
            throw error
        }
    }

    /// FNV-1a over the parameters and then each state buffer, tensor by tensor in the network's
    /// order: what `checksum_fnv1a64` holds. Every rank recomputes it after a resume broadcast.
    public static func contentChecksum(network: Network, state: [(name: String, buffer: FloatBuffer)]) -> UInt64 {
        var checksum = FNV1a64()
        for buffer in [network.parameters] + state.map(\.buffer) {
            for view in network.views { checksum.add(UnsafeBufferPointer(buffer.slice(view.offset, view.count))) }
        }
        return checksum.value
    }

    /// Reads and verifies a checkpoint written for `network`'s architecture.
    public static func read(_ path: String, network: Network) throws -> CheckpointContents {
        let file = try HDF5File.open(path)
        let version = try file.int64Attribute("format_version")
        guard version == formatVersion else {
            throw LockstepError.usage("\(path) has checkpoint format version \(version); this lockstep reads version \(formatVersion)")
        }
        var checksum = FNV1a64()
        var parameters = [Float](repeating: 0, count: network.parameterCount)
        for view in network.views {
            let values = try readTensor(file, "/model/\(view.path)", view: view)
            parameters.replaceSubrange(view.offset..<(view.offset + view.count), with: values)
            values.withUnsafeBufferPointer { checksum.add($0) }
        }
        var state: [String: [Float]] = [:]
        let names = try file.stringAttribute("optimizer_state").split(separator: ",").map(String.init)
        for name in names {
            var buffer = [Float](repeating: 0, count: network.parameterCount)
            for view in network.views {
                let values = try readTensor(file, "/optimizer/\(name)/\(view.path)", view: view)
                buffer.replaceSubrange(view.offset..<(view.offset + view.count), with: values)
                values.withUnsafeBufferPointer { checksum.add($0) }
            }
            state[name] = buffer
        }
        let stored = try file.attribute("checksum_fnv1a64", as: UInt64.self).first
        guard stored == checksum.value else {
            throw LockstepError.usage("\(path): checksum mismatch, the checkpoint is corrupt: delete it to resume from an older one")
        }
        var position = TrainingPosition()
        position.step = Int(try file.int64Attribute("step"))
        position.epoch = Int(try file.int64Attribute("epoch"))
        position.epochStep = Int(try file.int64Attribute("epoch_step"))
        position.samplesSeen = Int(try file.int64Attribute("samples_seen"))
        return CheckpointContents(
            position: position,
            worldSize: Int(try file.int64Attribute("world_size")),
            seed: try file.attribute("seed", as: UInt64.self).first ?? 0,
            config: try file.stringAttribute("config"),
            parameters: parameters, optimizerUpdates: Int(try file.int64Attribute("optimizer_updates")), state: state,
            checksum: checksum.value)
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

    private static func readTensor(_ file: HDF5File, _ path: String, view: ParameterView) throws -> [Float] {
        guard file.exists(path) else {
            throw LockstepError.usage("\(file.path) has no \(path): the checkpoint is from a different model")
        }
        let info = try file.info(path)
        guard info.shape == view.spec.shape else {
            throw LockstepError.usage("\(file.path): \(path) has shape \(info.shape) but the model needs \(view.spec.shape): the checkpoint is from a different model")
        }
        return try file.read(path, as: Float.self)
    }

    private static func folder(of path: String) -> String {
        guard let slash = path.lastIndex(of: "/") else { return "." }
        return String(path[..<slash])
    }

    private static func syncFile(_ path: String) throws {
        let fd = open(path, O_RDONLY)
        guard fd >= 0 else { throw LockstepError.runtime("cannot open \(path) to fsync it") }
        defer { close(fd) }
        guard fsync(fd) == 0 else { throw LockstepError.runtime("fsync of \(path) failed: \(String(cString: strerror(errno)))") }
    }
}
