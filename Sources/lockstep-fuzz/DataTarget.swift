// The HDF5 target: the input's bytes as a file, opened the ways Lockstep opens a user's file:
// as the training data (TrainingRun.execute, step 1), as a checkpoint to resume from (for a
// small fixed network, Checkpoint.read), and as `lockstep inspect` lists it.
//
// HDF5File.open takes a path (and its file access properties are HDF5's defaults), so the bytes
// go to a file of this process's own under /dev/shm (memory; $TMPDIR or /tmp without it),
// rewritten in place for each input.
//
// A LockstepError is a correct outcome. A trap, a crash (in Lockstep or in libhdf5), a hang, a
// huge allocation, an error of another type, or an HDF5 object left open afterwards is a finding.

import CHDF5
import Lockstep

#if canImport(Glibc)
import Glibc
#endif

enum DataTarget {
    /// Classes of the model the dataset is read for (the seeds' labels lie in 0..<4).
    static let classes = 4

    /// The fixed network checkpoints are read for: 20 inputs, dense 8 + ReLU, dense 4 (the
    /// seed checkpoints are written for it).
    static let checkpointLayers = [LayerSpec(units: 8, activation: .relu), LayerSpec(units: 4, activation: .identity)]
    static let checkpointInputShape = [20]
    nonisolated(unsafe) static let network: Network =
        try! Network(inputShape: checkpointInputShape, layers: checkpointLayers, extraGradientSlots: 2)

    static let path: String = {
        let folder: String
        if access("/dev/shm", W_OK) == 0 {
            folder = "/dev/shm"
        } else {
            folder = getenv("TMPDIR").map { String(cString: $0) } ?? "/tmp"
        }
        let path = "\(folder)/lockstep-fuzz-\(getpid()).h5"
        atexit { unlink(DataTarget.path) }
        return path
    }()

    static func run(_ bytes: UnsafeBufferPointer<UInt8>) -> String {
        write(bytes)
        if let known = KnownFindings.data(path: path) { return "skipped: known finding \(known)" }
        var outcome: [String] = []
        outcome.append("data: " + attempt { try readAsData() })
        outcome.append("checkpoint: " + attempt { try readAsCheckpoint() })
        outcome.append("inspect: " + attempt { try inspect() })
        // Every HDF5File is closed by now: any id still open is a leak in the reading code.
        // H5F_OBJ_ALL (files, datasets, groups, datatypes, attributes), a macro Swift cannot import.
        let all: UInt32 = 0x1F
        let open = H5Fget_obj_count(hid_t(all), all)
        if open != 0 { finding("\(open) HDF5 object(s) left open after reading the file") }
        return outcome.joined(separator: "; ")
    }

    private static func attempt(_ body: () throws -> String) -> String {
        do {
            return try body()
        } catch let error as LockstepError {
            return "rejected: \(error.message)"
        } catch {
            finding("an error that is not a LockstepError: \(type(of: error)): \(error)")
        }
    }

    private static func write(_ bytes: UnsafeBufferPointer<UInt8>) {
        let fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0o600)
        guard fd >= 0 else { fatalError("lockstep-fuzz: cannot write \(path): \(String(cString: strerror(errno)))") }
        var done = 0
        while done < bytes.count {
            let n = Glibc.write(fd, bytes.baseAddress! + done, bytes.count - done)
            guard n > 0 else { fatalError("lockstep-fuzz: cannot write \(path): \(String(cString: strerror(errno)))") }
            done += n
        }
        close(fd)
    }

    /// As TrainingRun.execute reads the job's data (with the default dataset paths).
    private static func readAsData() throws -> String {
        let file = try HDF5File.open(path)
        for p in ["/train/x", "/train/y", "/test/x", "/test/y"] where !file.exists(p) {
            throw LockstepError.usage("no \(p); the file has \(file.datasetPaths().joined(separator: ", "))")
        }
        let train = try Dataset(file: file, xPath: "/train/x", yPath: "/train/y", classes: classes, name: "train")
        let test = try Dataset(file: file, xPath: "/test/x", yPath: "/test/y", classes: classes, name: "test")
        guard test.sampleShape == train.sampleShape else {
            throw LockstepError.usage("test samples \(test.sampleShape), training samples \(train.sampleShape)")
        }
        let stats = train.statistics()
        train.normalize(.standardize, stats: stats)
        test.normalize(.standardize, stats: stats)
        // A batch of the first and the last samples, as the loader and the evaluation gather them.
        for split in [train, test] {
            let rows = min(split.count, 4)
            let x = FloatBuffer(count: rows * split.width)
            var y = [Int32](repeating: 0, count: rows)
            let indices = (0..<rows).map { Int32($0 % 2 == 0 ? $0 / 2 : split.count - 1 - $0 / 2) }
            indices.withUnsafeBufferPointer { i in y.withUnsafeMutableBufferPointer { split.gather(i, x: x.pointer, y: $0.baseAddress!) } }
            y.withUnsafeMutableBufferPointer { split.gather(0..<rows, x: x.pointer, y: $0.baseAddress!) }
        }
        return "\(train.count) training samples of shape \(train.sampleShape), \(test.count) test samples"
    }

    /// As a resume reads the newest checkpoint.
    private static func readAsCheckpoint() throws -> String {
        let contents = try Checkpoint.read(path, network: network)
        guard contents.parameters.count == network.parameterCount,
              contents.state.values.allSatisfy({ $0.count == network.parameterCount }) else {
            finding("Checkpoint.read returned buffers that do not match the network's \(network.parameterCount) parameters")
        }
        return "step \(contents.position.step), state [\(contents.state.keys.sorted().joined(separator: ", "))]"
    }

    /// As `lockstep inspect` lists the file.
    private static func inspect() throws -> String {
        let file = try HDF5File.open(path)
        var lines: [String] = []
        for p in file.datasetPaths() {
            let info = try file.info(p)
            lines.append("\(p) \(info.dtypeName) \(info.shape)")
        }
        if file.hasAttribute("format_version") {
            for name in ["format_version", "step", "epoch", "epoch_step", "samples_seen", "world_size"] {
                lines.append("@\(name) = \(try file.int64Attribute(name))")
            }
        }
        return lines.joined(separator: ", ")
    }
}
