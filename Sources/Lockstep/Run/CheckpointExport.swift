// `lockstep export CHECKPOINT --format safetensors`: the checkpoint's model tensors under
// PyTorch's state_dict names (the /model paths with '/' → '.', docs/checkpoints.md "Into
// PyTorch"), BatchNorm's num_batches_tracked (the checkpoint's step) so that
// `load_state_dict(strict=True)` works, and the config and input normalisation as metadata.
// Written to OUTPUT.tmp, fsynced and renamed: a failed export leaves no file.

#if canImport(Glibc)
import Glibc
#endif

public enum CheckpointExport {
    public enum Format: String, CaseIterable, Sendable { case safetensors, onnx }

    /// The file an export writes by default: the checkpoint's name with `.safetensors`.
    public static func defaultOutput(for checkpoint: String) -> String {
        (checkpoint.hasSuffix(".h5") ? String(checkpoint.dropLast(3)) : checkpoint) + ".safetensors"
    }

    /// Writes the safetensors file and returns (its path, tensors, bytes). `data`: a data file
    /// for the sample shape of checkpoints that did not record it (default: the config's).
    public static func safetensors(checkpoint: String, output: String?, data: String?) throws -> (path: String, tensors: Int, bytes: Int) {
        let model = try CheckpointModel(checkpoint)
        let shape = try sampleShape(model, data: data)
        let (network, contents) = try model.load(sampleShape: shape) { why in
            LockstepError.usage("\(model.path): its model does not take samples of shape \(shape) (\(why)): pass --data with its training data")
        }
        var tensors: [SafetensorsTensor] = []
        for view in network.views {
            tensors.append(SafetensorsTensor(name: torchName(view.path), shape: view.spec.shape,
                                             floats: UnsafeBufferPointer(network.parameters.slice(view.offset, view.count))))
        }
        for view in network.stateViews {
            tensors.append(SafetensorsTensor(name: torchName(view.path), shape: view.spec.shape,
                                             floats: UnsafeBufferPointer(network.state.slice(view.offset, view.count))))
            // PyTorch's BatchNorm counts its training forwards; the docs' mapping takes the step.
            if view.path.hasSuffix("/running_mean") {
                let layer = String(view.path.dropLast("/running_mean".count))
                tensors.append(SafetensorsTensor(name: torchName(layer) + ".num_batches_tracked", shape: [],
                                                 int64s: [Int64(contents.position.step)]))
            }
        }
        var metadata = ["format": "pt", "lockstep_config": model.job.resolvedTOML, "lockstep_step": String(contents.position.step),
                        "lockstep_checkpoint": model.path]
        if let input = model.input {
            metadata["normalization"] = input.mode.rawValue
            metadata["input_scale"] = "\(input.scale)"
            metadata["input_shift"] = "\(input.shift)"
            if let mean = input.mean, let std = input.std {
                metadata["normalization_mean"] = "\(mean)"
                metadata["normalization_std"] = "\(std)"
            }
        }
        metadata["sample_shape"] = shape.map(String.init).joined(separator: ",")
        let bytes = Safetensors.encode(tensors, metadata: metadata)
        let path = output ?? defaultOutput(for: model.path)
        try writeFileAtomically(path, bytes)
        return (path, tensors.count, bytes.count)
    }

    /// `a/b/c` → `a.b.c`, PyTorch's state_dict key for a module whose submodules carry Lockstep's names.
    static func torchName(_ path: String) -> String { path.replacingSlashes() }

    private static func sampleShape(_ model: CheckpointModel, data: String?) throws -> [Int] {
        if data == nil, let shape = model.input?.sampleShape { return shape }
        let path = data ?? model.job.data.file
        let fix = data == nil ? "pass --data with a file of its training data (the checkpoint predates @sample_shape and its config's data.file is gone)" : "give a data file in Lockstep's layout"
        guard access(path, R_OK) == 0 else { throw LockstepError.usage("\(path): no such readable data file: \(fix)") }
        let file = try HDF5File.open(path)
        defer { file.close() }
        guard file.exists(model.job.data.trainX) else {
            throw LockstepError.usage("\(path) has no dataset \(model.job.data.trainX) (data.train_x of \(model.path)): \(fix)")
        }
        return Array(try file.info(model.job.data.trainX).shape.dropFirst())
    }

    /// Writes `bytes` to `path` via `path`.tmp, fsynced, renamed, folder fsynced.
    static func writeFileAtomically(_ path: String, _ bytes: [UInt8]) throws {
        let temporary = path + ".tmp"
        guard let f = fopen(temporary, "wb") else {
            throw LockstepError.usage("cannot write \(path): \(String(cString: strerror(errno))): choose a writable --output")
        }
        let written = bytes.withUnsafeBytes { fwrite($0.baseAddress, 1, $0.count, f) }
        let ok = written == bytes.count && fflush(f) == 0 && fsync(fileno(f)) == 0
        let why = String(cString: strerror(errno))
        fclose(f)
        guard ok, rename(temporary, path) == 0 else {
            unlink(temporary)
            throw LockstepError.runtime("cannot write \(path): \(why)")
        }
        let slash = path.lastIndex(of: "/")
        try? syncToDisk(slash.map { String(path[..<$0]) } ?? ".")
    }
}

private extension String {
    func replacingSlashes() -> String { String(map { $0 == "/" ? "." : $0 }) }
}
