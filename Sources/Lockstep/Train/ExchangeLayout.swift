// Where each thing sits in the buffer a step allreduces: the gradient, GSNR's squares, and the
// slots that ride along so a step costs one collective (the loss sum, the L-BFGS evaluation tag,
// the stop votes, rank 0's checkpoint vote, and the layers' batch statistics). Built here only;
// nothing else computes an offset past the gradient.
//
//   first-order:  [ g (P) | loss | stop | checkpoint | statistics (S) ]
//   GSNR:         [ Σ w_d (P) | Σ w_d² (P) | loss | stop | checkpoint | statistics (S) ]
//   L-BFGS:       [ g (P) | loss | tag | stop | checkpoint | statistics (S) ]
//
// S is what the network's BatchNorm layers add up over a step's passes (Network.statisticsCount;
// 0 without BatchNorm), so their running statistics cost no collective of their own.

public struct ExchangeLayout: Equatable, Sendable {
    /// P: the gradient is [0, P).
    public let parameters: Int
    /// Offset of GSNR's Σ w_d² (P floats), nil without GSNR.
    public let squares: Int?
    /// This rank's loss sum; after the allreduce, the global batch's.
    public let loss: Int
    /// L-BFGS's evaluation tag (each rank's evaluation count; summed, it proves the ranks agree).
    public let tag: Int?
    /// Ranks asking to stop, summed.
    public let stop: Int
    /// Rank 0's vote for a checkpoint after this step (`run.checkpoint_minutes`: its clock decides
    /// for all, so every rank learns it from the step's one collective).
    public let checkpoint: Int
    /// The layers' batch statistics (Network.statisticsCount floats), summed.
    public let statistics: Range<Int>
    /// Floats in the buffer.
    public let count: Int

    public init(parameters: Int, gsnr: Bool = false, lbfgs: Bool = false, statistics: Int = 0) {
        precondition(!(gsnr && lbfgs), "GSNR corrects first-order updates only")
        self.parameters = parameters
        squares = gsnr ? parameters : nil
        loss = gsnr ? 2 * parameters : parameters
        tag = lbfgs ? loss + 1 : nil
        stop = (tag ?? loss) + 1
        checkpoint = stop + 1
        self.statistics = (checkpoint + 1)..<(checkpoint + 1 + statistics)
        count = checkpoint + 1 + statistics
    }

    /// Slots the network's own gradient buffer carries after its P gradients, so that without
    /// GSNR it is the exchange buffer itself: loss, stop and checkpoint, and the tag with L-BFGS. The network
    /// puts its batch statistics after them itself.
    public static func slotsAfterGradient(lbfgs: Bool) -> Int {
        let layout = ExchangeLayout(parameters: 0, lbfgs: lbfgs)
        return layout.count
    }

    /// The layout of the network's gradient buffer for this exchange (GSNR folds into a buffer of
    /// its own; the network's keeps the plain layout, which the full-gradient pass uses).
    public var ofNetworkGradients: ExchangeLayout {
        ExchangeLayout(parameters: parameters, lbfgs: tag != nil, statistics: statistics.count)
    }

    /// The floats after the gradient (and squares) that travel with it: loss, [tag], stop, checkpoint, statistics.
    public var slots: Range<Int> { loss..<count }
}
