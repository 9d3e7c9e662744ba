// A bad command line under a real mpirun: argument-parser errors exit 2 before MPI starts.
// The job, data and checkpoint mistakes are in BadInputCorpusTests.swift.

import Foundation
import Testing

extension MultiRank {
    @Suite struct BadInput {
        @Test func badCommandLineExitsTwo() throws {
            let launch = try Launcher.run(ranks: 2, ["train"], timeout: 60)
            #expect(launch.exitCode == 2)
            #expect(launch.stderr.contains("Missing expected argument"))
        }
    }
}
