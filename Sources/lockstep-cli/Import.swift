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

        /// Writes to a temporary name and renames, so a failed import leaves no half-written file.
        static func convert(trainImages: String, trainLabels: String, testImages: String, testLabels: String, output: String) throws {
            if let slash = output.lastIndex(of: "/") { try makeDirectories(String(output[..<slash])) }
            let temporary = output + ".tmp"
            do {
                let file = try HDF5File.create(temporary)
                let train = try IDXImporter.importSplit(images: trainImages, labels: trainLabels, split: "train", into: file)
                let test = try IDXImporter.importSplit(images: testImages, labels: testLabels, split: "test", into: file)
                file.close()
                guard rename(temporary, output) == 0 else { throw LockstepError.runtime("cannot rename \(temporary) to \(output)") }
                Console.info("wrote \(output): \(train) training and \(test) test samples")
            } catch {
                unlink(temporary)
                throw error
            }
        }
    }
}
