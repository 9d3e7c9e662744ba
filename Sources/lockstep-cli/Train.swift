// `lockstep train JOB`: one training run (see TrainingRun). Collective errors exit with the
// agreed code on every rank after MPI_Finalize; anything else aborts the whole job.

import ArgumentParser
import Lockstep
#if canImport(Glibc)
import Glibc
#endif

struct Train: ParsableCommand {
    static let configuration = CommandConfiguration(abstract: "Train the model a job file describes.")

    @Argument(help: "The job file (TOML), e.g. jobs/fashion-mlp.toml.")
    var job: String

    @Option(name: .customLong("set"), help: ArgumentHelp("Override a job key, e.g. --set run.steps=20 (repeatable).", valueName: "key=value"))
    var overrides: [String] = []

    @Flag(help: "Continue from the newest complete checkpoint in the run directory.")
    var resume = false

    @Option(help: ArgumentHelp("Stop with a checkpoint once this many steps are done, as if interrupted.", valueName: "steps"))
    var stopAfter: Int?

    func run() throws {
        var options = TrainOptions(jobPath: job)
        options.overrides = overrides
        options.resume = resume
        options.stopAfter = stopAfter
        // Before MPI_Init and the data load: a stop signal during start-up is recorded, not fatal.
        StopSignal.install()
        let comm = Communicator.world
        do {
            let summary = try TrainingRun.execute(options, comm: comm)
            comm.finalize()
            Glibc.exit(summary.interrupted ? ExitStatus.interrupted : ExitStatus.success)
        } catch let failure as CollectiveFailure {
            // Every rank is here. Rank 0 speaks for all; other ranks speak only of their own
            // errors that rank 0 did not share.
            if let local = failure.local {
                if comm.isRoot { Console.error(local.message) }
                else if !failure.rootFailed { Console.error("rank \(comm.rank): \(local.message)") }
            }
            comm.finalize()
            Glibc.exit(failure.exitCode)
        } catch {
            // Only this rank knows: end the job rather than let the others wait.
            comm.abort("\(error)")
        }
    }
}
