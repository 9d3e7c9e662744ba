// How a step's gradient reaches every rank. The trainer's passes tell the exchange when a
// gradient group's backward is done and when the step's last backward begins; the exchange
// decides when to fold and when to start summing. Two kinds:
//
//   SingleAllreduce     folds each group after its backward, then one blocking allreduce;
//   BucketedExchange    folds and starts buckets during the last backward (`exchange.bucket_mb`).
//
// Both sum the same buffer (their reduction's) and count as one collective call, so a new kind
// of exchange is one new type; which reduction it carries (plain or GSNR moments) is not its business.

protocol GradientExchange: AnyObject {
    var reduction: any GradientReduction { get }
    /// The step's last backward pass comes next, and the slots are already final.
    /// `firstGroup`: that pass's group is the rank's first (the fold writes rather than adds).
    func lastBackwardBegins(firstGroup: Bool)
    /// A gradient group's backward passes are done (`last`: the step's last group).
    func groupFinished(first: Bool, last: Bool)
    /// Completes the sum over ranks: afterwards every rank holds the same `reduction.buffer`.
    func finish()
}

/// One allreduce after backward, in place (or into a buffer of the caller's: L-BFGS).
final class SingleAllreduce: GradientExchange {
    let reduction: any GradientReduction
    private let comm: Communicator
    private let parameters: Int

    init(comm: Communicator, reduction: any GradientReduction) {
        self.comm = comm
        self.reduction = reduction
        parameters = reduction.layout.parameters
    }

    func lastBackwardBegins(firstGroup: Bool) {}

    func groupFinished(first: Bool, last: Bool) {
        reduction.fold(0, parameters, first: first)
    }

    func finish() {
        comm.allreduce(reduction.buffer.buffer)
    }

    /// Sums into `target` (as many floats as the buffer) and leaves the buffer as it was.
    func finish(into target: UnsafeMutablePointer<Float>) {
        comm.allreduce(reduction.buffer.buffer, into: target)
    }
}
