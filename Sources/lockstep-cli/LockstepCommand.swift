// The `lockstep` executable: subcommands over the Lockstep library, and the one place that maps
// errors to exit codes (0 done, 1 runtime failure, 2 bad usage/config/input).

import ArgumentParser
import Lockstep
#if canImport(Glibc)
import Glibc
#endif

@main
struct LockstepCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "lockstep",
        abstract: "Synchronous data-parallel training over MPI, with HDF5 data and checkpoints.",
        discussion: "Run under mpirun (or srun) for several ranks; a plain run is a 1-rank job. Exit codes: 0 done, 1 runtime failure, 2 bad usage, config or input.",
        subcommands: [Train.self, Eval.self, Export.self, Import.self, Inspect.self, Plot.self, Bench.self])

    static func main() {
        do {
            var command = try parseAsRoot()
            try command.run()
        } catch let error as LockstepError {
            Console.error(error.message)
            Glibc.exit(error.exitCode)
        } catch {
            let code = exitCode(for: error)
            if code == .success {
                Console.info(fullMessage(for: error))
                Glibc.exit(0)
            }
            // Under mpirun every rank parses the same arguments: let one rank say what is wrong.
            if launcherRank() == 0 { Console.error(fullMessage(for: error)) }
            Glibc.exit(ExitStatus.usage)
        }
    }

    /// The rank the launcher gave this process, before MPI is initialised (0 when not launched).
    static func launcherRank() -> Int {
        for name in ["OMPI_COMM_WORLD_RANK", "PMIX_RANK", "PMI_RANK", "SLURM_PROCID"] {
            if let value = getenv(name), let rank = Int(String(cString: value)) { return rank }
        }
        return 0
    }
}
