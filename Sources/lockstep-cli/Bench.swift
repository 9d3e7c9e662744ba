// `lockstep bench`: what a user compares us on, measured in one run on this launch's ranks.
//   1. the gradient exchange through Lockstep vs a bare MPI_Allreduce loop on the same bytes;
//   2. the step time of a job (default jobs/fashion-mlp.toml): a real training run into a
//      temporary folder, timed between the middle and the last logged step (no evaluation or
//      checkpoint in that window);
//   3. on 2+ ranks, how much of the exchange the bucketed exchange hides behind backward
//      (`Trainer.measureOverlap`: barrier-aligned passes, so a slow rank's lag is not counted).
// Run it under mpirun for several ranks; benchmarks/ compares the numbers with PyTorch.

import ArgumentParser
import Foundation
import Lockstep

struct Bench: ParsableCommand {
    static let configuration = CommandConfiguration(abstract: "Measure the gradient exchange, its overlap with backward, and the step time on this launch's ranks.")

    @Option(help: "The job whose model and batch are measured.")
    var job = "jobs/fashion-mlp.toml"

    @Option(help: "Training steps to run; the second half is timed.")
    var steps = 400

    @Option(help: ArgumentHelp("Override a job key (repeatable).", valueName: "key=value"))
    var set: [String] = []

    @Option(help: ArgumentHelp("Remove a job key before the --set overrides (repeatable).", valueName: "key"))
    var unset: [String] = []

    @Option(help: "Passes of each kind (compute only, one allreduce, buckets) in the overlap measurement (2+ ranks).")
    var passes = 100

    @Option(name: .customLong("bucket-mb"), help: "Bucket size for the overlap measurement when the job sets no exchange.bucket_mb.")
    var bucketMB = 0.05

    /// The largest counts the bench takes: far past any useful measurement, and small enough
    /// that every count derived from them (run.eval_every = 100 × steps/2, 3 × passes timed
    /// passes) is exact in an Int.
    static let maxSteps = 1_000_000
    static let maxPasses = 100_000

    func validate() throws {
        guard steps >= 2 && steps <= Self.maxSteps else {
            throw ValidationError("--steps must be from 2 (the second half is timed) to \(Self.maxSteps), got \(steps): use e.g. --steps 400")
        }
        guard passes >= 0 && passes <= Self.maxPasses else {
            throw ValidationError("--passes must be from 0 (no overlap measurement) to \(Self.maxPasses), got \(passes): use e.g. --passes 100")
        }
        guard bucketMB > 0 && bucketMB <= 1e6 else { throw ValidationError("--bucket-mb must be above 0 and at most 1e6") }
    }

    func run() throws {
        // validate() bounds steps, so these products are exact (checked all the same: no trap),
        // before MPI starts.
        let half = max(1, steps / 2)
        let (timed, timedOverflow) = half.multipliedReportingOverflow(by: 2)
        let (never, neverOverflow) = half.multipliedReportingOverflow(by: 100)
        guard !timedOverflow && !neverOverflow else { throw ValidationError("--steps must be at most \(Self.maxSteps), got \(steps)") }
        let comm = Communicator.world
        let say: (String) -> Void = { if comm.isRoot { Console.info($0) } }
        if comm.size > 1 && ProcessInfo.processInfo.environment["OPENBLAS_NUM_THREADS"] == nil { Gemm.setThreads(1) }
        do {
            let out = "/tmp/lockstep-bench-\(getpid())"
            var options = TrainOptions(jobPath: job)
            options.overrides = set + ["run.out=\"\(out)\"", "run.steps=\(timed)", "run.log_every=\(half)",
                                       "run.eval_every=\(never)", "run.checkpoint_every=\(never)"]
            options.unsets = unset
            options.overlapProbePasses = comm.size > 1 && passes > 0 ? passes : nil
            options.probeBucketMB = bucketMB
            // Silence the training run's own progress lines: only the bench speaks.
            let summary = try Console.quietly { try TrainingRun.execute(options, comm: comm) }
            let job = try Job.load(self.job, overrides: set, unsets: unset)
            // The second half's mean step time and data wait (each metrics line's waits are means
            // over the steps since the line before).
            var measured = [0.0, 0.0]
            if comm.isRoot {
                let lines = try String(contentsOfFile: out + "/metrics.jsonl", encoding: .utf8).split(separator: "\n")
                let logged = lines.compactMap { try? JSONSerialization.jsonObject(with: Data($0.utf8)) as? [String: Any] }
                    .filter { $0["time"] != nil }
                let at = { (step: Int) in logged.first { $0["step"] as? Int == step } }
                if let middle = at(half), let last = at(timed) {
                    measured = [((last["time"] as? Double ?? 0) - (middle["time"] as? Double ?? 0)) / Double(half),
                                last["data_wait"] as? Double ?? 0]
                }
                try? FileManager.default.removeItem(atPath: out)
            }
            comm.broadcast(&measured)
            let (stepSeconds, dataWait) = (measured[0], measured[1])
            // What the trainer exchanges each step: the gradients plus the loss and stop slots.
            let parameters = summary.parameters
            let floats = ExchangeLayout(parameters: parameters).count
            let exchange = ExchangeBenchmark.run(comm: comm, count: floats)
            let mb = Double(exchange.bytes) / 1e6
            say("lockstep bench: \(comm.size) rank(s), \(Communicator.libraryVersion)")
            if comm.size == 1 {
                say("exchange: none on 1 rank (run under mpirun -n 2 or more)")
            } else {
                say("exchange: \(floats) floats (\(format2(mb)) MB): lockstep \(format3(exchange.lockstep * 1e3)) ms/call (\(format2(mb / 1e3 / exchange.lockstep)) GB/s), raw MPI_Allreduce \(format3(exchange.raw * 1e3)) ms/call: ratio \(format2(exchange.ratio)) (target ≥ 0.95)")
            }
            if let o = summary.overlap {
                let ms = { (x: Double, iqr: Double) in "\(format3(x * 1e3)) (IQR \(format3(iqr * 1e3)))" }
                let hidden = o.hiddenFraction.map { "\(format2(100 * $0)) % hidden (target ≥ 50)" } ?? "the single exchange cost nothing measurable"
                say("overlap: \(o.bucketCount) buckets of ≥ \(job.bucketMegabytes > 0 ? job.bucketMegabytes : bucketMB) MB, \(o.passes) passes each, median ms/pass: compute \(ms(o.compute, o.computeIQR)), one allreduce \(ms(o.single, o.singleIQR)), buckets \(ms(o.buckets, o.bucketsIQR)): \(hidden)")
            } else if comm.size > 1 && passes > 0 {
                say("overlap: not measured (a full batch or L-BFGS has no bucketed exchange)")
            }
            // A full batch (batch.global = "full") is only resolved inside the run: name it as such.
            let batch = job.batch.full ? "the full training set" : "global batch \(job.batch.global) (\(job.batch.global / comm.size) per rank)"
            let rate = job.batch.full ? "" : ", \(samplesPerSecond(job.batch.global, stepSeconds)) samples/s"
            let share = comm.size > 1 ? "; the exchange is \(format2(100 * exchange.lockstep / stepSeconds)) % of it" : ""
            let data = job.batch.full ? "" : "; waiting for data \(format3(dataWait * 1e3)) ms/step"
            say("step: \(self.job), \(batch): \(format3(stepSeconds * 1e3)) ms/step\(rate)\(share)\(data)")
            say("bench: \(summary.steps) training steps in \(format2(summary.seconds)) s")
            comm.finalize()
        } catch let failure as CollectiveFailure {
            if let local = failure.local, comm.isRoot { Console.error(local.message) }
            comm.finalize()
            Glibc.exit(failure.exitCode)
        }
    }

    /// `samples / seconds` rounded down, or "unmeasured" when no step time was measured (0 s:
    /// the metrics had no timed window), never a trap on Int(inf).
    private func samplesPerSecond(_ samples: Int, _ seconds: Double) -> String {
        let rate = Double(samples) / seconds
        guard seconds > 0, rate.isFinite, rate < 9e18 else { return "unmeasured" }
        return String(Int(rate))
    }

    private func format2(_ x: Double) -> String { String(format: "%.2f", x) }
    private func format3(_ x: Double) -> String { String(format: "%.3f", x) }
}
