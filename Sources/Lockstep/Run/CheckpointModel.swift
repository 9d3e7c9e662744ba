// A checkpoint's model rebuilt from the checkpoint alone, for `lockstep eval` and `lockstep
// export`: its stored config (`@config`) gives the layers, `@sample_shape` (or a data file) the
// input shape, and Checkpoint.read the verified parameters and layer state. Every mistake is a
// usage error that says what to do.

#if canImport(Glibc)
import Glibc
#endif

public struct CheckpointModel {
    /// The checkpoint file.
    public let path: String
    /// The job it was trained with, parsed from `@config`.
    public let job: Job
    /// The input transform and sample shape it records (nil in checkpoints written before them).
    public let input: InputNormalization?

    /// Reads a checkpoint's config and input description. `path` is a checkpoint file, or a run
    /// directory or its `checkpoints` folder (then the newest checkpoint in it).
    public init(_ path: String) throws {
        let resolved = try Self.resolve(path)
        let file = try Self.damageChecked(resolved) { try HDF5File.open(resolved) }
        defer { file.close() }
        guard file.hasAttribute("config"), file.hasAttribute("checksum_fnv1a64") else {
            throw LockstepError.usage("\(resolved) is not a Lockstep checkpoint (no @config or @checksum_fnv1a64 attribute): give a file from a run's checkpoints/ folder")
        }
        let config = try Self.damageChecked(resolved) { try file.stringAttribute("config") }
        self.path = resolved
        job = try Job.parse(config, source: "\(resolved) @config")
        input = try Self.damageChecked(resolved) { try InputNormalization.read(from: file) }
    }

    /// The model's network for samples of `sampleShape`, with the checkpoint's parameters and
    /// layer state loaded (checksum verified), and the header read with them.
    public func load(sampleShape: [Int], communicator: Communicator? = nil,
                     mismatch: (String) -> LockstepError) throws -> (network: Network, contents: CheckpointContents) {
        let network: Network
        do {
            network = try Network(inputShape: sampleShape, layers: job.layers, communicator: communicator)
        } catch let error as LockstepError {
            throw mismatch(error.message)
        }
        let contents: CheckpointContents
        do {
            contents = try Self.damageChecked(path) { try Checkpoint.read(path, network: network) }
        } catch let error as LockstepError where error.message.contains("from a different model") {
            throw mismatch(error.message)
        }
        network.parameters.copy(from: contents.parameters)
        if network.stateCount > 0 { network.state.copy(from: contents.layerState) }
        return (network, contents)
    }

    /// The checkpoint file `path` names: itself, or the newest in a run directory or checkpoints folder.
    static func resolve(_ path: String) throws -> String {
        var status = stat()
        guard stat(path, &status) == 0 else {
            throw LockstepError.usage("\(path): no such checkpoint (\(String(cString: strerror(errno)))): give a checkpoint file such as runs/NAME/checkpoints/step-00000100.h5, or a run directory")
        }
        guard status.st_mode & S_IFMT == S_IFDIR else { return path }
        let base = path.hasSuffix("/") ? String(path.dropLast()) : path
        if let newest = (Checkpoint.list(in: base + "/checkpoints").last ?? Checkpoint.list(in: base).last) { return newest }
        throw LockstepError.usage("\(path) is a folder without checkpoints (no checkpoints/step-*.h5): give a checkpoint file or a run directory that has one")
    }

    /// Runs `body`; a damaged file (truncated, corrupt, checksum mismatch) becomes one line that says so.
    static func damageChecked<T>(_ path: String, _ body: () throws -> T) throws -> T {
        do {
            return try body()
        } catch let error as LockstepError where Checkpoint.isDamage(error) {
            throw LockstepError.usage("\(path) is damaged and cannot be used (\(error.message)): use another checkpoint of the run, e.g. the one before it in its checkpoints/ folder")
        }
    }
}
