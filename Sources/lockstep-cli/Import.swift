// `lockstep import`: writes datasets in other formats into Lockstep's HDF5 layout.

import ArgumentParser
import Lockstep
#if canImport(Glibc)
import Glibc
#endif

struct Import: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Convert a dataset into Lockstep's HDF5 layout (/train/x, /train/y, /test/x, /test/y).",
        subcommands: [FashionMNIST.self, IDX.self, CIFAR10.self, CIFAR100.self])

    struct FashionMNIST: ParsableCommand {
        static let configuration = CommandConfiguration(
            commandName: "fashion-mnist",
            abstract: "Import Fashion-MNIST from Debian's dataset-fashion-mnist (gzipped IDX files).")

        @Option(help: "Folder with the four IDX files.")
        var from = "/usr/share/datasets/fashion-mnist"

        @Option(name: .shortAndLong, help: "The HDF5 file to write.")
        var output = "data/fashion-mnist.h5"

        func run() throws {
            try IDX.convert(
                trainImages: from + "/train-images-idx3-ubyte.gz", trainLabels: from + "/train-labels-idx1-ubyte.gz",
                testImages: from + "/t10k-images-idx3-ubyte.gz", testLabels: from + "/t10k-labels-idx1-ubyte.gz",
                output: output)
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

        func run() throws {
            try Self.convert(trainImages: trainImages, trainLabels: trainLabels, testImages: testImages, testLabels: testLabels, output: output)
        }

        /// Writes to a temporary name and renames, so a failed import leaves no half-written file
        /// (IDXImporter.importFiles).
        static func convert(trainImages: String, trainLabels: String, testImages: String, testLabels: String, output: String) throws {
            try Import.onRankZero {
                let (train, test) = try IDXImporter.importFiles(trainImages: trainImages, trainLabels: trainLabels,
                                                                testImages: testImages, testLabels: testLabels, output: output)
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

        func run() throws {
            try Import.onRankZero { try Import.cifar(input, .cifar10, output) }
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

        func validate() throws {
            guard CIFARImporter.Labels(rawValue: labels) != nil else { throw ValidationError("--labels must be fine or coarse") }
        }

        func run() throws {
            let labels = CIFARImporter.Labels(rawValue: labels)!
            let output = output ?? (labels == .fine ? "data/cifar100.h5" : "data/cifar100-coarse.h5")
            try Import.onRankZero { try Import.cifar(input, .cifar100(labels), output) }
        }
    }

    static func cifar(_ input: String, _ format: CIFARImporter.Format, _ output: String) throws {
        let (train, test) = try CIFARImporter.importArchive(input, format: format, output: output)
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
