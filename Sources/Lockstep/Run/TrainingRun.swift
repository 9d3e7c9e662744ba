// `lockstep train`: job file → datasets, network, optimizer, run directory, resume, step loop,
// logging, evaluation and checkpoints. Every step that can fail on some ranks only runs inside
// `comm.agree`, so a failure reaches every rank and no rank waits on a collective alone.

#if canImport(Glibc)
import Glibc
#endif

public struct TrainOptions: Sendable {
    public var jobPath: String
    public var overrides: [String] = []
    /// `--unset key`: keys removed from the job before the overrides apply.
    public var unsets: [String] = []
    /// Continue from the newest complete checkpoint in the run directory (if any).
    public var resume = false
    /// Stop (with a checkpoint) once this many steps are done, as if interrupted.
    public var stopAfter: Int?
    /// `lockstep bench`: before training, measure the overlap (`Trainer.measureOverlap`) with
    /// this many passes of each kind, in buckets of the job's size or else `probeBucketMB`.
    public var overlapProbePasses: Int?
    public var probeBucketMB = 0.05
    public init(jobPath: String) { self.jobPath = jobPath }
}

public struct TrainSummary: Sendable {
    public var steps: Int
    public var testAccuracy: Double?
    public var seconds: Double
    public var stoppedEarly: Bool
    /// Stopped by SIGUSR1/SIGTERM with a checkpoint (exit `ExitStatus.interrupted`).
    public var interrupted: Bool
    /// Trainable parameters of the model (what the exchange carries, besides its extra slots).
    public var parameters = 0
    /// The overlap probe's result (`TrainOptions.overlapProbePasses`), if it ran.
    public var overlap: OverlapMeasurement?
}

public enum TrainingRun {
    public static func execute(_ options: TrainOptions, comm: Communicator) throws -> TrainSummary {
        // SIGUSR1/SIGTERM (SLURM's --signal, scancel, a time limit) may come while the data is
        // still loading: record it from the start (`lockstep train` installs it before MPI_Init).
        StopSignal.install()
        let say: (String) -> Void = { if comm.isRoot { Console.info($0) } }
        if comm.size > 1 && getenv("OPENBLAS_NUM_THREADS") == nil {
            // Ranks already fill the cores; BLAS threads on top would oversubscribe them.
            Gemm.setThreads(1)
        }

        // 1. Job and data: every rank reads them, so every rank validates them.
        let (job, train, test, validation, network) = try comm.agree { () -> (Job, any DataSource, any DataSource, (any DataSource)?, Network) in
            var job = try Job.load(options.jobPath, overrides: options.overrides, unsets: options.unsets)
            let file = try HDF5File.open(job.data.file, fileLocking: job.data.fileLocking, lockingKey: "data.file_locking")
            for (key, path) in [("train_x", job.data.trainX), ("train_y", job.data.trainY), ("test_x", job.data.testX), ("test_y", job.data.testY)]
            where !file.exists(path) {
                throw LockstepError.usage("data.\(key) = \"\(path)\": \(job.data.file) has no such dataset; set data.\(key) to one of \(file.datasetPaths().joined(separator: ", "))")
            }
            let classes = job.layers.last!.units
            var train = try job.data.open(file, x: job.data.trainX, y: job.data.trainY, classes: classes, name: "train")
            let test = try job.data.open(file, x: job.data.testX, y: job.data.testY, classes: classes, name: "test")
            guard test.sampleShape == train.sampleShape else {
                throw LockstepError.usage("\(job.data.file): test samples have shape \(test.sampleShape) but training samples \(train.sampleShape)")
            }
            var validation: (any DataSource)?
            (train, validation) = try openValidation(job.data, file: file, train: train, classes: classes)
            job.resolve(trainSamples: train.count)
            try job.validate(worldSize: comm.size, trainSamples: train.count)
            try job.validate(sampleShape: train.sampleShape)
            if let steps = options.stopAfter, steps < 1 {
                throw LockstepError.usage("--stop-after must be at least 1")
            }
            // The model is checked against the sample shape here, before anything is written.
            // Its gradient buffer's extra slots travel in the same allreduce: the loss, the stop
            // votes, and for L-BFGS an evaluation tag that catches ranks whose line searches diverged.
            let network = try Network(inputShape: train.sampleShape, layers: job.layers,
                                      extraGradientSlots: ExchangeLayout.slotsAfterGradient(lbfgs: job.optimizer.name == .lbfgs),
                                      communicator: comm)
            // Activations are sized for the largest pass: a micro-batch, or the rank's whole share.
            let rows = Trainer.passRows(largestBatch: try job.largestBatch(trainSamples: train.count), ranks: comm.size,
                                        groupsPerRank: job.gradientGroups?.groupsPerRank ?? 1, microBatch: job.batch.micro, fullBatch: job.batch.full)
            try MemoryBudget.require(count: network.activationFloatsPerSample.flatMap { MemoryBudget.product([$0, rows]) },
                                     elementSize: MemoryLayout<Float>.size,
                                     for: "the activations of \(rows) samples per rank", fix: "use a smaller batch.global, batch.micro, or fewer units")
            return (job, train, test, validation, network)
        }
        let evaluated = [train, test] + (validation.map { [$0] } ?? [])
        // Sources that need every rank for it take their features now (the node-shared copy), and
        // float features not checked on opening are checked, a slice per rank (one collective).
        for split in evaluated { try comm.agree { try split.attach(comm: comm) } }
        try checkFeatures(evaluated, comm: comm)
        let stats = job.data.normalization == .standardize ? train.statistics() : nil
        for split in evaluated { split.normalize(job.data.normalization, stats: stats) }
        // What data.load = "node" allocated: each node's first rank holds its node's copy (the
        // same job on every rank, so every rank takes this collective or none does).
        var shared: [Int64] = [0, 0]
        if job.data.load == .node {
            shared = [Int64(evaluated.map(\.nodeSharedBytes).reduce(0, +)), train.nodeSharedBytes > 0 ? 1 : 0]
            comm.allreduce(&shared, .sum)
        }

        // 2. Run directory (rank 0's filesystem is the one that matters).
        let checkpointDir = job.run.out + "/checkpoints"
        // Locked before anything in it is read or written, for as long as this run lives.
        let runLock = try comm.agree { () -> RunDirectoryLock? in
            guard comm.isRoot else { return nil }
            try makeDirectories(job.run.out)
            if let resolved = realpath(job.run.out, nil) {
                defer { free(resolved) }
                guard String(cString: resolved) != "/" else {
                    throw LockstepError.usage("run.out = \"\(job.run.out)\" is the root folder: a run writes config.toml, metrics.jsonl and checkpoints/ there; choose a run directory such as runs/\(job.run.name)")
                }
            }
            let lock = try RunDirectoryLock(job.run.out)
            if let warning = lock.warning { Console.info(warning) }
            try makeDirectories(checkpointDir)
            if !options.resume && !Checkpoint.list(in: checkpointDir).isEmpty {
                throw LockstepError.usage("\(job.run.out) already has checkpoints: pass --resume to continue that run, or choose another run directory (--set run.out=DIR)")
            }
            return lock
        }
        defer { withExtendedLifetime(runLock) {} }

        // 3. Model and optimizer, identical on every rank by construction.
        network.initialize(seed: job.run.seed)
        // The bench's overlap probe needs buckets even when the job's steps do not use them.
        let checkpointTimer = CheckpointTimer(minutes: job.run.checkpointMinutes, isRoot: comm.isRoot)
        let configuration = try job.trainerConfiguration(for: network, trainSamples: train.count,
                                                         probeBucketMegabytes: options.overlapProbePasses == nil ? nil : options.probeBucketMB,
                                                         checkpointRequested: { checkpointTimer.due() })
        let schedule = configuration.schedule
        let trainer = Trainer(comm: comm, network: network, train: train, configuration: configuration)

        // The bench's probe, on the first batch, before anything could have moved the position.
        let overlap = options.overlapProbePasses.flatMap { trainer.measureOverlap(passes: $0) }

        // 4. Resume: rank 0 reads the newest complete checkpoint and broadcasts it.
        let data = DataIdentity(train: train, test: test, normalization: job.data.normalization, stats: stats)
        let resumedFrom = try resume(options.resume, from: checkpointDir, comm: comm, trainer: trainer, job: job, data: data)
        try checkRanksAgree(network, comm: comm, when: resumedFrom == nil ? "initialisation" : "resume")

        // 5. Resolved config and metrics log.
        let metrics = try comm.agree { () -> MetricsLog in
            if comm.isRoot { try writeTextFileAtomically(job.run.out + "/config.toml", job.resolvedTOML) }
            return try MetricsLog(path: job.run.out + "/metrics.jsonl", isRoot: comm.isRoot, resumeFromStep: resumedFrom?.step,
                                  tensorboard: job.run.tensorboard ? job.run.out + "/tensorboard" : nil)
        }

        let total = try job.totalSteps(trainSamples: train.count)
        let stopAt = min(total, options.stopAfter ?? total)
        // BatchNorm's statistics, on the first line because "local" ones break rank-count invariance.
        let batchNorms = job.batchNormSummary(passesPerStep: trainer.localBatch / trainer.microBatch,
                                              globalLayers: network.all(BatchNorm.self).filter { $0.statistics == .global }.count)
        say("lockstep: \(job.run.name) on \(comm.size) rank(s): \(network.parameterCount) parameters, global batch \(job.batch.global) (\(trainer.localBatch) per rank\(trainer.microBatch < trainer.localBatch ? " in micro-batches of \(trainer.microBatch)" : "")), \(job.gsnr == nil ? "" : "VR-")\(job.optimizer.name.rawValue)\(job.gsnr.map { " (GSNR over \($0.groupsPerRank * comm.size) gradient groups, multiplier on the \($0.apply.rawValue))" } ?? "")\(job.noiseScaleGroups.map { " (noise scale over \($0.groupsPerRank * comm.size) gradient groups)" } ?? ""), \(trainer.stepsPerEpoch) steps/epoch, \(total) steps, lr \(schedule.scaledLR(batch: job.batch.global))\(trainer.overlapsExchange ? ", exchange in \(trainer.bucketCount) buckets overlapped with backward" : "")\(batchNorms.map { "; " + $0 } ?? "")\(job.gsnrGroupsWarning(worldSize: comm.size).map { "; " + $0 } ?? "")")
        if !job.batch.schedule.isConstant {
            // One entry per run of equal batches: "epochs 0–39: 8, epochs 40–79: 32, ...".
            let segments = try job.plan(trainSamples: train.count).segments
            say("batch schedule: " + segments.map { ($0.epochs == 1 ? "epoch \($0.firstEpoch)" : "epochs \($0.firstEpoch)–\($0.lastEpoch)") + ": \($0.batch)" }.joined(separator: ", "))
        }
        if !job.augment.isIdentity || job.labelSmoothing > 0 {
            let augment = [job.augment.cropPadding > 0 ? "random crops (padding \(job.augment.cropPadding))" : nil,
                           job.augment.flip ? "random horizontal flips" : nil].compactMap { $0 }
            let smoothing = job.labelSmoothing > 0 ? ["label smoothing \(job.labelSmoothing) (test loss unsmoothed)"] : []
            say("training: " + (augment + smoothing).joined(separator: ", "))
        }
        if let validation {
            say(job.data.describeValidation(rows: validation.count, fromFile: !(validation is RowWindow)))
        }
        if shared[1] > 0 {
            say("data: one copy per node in MPI shared memory, \(MemoryBudget.describe(Int(shared[0] / shared[1]))) on each of \(shared[1]) node(s) (\(shared[0]) bytes in all windows)")
        }
        if let from = resumedFrom { say("resumed at step \(from.step) (epoch \(from.epoch))") }

        // A stop asked for during start-up: nothing trained, nothing to lose; the batch script
        // requeues on exit 75 as after any stop (one collective, so every rank agrees).
        let stopBeforeStart = comm.allreduce(Int64(StopSignal.received), .max)
        if stopBeforeStart != 0 && trainer.position.step < stopAt {
            say("stopped by \(StopSignal.name(Int32(stopBeforeStart))) before step \(trainer.position.step + 1) (during start-up): nothing to lose; continue with --resume (exit \(ExitStatus.interrupted))")
            return TrainSummary(steps: trainer.position.step, testAccuracy: nil, seconds: 0, stoppedEarly: true,
                                interrupted: true, parameters: network.parameterCount, overlap: overlap)
        }

        // 6. The loop.
        let started = Clock.now()
        var (windowStart, windowStartStep) = (started, trainer.position.step)
        var windowWaits = trainer.waits
        var lastAccuracy: Double?
        var lastValidationAccuracy: Double?
        var interrupted = false
        let watchdog = job.run.stallTimeout > 0 ? StallWatchdog(comm: comm, timeout: job.run.stallTimeout) : nil
        defer { watchdog?.stop() }
        let fault = InjectedFault.fromEnvironment(rank: comm.rank)
        while trainer.position.step < stopAt {
            comm.marks.begin(step: trainer.position.step + 1)
            try fault?.strike(at: trainer.position.step + 1)
            let (loss, lr, skipped): (Double, Double, Bool)
            do {
                (loss, lr, skipped) = try trainer.step()
            } catch let e as LockstepError {
                // The loss is allreduced, so every rank meets this error at the same step.
                throw CollectiveFailure(local: e, rootFailed: true, exitCode: e.exitCode)
            }
            let p = trainer.position
            if skipped {
                metrics.log(["step": p.step, "epoch": p.epoch, "measure": "skipped", "reason": "nonfinite", "skipped_total": trainer.skippedSteps])
                say("step \(p.step) skipped: non-finite loss (\(loss)); parameters unchanged (\(trainer.skippedSteps) skipped so far)")
            }
            if p.step % job.run.logEvery == 0 || p.step == 1 || p.step == stopAt || trainer.stopAgreed {
                let now = Clock.now()
                let steps = Double(max(p.step - windowStartStep, 1))
                var waitsPerStep = StepWaits()
                waitsPerStep.exchange = (trainer.waits.exchange - windowWaits.exchange) / steps
                waitsPerStep.data = (trainer.waits.data - windowWaits.data) / steps
                metrics.log(stepFields(trainer, loss: loss, lr: lr, seconds: now - started, waitsPerStep: waitsPerStep))
                windowWaits = trainer.waits
                let rate = Double(job.batch.global * (p.step - windowStartStep)) / max(now - windowStart, 1e-9)
                say("step \(p.step)/\(total) epoch \(p.epoch) loss \(format(loss, 4)) lr \(format(lr, 5)) (\(Int(rate)) samples/s)")
                (windowStart, windowStartStep) = (now, p.step)
            }
            let epochEnd = trainer.atEpochEnd
            let isLast = p.step == total
            if isLast || (job.run.evalEvery > 0 ? p.step % job.run.evalEvery == 0 : epochEnd) {
                let result = trainer.evaluate(test)
                lastAccuracy = result.accuracy
                metrics.log(["step": p.step, "epoch": p.epoch, "split": "test", "accuracy": result.accuracy, "loss": result.loss])
                var line = "eval step \(p.step) epoch \(p.epoch): test accuracy \(format(result.accuracy * 100, 2))% loss \(format(result.loss, 4))"
                if let validation {
                    let held = trainer.evaluate(validation)
                    lastValidationAccuracy = held.accuracy
                    metrics.log(["step": p.step, "epoch": p.epoch, "split": "validation", "accuracy": held.accuracy, "loss": held.loss])
                    line += "; validation accuracy \(format(held.accuracy * 100, 2))% loss \(format(held.loss, 4))"
                }
                if job.run.evalTrain {
                    let onTrain = trainer.evaluate(train)
                    metrics.log(["step": p.step, "epoch": p.epoch, "split": "train", "accuracy": onTrain.accuracy, "loss": onTrain.loss])
                    line += "; train accuracy \(format(onTrain.accuracy * 100, 2))% loss \(format(onTrain.loss, 4))"
                }
                say(line)
            }
            if epochEnd && job.run.fullGradNormEvery > 0 && (p.epoch + 1) % job.run.fullGradNormEvery == 0 {
                let full = trainer.fullGradient()
                metrics.log(["step": p.step, "epoch": p.epoch, "measure": "full_gradient", "full_grad_norm": full.norm,
                             "full_loss": full.loss, "samples": p.samplesSeen])
                say("full gradient after epoch \(p.epoch): norm \(format(full.norm, 5)), training loss \(format(full.loss, 4)), \(p.samplesSeen) samples processed")
            }
            if p.step == stopAt || trainer.stopAgreed || trainer.checkpointAgreed
                || (job.run.checkpointEvery > 0 ? p.step % job.run.checkpointEvery == 0 : epochEnd) {
                try writeCheckpoint(job: job, dir: checkpointDir, trainer: trainer, comm: comm, data: data, metrics: metrics)
                checkpointTimer.reset()
            }
            if trainer.stopAgreed && p.step < stopAt {
                let signal = StopSignal.received
                say("stopped by \(signal == 0 ? "a signal to another rank" : StopSignal.name(signal)) after step \(p.step) of \(total), checkpoint written; continue with --resume (exit \(ExitStatus.interrupted))")
                interrupted = true
                break
            }
        }
        let seconds = Clock.now() - started
        // Cheap insurance that no branch (a line search, a skipped step) split the ranks.
        try checkRanksAgree(network, comm: comm, when: "training")
        let stoppedEarly = trainer.position.step < total
        if interrupted {
            // Said above.
        } else if let from = resumedFrom, from.step == total {
            say("nothing to do: the run was already complete at step \(total) of \(total) (raise run.steps or run.epochs to train further)")
        } else if stoppedEarly {
            say("stopped after step \(trainer.position.step) of \(total) with a checkpoint; continue with --resume")
        } else {
            say("done: \(total) steps in \(format(seconds, 1)) s" + (lastAccuracy.map { ", test accuracy \(format($0 * 100, 2))%" } ?? "")
                + (lastValidationAccuracy.map { ", validation accuracy \(format($0 * 100, 2))%" } ?? ""))
        }
        return TrainSummary(steps: trainer.position.step, testAccuracy: lastAccuracy, seconds: seconds, stoppedEarly: stoppedEarly,
                            interrupted: interrupted, parameters: network.parameterCount, overlap: overlap)
    }

    /// One metrics.jsonl line for the step just taken (docs/design.md §6: at least step, epoch, loss, lr, batch).
    private static func stepFields(_ trainer: Trainer, loss: Double, lr: Double, seconds: Double,
                                   waitsPerStep: StepWaits) -> [(String, Any)] {
        let p = trainer.position
        var fields: [(String, Any)] = [("step", p.step), ("epoch", p.epoch), ("loss", loss), ("lr", lr),
                                       ("batch", trainer.globalBatch), ("samples", p.samplesSeen),
                                       ("grad_norm", trainer.gradientNorm), ("collectives", trainer.collectivesLastStep),
                                       ("time", seconds)]
        // What the step driver adds (trust ratios, waits, L-BFGS's or GSNR's statistics).
        fields += trainer.stepFields(waitsPerStep: waitsPerStep)
        return fields
    }

    /// The first non-finite feature of each split that was not read whole, found collectively:
    /// each rank scans its slice, the smallest sample wins, and every rank reports it alike.
    private static func checkFeatures(_ splits: [any DataSource], comm: Communicator) throws {
        // Three collectives for all splits together: scan (agreed), the smallest per split, report.
        var first = try comm.agree {
            try splits.map { Int64(try $0.firstNonFiniteSample(rank: comm.rank, of: comm.size) ?? Int.max) }
        }
        comm.allreduce(&first, .min)
        try comm.agree {
            if let i = first.firstIndex(where: { $0 != Int64(Int.max) }) { throw splits[i].nonFiniteError(sample: Int(first[i])) }
        }
    }

    /// Aborts collectively unless every rank holds bitwise the same parameters.
    private static func checkRanksAgree(_ network: Network, comm: Communicator, when: String) throws {
        let mine = network.parameterChecksum
        let low = comm.allreduce(mine, .min)
        let high = comm.allreduce(mine, .max)
        if low != high {
            throw CollectiveFailure(local: .runtime("ranks hold different parameters after \(when) (checksums differ): a bug or a mixed installation; every rank must run the same lockstep"), rootFailed: true, exitCode: ExitStatus.failure)
        }
    }

}

/// A number with `digits` decimals, for progress lines.
func format(_ value: Double, _ digits: Int) -> String {
    guard value.isFinite else { return "\(value)" }
    var scale = 1.0
    for _ in 0..<digits { scale *= 10 }
    let rounded = (abs(value) * scale).rounded() / scale
    var text = String(Int(rounded))
    if digits > 0 {
        let fraction = Int(((rounded - Double(Int(rounded))) * scale).rounded())
        let f = String(fraction)
        text += "." + String(repeating: "0", count: max(0, digits - f.count)) + f
    }
    return (value < 0 ? "-" : "") + text
}
