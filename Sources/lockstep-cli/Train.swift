// `lockstep train JOB`: one training run (see TrainingRun). Collective errors exit with the
// agreed code on every rank after MPI_Finalize; anything else aborts the whole job.
// With LOCKSTEP_EXIT_STATUS_FILE set, rank 0 also writes the code it exits with to that file:
// mpirun's own exit code does not carry it when SIGTERM or SIGINT reached mpirun (mpirun then
// exits 1 however the ranks ended), and slurm/train.sbatch must know a stop was clean (75).

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

    @Option(name: .customLong("unset"), help: ArgumentHelp("Remove a job key before the --set overrides, e.g. --unset optimizer.momentum (repeatable).", valueName: "key"))
    var unsets: [String] = []

    @Flag(help: "Continue from the newest complete checkpoint in the run directory.")
    var resume = false

    @Option(help: ArgumentHelp("Stop with a checkpoint once this many steps are done, as if interrupted.", valueName: "steps"))
    var stopAfter: Int?

    func run() throws {
        var options = TrainOptions(jobPath: job)
        options.overrides = overrides
        options.unsets = unsets
        options.resume = resume
        options.stopAfter = stopAfter
        // Before MPI_Init and the data load: a stop signal during start-up is recorded, not fatal.
        StopSignal.install()
        let comm = Communicator.world
        do {
            let summary = try TrainingRun.execute(options, comm: comm)
            let code = summary.interrupted ? ExitStatus.interrupted : ExitStatus.success
            Self.reportExitStatus(code, comm: comm)
            comm.finalize()
            Glibc.exit(code)
        } catch let failure as CollectiveFailure {
            // Every rank is here. Rank 0 speaks for all; other ranks speak only of their own
            // errors that rank 0 did not share.
            if let local = failure.local {
                if comm.isRoot { Console.error(local.message) }
                else if !failure.rootFailed { Console.error("rank \(comm.rank): \(local.message)") }
            }
            Self.reportExitStatus(failure.exitCode, comm: comm)
            comm.finalize()
            Glibc.exit(failure.exitCode)
        } catch {
            // Only this rank knows: end the job rather than let the others wait.
            // No status file: the launcher's exit code (mpirun's, from the abort) is the one.
            comm.abort("\(error)")
        }
    }

    /// Rank 0 writes `code` and a newline to $LOCKSTEP_EXIT_STATUS_FILE, atomically (a reader sees
    /// no file or the whole code). Before MPI_Finalize, which waits for every rank: a signalled
    /// mpirun SIGKILLs the ranks odls_base_sigkill_timeout (1 s) after its SIGTERM, and the
    /// checkpoint that makes 75 true is complete by now. A failed write only warns: the batch
    /// script then goes by mpirun's exit code.
    static func reportExitStatus(_ code: Int32, comm: Communicator) {
        guard comm.isRoot, let raw = getenv("LOCKSTEP_EXIT_STATUS_FILE"), raw.pointee != 0 else { return }
        let path = String(cString: raw)
        do {
            try writeTextFileAtomically(path, "\(code)\n")
        } catch {
            Console.error("could not write the exit status \(code) to LOCKSTEP_EXIT_STATUS_FILE (\(path)): \(error)")
        }
    }
}
