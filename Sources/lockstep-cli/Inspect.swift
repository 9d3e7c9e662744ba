// `lockstep inspect FILE`: what an HDF5 dataset or checkpoint holds, without h5dump.

import ArgumentParser
import Lockstep

struct Inspect: ParsableCommand {
    static let configuration = CommandConfiguration(abstract: "List the datasets (and checkpoint attributes) of an HDF5 file.")

    @Argument(help: "An HDF5 dataset or checkpoint file.")
    var file: String

    func run() throws {
        let h5 = try HDF5File.open(file)
        for path in h5.datasetPaths() {
            let info = try h5.info(path)
            Console.info("\(path)  \(info.dtypeName) \(info.shape)")
        }
        if h5.hasAttribute("format_version") {
            for name in ["format_version", "step", "epoch", "epoch_step", "samples_seen", "world_size"] {
                Console.info("@\(name) = \(try h5.int64Attribute(name))")
            }
        }
    }
}
