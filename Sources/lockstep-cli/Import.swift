// `lockstep import`: writes datasets in other formats into Lockstep's HDF5 layout.

import ArgumentParser
import Lockstep
#if canImport(Glibc)
import Glibc
#endif

struct Import: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Convert a dataset into Lockstep's HDF5 layout (/train/x, /train/y, /test/x, /test/y).",
        discussion: """
            Every importer writes contiguous datasets by default (the best layout for data.load = "stream"), \
            or chunks of whole rows with --chunk-rows and gzip with --compression. It writes OUTPUT.tmp and \
            renames it when complete: a failed import leaves no file, and an existing output is untouched.
            """,
        subcommands: [FashionMNIST.self, IDX.self, CIFAR10.self, CIFAR100.self, NPY.self, NPZ.self, CSV.self])

    /// --chunk-rows and --compression, the same on every importer.
    struct Storage: ParsableArguments {
        @Option(help: ArgumentHelp("Store the features in chunks of N whole rows (default: contiguous, or with gzip chunks of about 1 MiB of rows; labels stay contiguous unless gzipped).", valueName: "N"))
        var chunkRows: Int?

        @Option(help: "none or gzip (level 4). gzip needs chunks: without --chunk-rows, chunks of about 1 MiB of rows.")
        var compression = "none"

        func layout() throws -> StorageLayout { try StorageLayout(chunkRows: chunkRows, compression: compression) }
    }

    struct FashionMNIST: ParsableCommand {
        static let configuration = CommandConfiguration(
            commandName: "fashion-mnist",
            abstract: "Import Fashion-MNIST from Debian's dataset-fashion-mnist (gzipped IDX files).")

        @Option(help: "Folder with the four IDX files.")
        var from = "/usr/share/datasets/fashion-mnist"

        @Option(name: .shortAndLong, help: "The HDF5 file to write.")
        var output = "data/fashion-mnist.h5"

        @OptionGroup var storage: Storage

        func run() throws {
            try IDX.convert(
                trainImages: from + "/train-images-idx3-ubyte.gz", trainLabels: from + "/train-labels-idx1-ubyte.gz",
                testImages: from + "/t10k-images-idx3-ubyte.gz", testLabels: from + "/t10k-labels-idx1-ubyte.gz",
                output: output, storage: storage)
        }
    }

    struct IDX: ParsableCommand {
        static let configuration = CommandConfiguration(commandName: "idx", abstract: "Import four IDX files (gzipped or not).")

        @Option var trainImages: String
        @Option var trainLabels: String
        @Option var testImages: String
        @Option var testLabels: String
        @Option(name: .shortAndLong, help: "The HDF5 file to write.")
        var output: String

        @OptionGroup var storage: Storage

        func run() throws {
            try Self.convert(trainImages: trainImages, trainLabels: trainLabels, testImages: testImages, testLabels: testLabels,
                             output: output, storage: storage)
        }

        /// Writes to a temporary name and renames, so a failed import leaves no half-written file
        /// (IDXImporter.importFiles).
        static func convert(trainImages: String, trainLabels: String, testImages: String, testLabels: String, output: String,
                            storage: Storage) throws {
            try Import.onRankZero {
                let layout = try storage.layout()
                let (train, test) = try IDXImporter.importFiles(trainImages: trainImages, trainLabels: trainLabels,
                                                                testImages: testImages, testLabels: testLabels, output: output,
                                                                layout: layout)
                Console.info("wrote \(output): \(train) training and \(test) test samples")
            }
        }
    }

    struct CIFAR10: ParsableCommand {
        static let configuration = CommandConfiguration(
            commandName: "cifar10",
            abstract: "Import CIFAR-10 from the official binary archive, read as it is (no extraction).")

        @Option(help: "The archive cifar-10-binary.tar.gz.")
        var input: String

        @Option(name: .shortAndLong, help: "The HDF5 file to write.")
        var output = "data/cifar10.h5"

        @OptionGroup var storage: Storage

        func run() throws {
            try Import.onRankZero { try Import.cifar(input, .cifar10, output, storage.layout()) }
        }
    }

    struct CIFAR100: ParsableCommand {
        static let configuration = CommandConfiguration(
            commandName: "cifar100",
            abstract: "Import CIFAR-100 from the official binary archive, read as it is (no extraction).")

        @Option(help: "The archive cifar-100-binary.tar.gz.")
        var input: String

        @Option(help: "Which label becomes /train/y and /test/y: fine (100 classes) or coarse (20 superclasses).")
        var labels = "fine"

        @Option(name: .shortAndLong, help: "The HDF5 file to write (default data/cifar100.h5, or data/cifar100-coarse.h5 with --labels coarse).")
        var output: String?

        @OptionGroup var storage: Storage

        func validate() throws {
            guard CIFARImporter.Labels(rawValue: labels) != nil else { throw ValidationError("--labels must be fine or coarse") }
        }

        func run() throws {
            let labels = CIFARImporter.Labels(rawValue: labels)!
            let output = output ?? (labels == .fine ? "data/cifar100.h5" : "data/cifar100-coarse.h5")
            try Import.onRankZero { try Import.cifar(input, .cifar100(labels), output, storage.layout()) }
        }
    }

    struct NPY: ParsableCommand {
        static let configuration = CommandConfiguration(
            commandName: "npy",
            abstract: "Import NumPy .npy files (numpy.save): features and labels, and a test split.",
            discussion: """
                Features (N, ...) of uint8 stay uint8; any other integer or float type is stored as float32. \
                Labels (N,) of any integer type, or whole floats, are stored as int64 and must be ≥ 0. \
                The test split is --test-x with --test-y, or --test-fraction F: the last ⌈F·N⌉ rows, in order.
                """)

        @Option(help: "The features, shape (N, ...).") var x: String
        @Option(help: "The labels, shape (N,).") var y: String
        @Option(help: "Test features.") var testX: String?
        @Option(help: "Test labels.") var testY: String?
        @Option(help: ArgumentHelp("The last ⌈F·N⌉ rows become the test split (instead of --test-x/--test-y).", valueName: "F"))
        var testFraction: String?
        @Option(name: .shortAndLong, help: "The HDF5 file to write.") var output: String
        @OptionGroup var storage: Storage

        func run() throws {
            // Under a launcher, rank 0 alone checks the options too, so a mistake is said once.
            try Import.onRankZero {
                let layout = try storage.layout()
                guard let test = try Import.testSplit(x: testX, y: testY, fraction: testFraction, what: "test .npy files") else {
                    throw LockstepError.usage("no test split: give --test-x and --test-y, or --test-fraction F")
                }
                let counts = try NPYImporter.importFiles(x: x, y: y, test: test, output: output, layout: layout)
                Import.report(output, counts)
            }
        }
    }

    struct NPZ: ParsableCommand {
        static let configuration = CommandConfiguration(
            commandName: "npz",
            abstract: "Import a NumPy .npz archive (numpy.savez or numpy.savez_compressed), streamed member by member.",
            discussion: """
                Without --x/--y it takes x_train and y_train (with x_test and y_test if present), else x and y. \
                Types as for `lockstep import npy`. The test split is the archive's x_test/y_test, --test-x \
                with --test-y (names in the archive), or --test-fraction F: the last ⌈F·N⌉ rows, in order.
                """)

        @Option(help: "The archive.") var input: String
        @Option(help: "The features' array name (default x_train, else x).") var x: String?
        @Option(help: "The labels' array name (default y_train, else y).") var y: String?
        @Option(help: "The test features' array name (default x_test when present).") var testX: String?
        @Option(help: "The test labels' array name (default y_test when present).") var testY: String?
        @Option(help: ArgumentHelp("The last ⌈F·N⌉ rows become the test split.", valueName: "F"))
        var testFraction: String?
        @Option(name: .shortAndLong, help: "The HDF5 file to write.") var output: String
        @OptionGroup var storage: Storage

        func run() throws {
            try Import.onRankZero {
                let layout = try storage.layout()
                let test = try Import.testSplit(x: testX, y: testY, fraction: testFraction, what: "test arrays")
                let counts = try NPYImporter.importArchive(input, x: x, y: y, test: test, output: output, layout: layout)
                Import.report(output, counts)
            }
        }
    }

    struct CSV: ParsableCommand {
        static let configuration = CommandConfiguration(
            commandName: "csv",
            abstract: "Import a CSV file (one row per sample), streamed in two passes: any size imports in bounded memory.",
            discussion: """
                One column holds the labels (integers ≥ 0, stored as int64), every other column a feature \
                (float32, or uint8 with --features uint8). Columns are counted from 0. Pass 1 checks every \
                row, so a ragged row, a cell that is not a number or a bad label is reported (with its line) \
                before any output exists. The test split is --test-input FILE or --test-fraction F: the last \
                ⌈F·N⌉ rows, in order.
                """)

        @Option(help: "The CSV file.") var input: String
        @Option(help: "A CSV file with the same columns, for the test split.") var testInput: String?
        @Option(help: ArgumentHelp("The last ⌈F·N⌉ rows become the test split.", valueName: "F"))
        var testFraction: String?
        @Option(help: ArgumentHelp("The label column: a header name or an index from 0 (negative from the end: --label-column=-1). Default: the column named label if there is a header, else the last.", valueName: "NAME|INDEX"))
        var labelColumn: String?
        @Option(help: "Whether the first line is a header: auto (when one of its cells is not a number), yes or no.")
        var header = "auto"
        @Option(help: ArgumentHelp("Each sample's shape, e.g. 1,28,28 (its product must be the number of feature columns).", valueName: "D1,D2,..."))
        var shape: String?
        @Option(help: "float32, or uint8 (cells must be integers 0 to 255).") var features = "float32"
        @Option(help: "The field delimiter: one character, or tab.") var delimiter = ","
        @Option(name: .shortAndLong, help: "The HDF5 file to write.") var output: String
        @OptionGroup var storage: Storage

        func run() throws {
            try Import.onRankZero {
                let layout = try storage.layout()
                guard let header = CSVImporter.Header(rawValue: header) else { throw LockstepError.usage("--header must be auto, yes or no, got \(header)") }
                guard let features = CSVImporter.Features(rawValue: features) else {
                    throw LockstepError.usage("--features must be float32 or uint8, got \(features)")
                }
                let d = delimiter == "tab" || delimiter == "\\t" ? "\t" : delimiter
                guard d.utf8.count == 1, let byte = d.utf8.first, byte != UInt8(ascii: "\""), byte != 10, byte != 13 else {
                    throw LockstepError.usage("--delimiter must be one ASCII character other than a quote or newline (or tab), got \(delimiter)")
                }
                var sampleShape: [Int]?
                if let shape {
                    let dims = shape.split(separator: ",", omittingEmptySubsequences: false).map { Int($0.filter { $0 != " " }) }
                    guard !dims.isEmpty, dims.allSatisfy({ ($0 ?? 0) > 0 }) else {
                        throw LockstepError.usage("--shape must be positive integers separated by commas, such as 1,28,28, got \(shape)")
                    }
                    sampleShape = dims.map { $0! }
                }
                let test: CSVImporter.TestSplit
                switch (testInput, testFraction) {
                case (let file?, nil): test = .file(file)
                case (nil, let f?): test = .fraction(try TestFraction(f))
                case (nil, nil): throw LockstepError.usage("no test split: give --test-input FILE or --test-fraction F")
                default: throw LockstepError.usage("give --test-input or --test-fraction, not both")
                }
                let options = CSVImporter.Options(labelColumn: labelColumn, header: header, shape: sampleShape, delimiter: byte, features: features)
                let counts = try CSVImporter.importFile(input, test: test, options: options, output: output, layout: layout)
                Import.report(output, counts)
            }
        }
    }

    /// The test split from --test-x/--test-y or --test-fraction (nil when none is given).
    static func testSplit(x: String?, y: String?, fraction: String?, what: String) throws -> NPYImporter.TestSplit? {
        switch (x, y, fraction) {
        case (nil, nil, nil): return nil
        case let (x?, y?, nil): return .arrays(x: x, y: y)
        case (nil, nil, let f?): return .fraction(try TestFraction(f))
        case (_, _, _?): throw LockstepError.usage("give --test-fraction or --test-x and --test-y, not both")
        default: throw LockstepError.usage("give both --test-x and --test-y (the \(what)), or neither")
        }
    }

    static func report(_ output: String, _ counts: (train: Int, test: Int)) {
        Console.info("wrote \(output): \(counts.train) training and \(counts.test) test samples")
    }

    static func cifar(_ input: String, _ format: CIFARImporter.Format, _ output: String, _ layout: StorageLayout) throws {
        let (train, test) = try CIFARImporter.importArchive(input, format: format, output: output, layout: layout)
        Console.info("wrote \(output): \(train) training and \(test) test samples of \(format.name)")
    }

    /// Runs an import. Under a launcher with several ranks, rank 0 alone imports and speaks for
    /// all (two writers of one file would race), and every rank exits alike.
    static func onRankZero(_ work: () throws -> Void) throws {
        guard launcherSize() > 1 else { return try work() }
        let comm = Communicator.world
        do {
            try comm.agree { if comm.isRoot { try work() } }
            comm.finalize()
        } catch let failure as CollectiveFailure {
            if let local = failure.local, comm.isRoot { Console.error(local.message) }
            comm.finalize()
            Glibc.exit(failure.exitCode)
        }
    }

    /// The number of ranks the launcher started (1 when not launched by one).
    static func launcherSize() -> Int {
        for name in ["OMPI_COMM_WORLD_SIZE", "PMI_SIZE", "SLURM_STEP_NUM_TASKS"] {
            if let value = getenv(name), let size = Int(String(cString: value)) { return size }
        }
        return 1
    }
}
