// What a step with a non-finite loss does (`run.nonfinite`). The loss that decides it is the
// allreduced sum of every rank's loss, so a NaN on any one rank is seen by all of them at the
// same step and the ranks never diverge. The loss is the signal (free: it rides in the gradient
// allreduce); a finite loss means finite activations, and so finite gradients short of an
// overflow inside backward itself.

public enum NonFinitePolicy: String, Sendable, CaseIterable {
    /// End the run with exit 1, naming the step and the first layer whose gradient is non-finite.
    case abort
    /// Leave the parameters and the optimizer state as they were, consume the batch, go on.
    /// More than `maxConsecutiveSkips` in a row end the run as `abort` would.
    case skip

    public static let maxConsecutiveSkips = 10
}
