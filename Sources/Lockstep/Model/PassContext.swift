// What a training pass's layers may need beyond their input: the job seed, the step, and where
// the pass's first row sits in the epoch's order. Dropout keys its masks by them, so a sample
// gets the same mask on any rank count (docs/algorithms.md §8.10). One per network, shared by its
// layers; the trainer's passes set it before each forward, which costs a few stores.

public final class PassContext {
    /// The job seed (`run.seed`).
    public var seed: UInt64 = 0
    /// The step being computed (0-based, over the whole run).
    public var step = 0
    /// Position of the pass's first row in the global order of the step's samples (rows follow
    /// consecutively): rank-count invariant, since every rank's share is a contiguous window.
    public var firstSample = 0

    public init() {}
}
