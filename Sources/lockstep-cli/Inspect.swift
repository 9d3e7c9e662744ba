// `lockstep inspect FILE`: what an HDF5 dataset or checkpoint holds, without h5dump.

import ArgumentParser
import Lockstep

struct Inspect: ParsableCommand {
    static let configuration = CommandConfiguration(abstract: "List the datasets (and checkpoint attributes) of an HDF5 file.")

    @Argument(help: "An HDF5 dataset or checkpoint file.")
    var file: String

    func run() throws {
        let h5 = try HDF5File.open(file)
        list(h5, "/")
        if h5.hasAttribute("format_version") {
            for name in ["format_version", "step", "epoch", "epoch_step", "samples_seen", "world_size"] {
                Console.info("@\(name) = \(try h5.int64Attribute(name))")
            }
        }
    }

    private func list(_ h5: HDF5File, _ group: String) {
        for member in h5.members(of: group) {
            let path = (group == "/" ? "" : group) + "/" + member
            if let info = try? h5.info(path) {
                Console.info("\(path)  \(info.dtypeName) \(info.shape)")
            } else {
                list(h5, path)
            }
        }
    }
}
