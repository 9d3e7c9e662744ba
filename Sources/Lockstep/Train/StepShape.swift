// The batch sizes of one epoch: the global batch, this rank's share of it, the rows of one
// forward/backward pass, and the steps the epoch takes. All validated by Job.validate for the
// whole run; an increasing batch schedule changes them at epoch boundaries only.

public struct StepShape: Equatable, Sendable {
    /// The epoch's global batch (the whole training set with `batch.global = "full"`).
    public var global: Int
    /// This rank's share of it: `local / micro` passes (with GSNR, `groups` groups of passes).
    public var local: Int
    /// Rows per forward/backward pass.
    public var micro: Int
    public var stepsPerEpoch: Int

    /// Rows per evaluation chunk; the network's buffers are sized for max(local batch, this).
    public static let evaluationChunk = 1000

    /// The shape of `epoch`. A full batch is split into contiguous slices, as even as the rank count allows.
    static func of(epoch: Int, _ schedule: BatchSchedule, ranks: Int, rank: Int, groups: Int, micro: Int?,
                   samples: Int, full: Bool) -> StepShape {
        if full {
            let local = samples * (rank + 1) / ranks - samples * rank / ranks
            return StepShape(global: samples, local: local, micro: min(micro ?? evaluationChunk, max(local, 1)), stepsPerEpoch: 1)
        }
        let global = schedule.batch(epoch: epoch)
        let local = global / ranks
        precondition(global % ranks == 0 && local % groups == 0, "validated by Job.validate")
        let pass = micro ?? local / groups
        precondition((local / groups) % pass == 0, "validated by Job.validate")
        return StepShape(global: global, local: local, micro: pass,
                         stepsPerEpoch: EpochOrder.stepsPerEpoch(samples: samples, globalBatch: global))
    }

    /// Rows of the largest forward/backward pass of the run (a micro-batch, a GSNR group's
    /// share, or an evaluation chunk): what activations are sized for, and what a run checks
    /// against the node's memory before building the trainer.
    public static func passRows(largestBatch: Int, ranks: Int, groupsPerRank: Int, microBatch: Int?, fullBatch: Bool) -> Int {
        max(fullBatch ? (microBatch ?? evaluationChunk) : (microBatch ?? largestBatch / ranks / groupsPerRank), evaluationChunk)
    }
}
