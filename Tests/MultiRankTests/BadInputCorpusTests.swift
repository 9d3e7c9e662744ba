// The bad-input corpus: malformed jobs, data files, checkpoints, run directories and command
// lines, each under `mpirun -n 2`: exit 2, exactly one `lockstep:` line naming the problem (and
// what to do), well within 30 s, and nothing already on disk damaged (a run directory that
// existed before is byte-for-byte the same after).

import Foundation
import Lockstep
import Testing

extension MultiRank {
    @Suite struct BadInputCorpus {
        /// Builds the files for one case in `dir` and returns the `lockstep` arguments.
        typealias Setup = @Sendable (_ dir: String) throws -> [String]

        struct Case: Sendable, CustomTestStringConvertible {
            let name: String
            /// Text the single error line must contain.
            let mentions: [String]
            let setup: Setup
            var testDescription: String { name }
        }

        // MARK: building blocks

        /// The standard synthetic data and job, with `--set` overrides.
        static func job(_ overrides: String...) -> Setup {
            { dir in
                try Scratch.dataset(at: dir + "/data.h5")
                try Scratch.job(at: "\(dir)/job.toml", data: dir + "/data.h5", out: "\(dir)/run")
                return ["train", "\(dir)/job.toml"] + overrides.flatMap { ["--set", $0] }
            }
        }

        /// The standard job with its text edited by `edit`.
        static func jobText(_ edit: @escaping @Sendable (String) -> String) -> Setup {
            { dir in
                try Scratch.dataset(at: dir + "/data.h5")
                try Scratch.job(at: "\(dir)/job.toml", data: dir + "/data.h5", out: "\(dir)/run")
                let text = try String(contentsOfFile: "\(dir)/job.toml", encoding: .utf8)
                try edit(text).write(toFile: "\(dir)/job.toml", atomically: true, encoding: .utf8)
                return ["train", "\(dir)/job.toml"]
            }
        }

        /// A data file written by `write` (train/test x and y as given), and the standard job on it.
        static func data(_ write: @escaping @Sendable (HDF5File) throws -> Void) -> Setup {
            { dir in
                let file = try HDF5File.create(dir + "/data.h5")
                try write(file)
                file.close()
                try Scratch.job(at: "\(dir)/job.toml", data: dir + "/data.h5", out: "\(dir)/run")
                return ["train", "\(dir)/job.toml"]
            }
        }

        /// Valid features and labels for `n` samples of width 20 and 4 classes.
        static func valid(_ n: Int) -> ([Float], [Int64]) {
            ((0..<(n * 20)).map { Float($0 % 7) / 7 }, (0..<n).map { Int64($0 % 4) })
        }

        static func writeSplits(_ file: HDF5File, trainX: [Float]? = nil, trainXShape: [Int]? = nil,
                                trainY: [Int64]? = nil, trainYShape: [Int]? = nil) throws {
            let (x, y) = valid(600), (tx, ty) = valid(200)
            try file.write("/train/x", trainX ?? x, shape: trainXShape ?? [600, 20])
            try file.write("/train/y", trainY ?? y, shape: trainYShape ?? [600])
            try file.write("/test/x", tx, shape: [200, 20])
            try file.write("/test/y", ty, shape: [200])
        }

        /// A finished 20-step run in `run/` (one process, no mpirun); then `then` breaks the
        /// newest checkpoint or `edit` changes the job, and the case resumes it on 2 ranks.
        static func existingRun(edit: (@Sendable (String) -> String)? = nil,
                                then: @escaping @Sendable (_ newest: String) throws -> Void = { _ in }) -> Setup {
            { dir in
                try Scratch.dataset(at: dir + "/data.h5")
                try Scratch.job(at: "\(dir)/job.toml", data: dir + "/data.h5", out: "\(dir)/run", steps: 20)
                let first = try Launcher.run(ranks: nil, ["train", "\(dir)/job.toml"])
                guard first.exitCode == 0 else { throw LockstepError.runtime("setup run failed: \(first.stderr)") }
                try then(Checkpoint.list(in: "\(dir)/run/checkpoints").last!)
                if let edit {
                    let text = try String(contentsOfFile: "\(dir)/job.toml", encoding: .utf8)
                    try edit(text).write(toFile: "\(dir)/job.toml", atomically: true, encoding: .utf8)
                }
                return ["train", "\(dir)/job.toml", "--resume"]
            }
        }

        /// The standard job's optimizer section ("lr = 0.1\nmomentum = 0.9\nweight_decay = 1e-3") replaced.
        static func optimizer(_ section: String) -> @Sendable (String) -> String {
            { $0.replacingOccurrences(of: "lr = 0.1\nmomentum = 0.9\nweight_decay = 1e-3", with: section) }
        }

        /// The data file of the run a checkpoint belongs to (`<dir>/run/checkpoints/step-N.h5` → `<dir>/data.h5`).
        static func dataFile(of checkpoint: String) -> String {
            URL(fileURLWithPath: checkpoint).deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()
                .appendingPathComponent("data.h5").path
        }

        /// A data file made by h5py whose /train/x is written by the Python statement `trainX`
        /// (a compressed dataset, a link), with valid labels and test split; the standard job on it.
        static func h5pyData(trainX: String) -> Setup {
            { dir in
                try python("""
                    import h5py, numpy, sys
                    with h5py.File(sys.argv[1], "w") as f:
                        \(trainX)
                        f["train/y"] = numpy.arange(600) % 4
                        f["test/x"] = numpy.zeros((200, 20), "f4"); f["test/y"] = numpy.arange(200) % 4
                    """, dir + "/data.h5")
                try Scratch.job(at: "\(dir)/job.toml", data: dir + "/data.h5", out: "\(dir)/run")
                return ["train", "\(dir)/job.toml"]
            }
        }

        /// Runs a python3 script (h5py: python3-h5py, which scripts/test installs) with `args`.
        static func python(_ script: String, _ args: String...) throws {
            let process = Process()
            process.executableURL = URL(fileURLWithPath: "/usr/bin/python3")
            process.arguments = ["-c", script] + args
            try process.run()
            process.waitUntilExit()
            guard process.terminationStatus == 0 else { throw LockstepError.runtime("python3 setup step failed") }
        }

        // MARK: the corpus

        static let cases: [Case] = [
            // The job file.
            Case(name: "TOML syntax error", mentions: ["job.toml:", "TOML syntax error"],
                 setup: jobText { $0.replacingOccurrences(of: "[batch]", with: "[batch") }),
            Case(name: "missing job file", mentions: ["/nonexistent.toml", "no such"], setup: { _ in ["train", "/nonexistent.toml"] }),
            Case(name: "misspelled key", mentions: ["optimizer.lrr", "did you mean optimizer.lr"], setup: job("optimizer.lrr=0.1")),
            Case(name: "unknown section", mentions: ["optimiser", "unknown key"], setup: job("optimiser.lr=0.1")),
            Case(name: "missing required key", mentions: ["batch.global", "required"],
                 setup: jobText { $0.replacingOccurrences(of: "global = 24", with: "") }),
            Case(name: "wrong type", mentions: ["batch.global", "integer"], setup: job("batch.global=\"big\"")),
            Case(name: "negative rate", mentions: ["optimizer.lr", "at least 0"], setup: job("optimizer.lr=-1")),
            Case(name: "NaN rate", mentions: ["optimizer.lr", "finite"], setup: job("optimizer.lr=nan")),
            Case(name: "momentum of 1.5", mentions: ["optimizer.momentum", "at most"], setup: job("optimizer.momentum=1.5")),
            Case(name: "bucket size past any model", mentions: ["exchange.bucket_mb", "at most"], setup: job("exchange.bucket_mb=1e20")),
            Case(name: "unknown optimizer", mentions: ["optimizer.name", "rmsprop"], setup: job("optimizer.name=\"rmsprop\"")),
            Case(name: "key of another optimizer", mentions: ["optimizer.beta2", "adam"], setup: job("optimizer.beta2=0.99")),
            Case(name: "zero units", mentions: ["model.layers.0.units", "at least 1"], setup: job("model.layers=[{units=0},{units=4}]")),
            Case(name: "bad activation", mentions: ["model.layers.0.activation", "relu"], setup: job("model.layers=[{units=8, activation=\"tanhh\"},{units=4}]")),
            Case(name: "unknown normalization", mentions: ["data.normalization", "standardize"], setup: job("data.normalization=\"zscore\"")),
            Case(name: "warmup steps and epochs", mentions: ["warmup_steps or warmup_epochs"], setup: job("schedule.warmup_steps=3", "schedule.warmup_epochs=1")),
            Case(name: "step decay without epochs", mentions: ["schedule.decay_epochs"], setup: job("schedule.decay=\"step\"")),
            Case(name: "malformed --set", mentions: ["--set", "key=value"], setup: { dir in try job()(dir) + ["--set", "noequals"] }),
            Case(name: "--stop-after 0", mentions: ["--stop-after"], setup: { dir in try job()(dir) + ["--stop-after", "0"] }),
            // Launch-dependent batch checks.
            Case(name: "batch larger than the data", mentions: ["batch.global = 1200", "600 training samples"], setup: job("batch.global=1200")),
            Case(name: "micro-batch not dividing the share", mentions: ["batch.micro = 5"], setup: job("batch.micro=5")),
            Case(name: "batch not divisible by the ranks", mentions: ["batch.global = 25", "divisible", "2 ranks"], setup: job("batch.global=25")),
            Case(name: "GSNR with eps 0", mentions: ["gsnr.eps", "greater than 0"], setup: job("gsnr.enabled=true", "gsnr.eps=0")),
            Case(name: "L-BFGS with GSNR", mentions: ["gsnr.enabled", "L-BFGS"],
                 setup: jobText { optimizer("name = \"lbfgs\"\n\n[gsnr]\nenabled = true")($0) }),
            Case(name: "full batch that grows", mentions: ["batch.global", "\"full\"", "cannot grow"], setup: job("batch.global=\"full\"", "batch.schedule=\"increasing\"")),
            // [augment] and [loss].
            Case(name: "negative crop padding", mentions: ["augment.crop_padding", "at least 0"], setup: job("augment.crop_padding=-1")),
            Case(name: "augmentation on flat samples", mentions: ["augment.flip = true", "image samples", "[20]"], setup: job("augment.flip=true")),
            Case(name: "crop padding as large as the image", mentions: ["augment.crop_padding = 8", "image side 8", "at most 7"], setup: { dir in
                try ConvInvariance.images(at: dir + "/data.h5", train: 48, test: 24)
                try Scratch.job(at: "\(dir)/job.toml", data: dir + "/data.h5", out: "\(dir)/run")
                return ["train", "\(dir)/job.toml", "--set", "augment.crop_padding=8"]
            }),
            Case(name: "augmentation with a full batch", mentions: ["augment.crop_padding = 1", "batch.global = \"full\""],
                 setup: job("batch.global=\"full\"", "augment.crop_padding=1")),
            Case(name: "label smoothing of 1", mentions: ["loss.label_smoothing", "less than 1"], setup: job("loss.label_smoothing=1")),
            // The data file.
            Case(name: "missing data file", mentions: ["/nonexistent/data.h5", "no such"], setup: job("data.file=\"/nonexistent/data.h5\"")),
            Case(name: "data file that is not HDF5", mentions: ["data.h5", "not an HDF5 file"], setup: { dir in
                try "x,y\n1,2\n".write(toFile: dir + "/data.h5", atomically: true, encoding: .utf8)
                try Scratch.job(at: "\(dir)/job.toml", data: dir + "/data.h5", out: "\(dir)/run")
                return ["train", "\(dir)/job.toml"]
            }),
            Case(name: "truncated data file", mentions: ["data.h5"], setup: { dir in
                try Scratch.dataset(at: dir + "/data.h5")
                let whole = try Data(contentsOf: URL(fileURLWithPath: dir + "/data.h5"))
                try whole.prefix(whole.count / 2).write(to: URL(fileURLWithPath: dir + "/data.h5"))
                try Scratch.job(at: "\(dir)/job.toml", data: dir + "/data.h5", out: "\(dir)/run")
                return ["train", "\(dir)/job.toml"]
            }),
            Case(name: "wrong dataset path", mentions: ["data.train_x", "/training/x", "/train/x"], setup: job("data.train_x=\"/training/x\"")),
            Case(name: "x and y lengths differ", mentions: ["600 samples", "599", "must match"],
                 setup: data { try writeSplits($0, trainY: Array(valid(600).1.prefix(599)), trainYShape: [599]) }),
            Case(name: "fewer samples than ranks", mentions: ["\"full\"", "2 ranks for 1 training samples"], setup: { dir in
                let file = try HDF5File.create(dir + "/data.h5")
                try file.write("/train/x", valid(1).0, shape: [1, 20])
                try file.write("/train/y", valid(1).1, shape: [1])
                try file.write("/test/x", valid(10).0, shape: [10, 20])
                try file.write("/test/y", valid(10).1, shape: [10])
                file.close()
                try Scratch.job(at: "\(dir)/job.toml", data: dir + "/data.h5", out: "\(dir)/run")
                return ["train", "\(dir)/job.toml", "--set", "batch.global=\"full\""]
            }),
            Case(name: "labels out of range", mentions: ["label", "0..<3"], setup: job("model.layers=[{units=8},{units=3}]")),
            Case(name: "negative label", mentions: ["label -1", "sample 7"],
                 setup: data { file in var y = valid(600).1; y[7] = -1; try writeSplits(file, trainY: y) }),
            Case(name: "NaN feature", mentions: ["non-finite", "sample 3"],
                 setup: data { file in var x = valid(600).0; x[3 * 20 + 5] = .nan; try writeSplits(file, trainX: x) }),
            Case(name: "float labels", mentions: ["labels must be integers"], setup: data { file in
                let (x, _) = valid(600), (tx, ty) = valid(200)
                try file.write("/train/x", x, shape: [600, 20])
                try file.write("/train/y", (0..<600).map { Float($0 % 4) }, shape: [600])
                try file.write("/test/x", tx, shape: [200, 20])
                try file.write("/test/y", ty, shape: [200])
            }),
            Case(name: "labels of shape [N, 2]", mentions: ["labels must be one integer per sample"],
                 setup: data { try writeSplits($0, trainY: valid(1200).1, trainYShape: [600, 2]) }),
            Case(name: "one-dimensional features", mentions: ["at least 2 dimensions"],
                 setup: data { try writeSplits($0, trainXShape: [12000]) }),
            // data.validation and a stored validation split.
            Case(name: "validation holding out every training row", mentions: ["data.validation", "600 of the 600", "hold out fewer"],
                 setup: job("data.validation=600")),
            Case(name: "validation fraction of 1.5", mentions: ["data.validation", "strictly between 0 and 1"], setup: job("data.validation=1.5")),
            Case(name: "validation of 0 rows", mentions: ["data.validation", "at least 1"], setup: job("data.validation=0")),
            Case(name: "validation rows and a stored validation split", mentions: ["data.validation", "already has a validation split", "/validation/x"],
                 setup: { dir in
                     try data { file in
                         try writeSplits(file)
                         try file.write("/validation/x", valid(40).0, shape: [40, 20])
                         try file.write("/validation/y", valid(40).1, shape: [40])
                     }(dir) + ["--set", "data.validation=50"]
                 }),
            Case(name: "half a stored validation split", mentions: ["data.validation_y", "/validation/y", "no such dataset"], setup: data { file in
                try writeSplits(file)
                try file.write("/validation/x", valid(40).0, shape: [40, 20])
            }),
            // Checkpoints and run directories (an existing run must survive untouched).
            Case(name: "corrupt checkpoint", mentions: ["checksum mismatch", "corrupt"], setup: existingRun(then: { newest in
                // Flip bytes inside a parameter tensor's raw data (found with h5py), not in HDF5's metadata.
                try python("""
                    import h5py, sys
                    with h5py.File(sys.argv[1], "r") as f: offset = f["/model/dense1/weight"].id.get_offset()
                    with open(sys.argv[1], "r+b") as raw:
                        raw.seek(offset + 8); raw.write(bytes([0xde, 0xad, 0xbe, 0xef]))
                    """, newest)
            })),
            Case(name: "checkpoint of another model", mentions: ["different model"],
                 setup: existingRun(edit: { $0.replacingOccurrences(of: "{ units = 32 }", with: "{ units = 33 }") })),
            Case(name: "checkpoint of another optimizer", mentions: ["optimizer.name", "\"sgd\" in the checkpoint", "\"adam\" in the job"],
                 setup: existingRun(edit: optimizer("name = \"adam\"\nlr = 0.01"))),
            Case(name: "checkpoint format version from the future", mentions: ["format version 99"], setup: existingRun(then: { newest in
                try python("import h5py, numpy, sys\nwith h5py.File(sys.argv[1], 'r+') as f: f.attrs['format_version'] = numpy.int64(99)", newest)
            })),
            Case(name: "fresh run into a directory with checkpoints", mentions: ["already has checkpoints", "--resume"], setup: existingRun()),
            Case(name: "run directory under a file", mentions: ["run.out"], setup: { dir in
                try "not a folder".write(toFile: dir + "/blocker", atomically: true, encoding: .utf8)
                return try job("run.out=\"\(dir)/blocker/run\"")(dir)
            }),
            // Issue 13: sizes and encodings
            // Counts past their bound are usage errors, never an overflow trap (100 × steps/2).
            Case(name: "bench --steps past Int arithmetic", mentions: ["--steps", "1000000"], setup: { dir in
                try ["bench", "--job"] + job()(dir).dropFirst() + ["--steps", "200000000000000000"]
            }),
            Case(name: "bench --steps one past the bound", mentions: ["--steps", "1000001"], setup: { dir in
                try ["bench", "--job"] + job()(dir).dropFirst() + ["--steps", "1000001"]
            }),
            Case(name: "bench --passes past Int arithmetic", mentions: ["--passes", "100000"], setup: { dir in
                try ["bench", "--job"] + job()(dir).dropFirst() + ["--passes", String(Int.max)]
            }),
            // A job file that is not UTF-8 (a Latin-1 "é" in a comment on line 1) is a syntax error, not replaced text.
            Case(name: "job file that is not UTF-8", mentions: ["job.toml:1: not valid UTF-8 (byte 0xe9 at offset 5)", "save the file as UTF-8"],
                 setup: { dir in
                     let args = try job()(dir)
                     let text = try Data(contentsOf: URL(fileURLWithPath: "\(dir)/job.toml"))
                     try (Data("# caf".utf8) + Data([0xE9, 0x0A]) + text).write(to: URL(fileURLWithPath: "\(dir)/job.toml"))
                     return args
                 }),
            // Values the trainer turns into Float: past float32's range they would be Inf.
            Case(name: "rate past float32", mentions: ["optimizer.lr", "1e+39 does not fit in float32", "smaller value"], setup: job("optimizer.lr=1e39")),
            Case(name: "weight decay past float32 in the file", mentions: ["optimizer.weight_decay", "5e+38 does not fit in float32"],
                 setup: jobText { $0.replacingOccurrences(of: "weight_decay = 1e-3", with: "weight_decay = 5e38") }),
            // `lockstep import idx` of IDX images whose header dimensions overflow or lie (with good
            // labels and test split) into an existing folder, which must stay as it was: no .tmp, no output.
            Case(name: "import idx with overflowing dimensions", mentions: ["images.idx", "4294967295", "corrupt"], setup: { dir in
                for (file, bytes) in [("images.idx", [0, 0, 8, 4] + [UInt8](repeating: 0xFF, count: 16) + [1, 2, 3]), ("labels.idx", [0, 0, 8, 1, 0, 0, 0, 2, 1, 0]),
                                      ("good.idx", [0, 0, 8, 3, 0, 0, 0, 2, 0, 0, 0, 2, 0, 0, 0, 2, 5, 5, 5, 5, 5, 5, 5, 5])] as [(String, [UInt8])] {
                    try Data(bytes).write(to: URL(fileURLWithPath: "\(dir)/\(file)"))
                }
                try FileManager.default.createDirectory(atPath: dir + "/run", withIntermediateDirectories: true)
                try "an earlier file".write(toFile: dir + "/run/notes.txt", atomically: true, encoding: .utf8)
                return ["import", "idx", "--train-images", "\(dir)/images.idx", "--train-labels", "\(dir)/labels.idx",
                        "--test-images", "\(dir)/good.idx", "--test-labels", "\(dir)/labels.idx", "-o", "\(dir)/run/data.h5"]
            }),
            Case(name: "import idx whose header claims more than the file has", mentions: ["images.idx", "promises 47040000 bytes", "has 100"], setup: { dir in
                for (file, bytes) in [("images.idx", [0, 0, 8, 3, 0, 0, 0xEA, 0x60, 0, 0, 0, 28, 0, 0, 0, 28] + [UInt8](repeating: 7, count: 100)), ("labels.idx", [0, 0, 8, 1, 0, 0, 0, 2, 1, 0]),
                                      ("good.idx", [0, 0, 8, 3, 0, 0, 0, 2, 0, 0, 0, 2, 0, 0, 0, 2, 5, 5, 5, 5, 5, 5, 5, 5])] as [(String, [UInt8])] {
                    try Data(bytes).write(to: URL(fileURLWithPath: "\(dir)/\(file)"))
                }
                try FileManager.default.createDirectory(atPath: dir + "/run", withIntermediateDirectories: true)
                try "an earlier file".write(toFile: dir + "/run/notes.txt", atomically: true, encoding: .utf8)
                return ["import", "idx", "--train-images", "\(dir)/images.idx", "--train-labels", "\(dir)/labels.idx",
                        "--test-images", "\(dir)/good.idx", "--test-labels", "\(dir)/labels.idx", "-o", "\(dir)/run/data.h5"]
            }),
            Case(name: "import idx with a zero dimension", mentions: ["images.idx", "dimension 2 of 3 is 0"], setup: { dir in
                for (file, bytes) in [("images.idx", [0, 0, 8, 3, 0, 0, 0, 2, 0, 0, 0, 0, 0, 0, 0, 28]), ("labels.idx", [0, 0, 8, 1, 0, 0, 0, 2, 1, 0]),
                                      ("good.idx", [0, 0, 8, 3, 0, 0, 0, 2, 0, 0, 0, 2, 0, 0, 0, 2, 5, 5, 5, 5, 5, 5, 5, 5])] as [(String, [UInt8])] {
                    try Data(bytes).write(to: URL(fileURLWithPath: "\(dir)/\(file)"))
                }
                try FileManager.default.createDirectory(atPath: dir + "/run", withIntermediateDirectories: true)
                try "an earlier file".write(toFile: dir + "/run/notes.txt", atomically: true, encoding: .utf8)
                return ["import", "idx", "--train-images", "\(dir)/images.idx", "--train-labels", "\(dir)/labels.idx",
                        "--test-images", "\(dir)/good.idx", "--test-labels", "\(dir)/labels.idx", "-o", "\(dir)/run/data.h5"]
            }),
            // `lockstep import cifar10` of an archive whose test batch has a label past 9.
            Case(name: "import cifar10 with a label out of range", mentions: ["test_batch.bin record 2 of 2", "label 12", "10 classes"], setup: { dir in
                try python("""
                    import io, sys, tarfile
                    with tarfile.open(sys.argv[1], "w:gz") as t:
                        for name, labels in [("data_batch_%d" % k, [k]) for k in range(1, 6)] + [("test_batch", [3, 12])]:
                            data = b"".join(bytes([l]) + bytes(3072) for l in labels)
                            info = tarfile.TarInfo("cifar-10-batches-bin/%s.bin" % name); info.size = len(data)
                            t.addfile(info, io.BytesIO(data))
                    """, dir + "/cifar-10-binary.tar.gz")
                try FileManager.default.createDirectory(atPath: dir + "/run", withIntermediateDirectories: true)
                try "an earlier file".write(toFile: dir + "/run/notes.txt", atomically: true, encoding: .utf8)
                return ["import", "cifar10", "--input", "\(dir)/cifar-10-binary.tar.gz", "-o", "\(dir)/run/cifar10.h5"]
            }),
            // Issue 13: run directories, data and model sizes, run lengths.
            Case(name: "empty run.out", mentions: ["run.out is empty"], setup: job("run.out=\"\"")),
            Case(name: "root run.out", mentions: ["root folder", "run.out"], setup: job("run.out=\"/./\"")),
            Case(name: "zero-width features", mentions: ["[600, 0]", "no features"],
                 setup: data { try writeSplits($0, trainX: [], trainXShape: [600, 0]) }),
            Case(name: "dataset larger than memory", mentions: ["/train/x", "memory available", "smaller file"], setup: { dir in
                // Declared, never written: HDF5 allocates a contiguous dataset's storage late.
                try python("""
                    import h5py, numpy, sys
                    with h5py.File(sys.argv[1], "w") as f:
                        f.create_dataset("train/x", shape=(2**36, 64), dtype="f4")
                        f.create_dataset("train/y", shape=(2**36,), dtype="i8")
                        f["test/x"] = numpy.zeros((10, 64), "f4"); f["test/y"] = numpy.zeros(10, "i8")
                    """, dir + "/data.h5")
                try Scratch.job(at: "\(dir)/job.toml", data: dir + "/data.h5", out: "\(dir)/run")
                return ["train", "\(dir)/job.toml"]
            }),
            Case(name: "declared shape whose element count overflows", mentions: ["/train/x", "more elements than this machine can address"], setup: { dir in
                try python("""
                    import h5py, numpy, sys
                    with h5py.File(sys.argv[1], "w") as f:
                        f.create_dataset("train/x", shape=(2**40, 2**40, 2**40), dtype="u1", chunks=(1, 1, 1))
                        f.create_dataset("train/y", shape=(2**40,), dtype="i8", chunks=(1,))
                        f["test/x"] = numpy.zeros((10, 4, 4), "u1"); f["test/y"] = numpy.zeros(10, "i8")
                    """, dir + "/data.h5")
                try Scratch.job(at: "\(dir)/job.toml", data: dir + "/data.h5", out: "\(dir)/run")
                return ["train", "\(dir)/job.toml"]
            }),
            Case(name: "a model larger than memory", mentions: ["model.layers.0", "memory available", "fewer units"],
                 setup: job("model.layers=[{units=1000000000},{units=4}]")),
            Case(name: "a layer no Int can count", mentions: ["model.layers.1", "more parameters than this machine can address"],
                 setup: job("model.layers=[{units=4000000000},{units=4000000000},{units=4}]")),
            Case(name: "run length past Int", mentions: ["run.epochs", "steps"],
                 setup: jobText { $0.replacingOccurrences(of: "steps = 30\n", with: "epochs = 9223372036854775807\n") }),
            Case(name: "more GSNR groups than any Int", mentions: ["gsnr.groups_per_rank", "more groups"],
                 setup: job("gsnr.enabled=true", "gsnr.groups_per_rank=9223372036854775807")),
            // Issue 13: HDF5 files that fail for a reason other than damage say that reason.
            Case(name: "features compressed with a missing filter", mentions: ["/train/x", "lzf filter", "compression=\"gzip\""], setup: h5pyData(trainX: #"f.create_dataset("train/x", data=numpy.zeros((600, 20), "f4"), compression="lzf")"#)),
            Case(name: "features behind a dangling soft link", mentions: ["/train/x is a soft link to /nowhere", "does not exist"], setup: h5pyData(trainX: #"f["train/x"] = h5py.SoftLink("/nowhere")"#)),
            Case(name: "features behind an external link to a missing file", mentions: ["/train/x is an external link to gone.h5:/x", "cannot be opened"], setup: h5pyData(trainX: #"f["train/x"] = h5py.ExternalLink("gone.h5", "/x")"#)),
            Case(name: "truncated newest checkpoint", mentions: ["newest checkpoint unreadable", "truncated", "delete or move aside", "step-00000010.h5"],
                 setup: existingRun(then: { newest in
                let whole = try Data(contentsOf: URL(fileURLWithPath: newest))
                try whole.prefix(whole.count * 2 / 3).write(to: URL(fileURLWithPath: newest))
            })),
            // Issue 13: the resume contract (docs/checkpoints.md). The 20-step run had batch 24, seed 3, 600 samples.
            Case(name: "resume with another batch", mentions: ["batch.global", "24 in the checkpoint", "48 in the job", "data order"],
                 setup: existingRun(edit: { $0.replacingOccurrences(of: "global = 24", with: "global = 48") })),
            Case(name: "resume with another seed", mentions: ["run.seed", "3 in the checkpoint", "4 in the job"],
                 setup: existingRun(edit: { $0.replacingOccurrences(of: "seed = 3", with: "seed = 4") })),
            Case(name: "resume with another activation", mentions: ["model.layers.0", "identity"],
                 setup: existingRun(edit: { $0.replacingOccurrences(of: "{ units = 32 }", with: "{ units = 32, activation = \"identity\" }") })),
            Case(name: "resume on a data file with fewer samples", mentions: ["600 training samples", "has 500"], setup: existingRun(then: { newest in
                try Scratch.dataset(at: dataFile(of: newest), train: 500)
            })),
            Case(name: "resume on a data file with other samples", mentions: ["content fingerprint"], setup: existingRun(then: { newest in
                try Scratch.dataset(at: dataFile(of: newest), seed: 8)
            })),
            Case(name: "resume past the run's length", mentions: ["at step 20", "past this job's 10 steps", "run.steps"],
                 setup: existingRun(edit: { $0.replacingOccurrences(of: "steps = 20", with: "steps = 10") })),
            Case(name: "checkpoint with a tampered step", mentions: ["checksum mismatch", "delete or move aside", "step-00000010.h5"], setup: existingRun(then: { newest in
                try python("import h5py, numpy, sys\nwith h5py.File(sys.argv[1], 'r+') as f: f.attrs['step'] = numpy.int64(7)", newest)
            })),
            Case(name: "checkpoint with a tampered epoch step", mentions: ["checksum mismatch"], setup: existingRun(then: { newest in
                try python("import h5py, numpy, sys\nwith h5py.File(sys.argv[1], 'r+') as f: f.attrs['epoch_step'] = numpy.int64(-5)", newest)
            })),
        ]

        /// Every file under `folder` with its bytes.
        static func snapshot(_ folder: String) -> [String: Data] {
            var files: [String: Data] = [:]
            guard let walker = FileManager.default.enumerator(atPath: folder) else { return files }
            for case let path as String in walker {
                if let data = FileManager.default.contents(atPath: "\(folder)/\(path)") { files[path] = data }
            }
            return files
        }

        @Test func theCorpusHasAtLeastThirtyCases() {
            #expect(Self.cases.count >= 30)
            #expect(Set(Self.cases.map(\.name)).count == Self.cases.count)
        }

        @Test(arguments: cases)
        func exitsTwoWithOneLineAndDamagesNothing(_ c: Case) throws {
            let dir = try Scratch.folder("corpus")
            var args = try c.setup(dir)
            // The "fresh run" case drops --resume to hit the clobber guard.
            if c.name == "fresh run into a directory with checkpoints" { args.removeAll { $0 == "--resume" } }
            let before = Self.snapshot(dir + "/run")
            let launch = try Launcher.run(ranks: 2, args, timeout: 30)
            #expect(!launch.timedOut, "hung")
            #expect(launch.exitCode == 2, "exit \(launch.exitCode): \(launch.stderr)")
            #expect(launch.lockstepErrors.count == 1, "one line for the whole job: \(launch.stderr)")
            let line = launch.lockstepErrors.first ?? ""
            for text in c.mentions { #expect(line.contains(text), "\(line) does not mention \(text)") }
            #expect(launch.seconds < 30)
            // Nothing written or changed: a fresh run left no files, an existing one is untouched.
            #expect(Self.snapshot(dir + "/run") == before, "the run directory changed")
        }
    }
}
