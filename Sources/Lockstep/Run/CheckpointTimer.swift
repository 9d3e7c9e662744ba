// `run.checkpoint_minutes`: a checkpoint by wall time as well as by steps. Rank 0's clock decides
// for every rank: its vote rides in the step's one allreduce (ExchangeLayout.checkpoint), so all
// ranks write the checkpoint after the same step, at no collective of its own.

public final class CheckpointTimer: @unchecked Sendable {
    private let seconds: Double
    private let votes: Bool
    /// When the last checkpoint was written (or the run started). Touched by the main thread only:
    /// the vote is read when a step's slots are filled, the reset after a checkpoint.
    private var since: Double

    /// `minutes` 0 never votes; only `isRoot` votes.
    public init(minutes: Double, isRoot: Bool) {
        seconds = minutes * 60
        votes = isRoot && minutes > 0
        since = Clock.now()
    }

    /// Whether this rank asks for a checkpoint after the step whose slots are being filled.
    public func due() -> Bool { votes && Clock.now() - since >= seconds }

    /// A checkpoint was written: the next one is due `minutes` from now.
    public func reset() { since = Clock.now() }
}
