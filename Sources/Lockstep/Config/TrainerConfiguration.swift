// Everything a Trainer takes from the job, in one value that only `Job.trainerConfiguration`
// makes, from a job that `validate` accepted: so a trainer is never built from settings that
// were not checked together (a GSNR full batch, buckets with L-BFGS, a micro-batch that does not
// divide a group).

/// How a step computes and applies its update: which step driver the trainer runs.
public enum StepMethod {
    /// One gradient per step, then the optimizer's update (SGD, Adam, LARS, LAMB, R-SGD, ...).
    case firstOrder(any Optimizer)
    /// Several gradient evaluations of the same batch per step, moving the parameters itself.
    case lbfgs(LBFGS)

    /// The state checkpoints save.
    public var state: any OptimizerState {
        switch self {
        case .firstOrder(let optimizer): return optimizer
        case .lbfgs(let lbfgs): return lbfgs
        }
    }
}

public struct TrainerConfiguration {
    public let method: StepMethod
    public let schedule: LearningRateSchedule
    public let seed: UInt64
    public let batchSchedule: BatchSchedule
    /// The largest global batch of the run (what buffers are sized for).
    public let largestBatch: Int
    /// `batch.micro`, if set; otherwise a pass is one GSNR group (or the whole share).
    public let microBatch: Int?
    /// `batch.global = "full"`.
    public let fullBatch: Bool
    /// The gradient groups' settings: GSNR's, or run.noise_scale's with `multiplies` false (nil: plain
    /// updates); `gsnrMomentum` selects the smoothed multiplier.
    public let gsnr: GSNRSettings?
    public let gsnrMomentum: Bool
    /// Bucket size of the overlapped exchange (0: one allreduce after backward).
    public let bucketMegabytes: Double
    /// Whether steps use the buckets (false: they exist for the bench's overlap probe only).
    public let overlap: Bool
    /// What a non-finite loss does (`run.nonfinite`).
    public let nonfinite: NonFinitePolicy
    /// `[augment]`: what the batch loader does to each minibatch sample (never to evaluation or
    /// full-batch passes).
    public let augmentation: Augmentation
    /// `loss.label_smoothing` ε of the training loss (evaluation's loss is unsmoothed).
    public let labelSmoothing: Float
    /// Whether this rank wants the job to stop (read once per exchange).
    public let stopRequested: @Sendable () -> Bool
    /// Whether this rank asks for a checkpoint after this step (rank 0 by `run.checkpoint_minutes`).
    public let checkpointRequested: @Sendable () -> Bool

    /// Gradient groups per rank (1 without GSNR).
    public var groupsPerRank: Int { gsnr?.groupsPerRank ?? 1 }

    fileprivate init(method: StepMethod, schedule: LearningRateSchedule, seed: UInt64, batchSchedule: BatchSchedule,
                     largestBatch: Int, microBatch: Int?, fullBatch: Bool, gsnr: GSNRSettings?, gsnrMomentum: Bool,
                     bucketMegabytes: Double, overlap: Bool, nonfinite: NonFinitePolicy,
                     augmentation: Augmentation, labelSmoothing: Float,
                     stopRequested: @escaping @Sendable () -> Bool, checkpointRequested: @escaping @Sendable () -> Bool) {
        self.method = method
        self.schedule = schedule
        self.seed = seed
        self.batchSchedule = batchSchedule
        self.largestBatch = largestBatch
        self.microBatch = microBatch
        self.fullBatch = fullBatch
        self.gsnr = gsnr
        self.gsnrMomentum = gsnrMomentum
        self.bucketMegabytes = bucketMegabytes
        self.overlap = overlap
        self.nonfinite = nonfinite
        self.augmentation = augmentation
        self.labelSmoothing = labelSmoothing
        self.stopRequested = stopRequested
        self.checkpointRequested = checkpointRequested
    }
}

extension Job {
    /// The trainer's configuration for `network` (initialised: the optimizer is built from it).
    /// Call after `resolve` and `validate`. `probeBucketMegabytes`: the bench's overlap probe
    /// needs buckets even where the job's steps do not use them; then they are built at that
    /// size and the steps still exchange in one allreduce (no probe where no buckets apply:
    /// L-BFGS, the full batch).
    public func trainerConfiguration(for network: Network, trainSamples: Int, probeBucketMegabytes: Double? = nil,
                                     stopRequested: @escaping @Sendable () -> Bool = { StopSignal.received != 0 },
                                     checkpointRequested: @escaping @Sendable () -> Bool = { false }) throws -> TrainerConfiguration {
        // The network's input is the data's sample shape: augmentation must fit it.
        try validate(sampleShape: network.inputShape)
        let method = optimizer.method(for: network, seed: run.seed,
                                      stepsPerEpoch: EpochOrder.stepsPerEpoch(samples: trainSamples, globalBatch: batch.global))
        let overlapApplies = optimizer.name != .lbfgs && !batch.full
        let probing = probeBucketMegabytes != nil && bucketMegabytes == 0 && overlapApplies
        return TrainerConfiguration(method: method, schedule: try learningRateSchedule(trainSamples: trainSamples), seed: run.seed,
                                    batchSchedule: batch.schedule, largestBatch: try largestBatch(trainSamples: trainSamples),
                                    microBatch: batch.micro, fullBatch: batch.full, gsnr: gradientGroups, gsnrMomentum: gsnrMomentum,
                                    bucketMegabytes: probing ? probeBucketMegabytes! : bucketMegabytes, overlap: !probing,
                                    nonfinite: run.nonfinite, augmentation: augment, labelSmoothing: Float(labelSmoothing),
                                    stopRequested: stopRequested, checkpointRequested: checkpointRequested)
    }
}
