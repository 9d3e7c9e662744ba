// `lockstep import`: writes datasets in other formats into Lockstep's HDF5 layout.

import ArgumentParser
import Lockstep
#if canImport(Glibc)
import Glibc
#endif

struct Import: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Convert a dataset into Lockstep's HDF5 layout (/train/x, /train/y, /test/x, /test/y).",
        subcommands: [FashionMNIST.self, IDX.self])

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
        /// (IDXImporter.importFiles). Under a launcher with several ranks, rank 0 alone imports
        /// and speaks for all (two writers of one file would race), and every rank exits alike.
        static func convert(trainImages: String, trainLabels: String, testImages: String, testLabels: String, output: String) throws {
            let work = {
                let (train, test) = try IDXImporter.importFiles(trainImages: trainImages, trainLabels: trainLabels,
                                                                testImages: testImages, testLabels: testLabels, output: output)
                Console.info("wrote \(output): \(train) training and \(test) test samples")
            }
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
}
