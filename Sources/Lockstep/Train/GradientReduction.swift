// What a step's one collective sums, and how a rank's gradient groups get into it. The exchange
// (one allreduce, or buckets during backward) is given a reduction and does not know which:
//
//   plain          the network's gradient buffer itself, [ g (P) | slots ]: nothing to fold, the
//                  rank's whole share is one group;
//   GSNR moments   a buffer of its own, [ Σ (w_d − a) (P) | Σ (w_d − a)² (P) | slots ]: each group's
//                  gradient w_d, shifted by the wrapper's reference a (the same on every rank), is
//                  folded into both moments before they travel (docs/algorithms.md §2.1).
//
// The buffer is `planes` planes of P floats, then the slots (ExchangeLayout); a range [low, high)
// of parameters is the same range of every plane, which is how buckets cut it.

protocol GradientReduction: AnyObject {
    /// What the exchange sums across ranks.
    var buffer: FloatBuffer { get }
    /// Where gradient, squares and slots sit in `buffer`.
    var layout: ExchangeLayout { get }
    /// Offsets of the P-float planes in `buffer` (plain: [0]; GSNR: [0, P]).
    var planes: [Int] { get }
    /// Folds the network's gradient over parameters [low, high) into `buffer`: writes when `first`
    /// (the rank's first group), adds otherwise.
    func fold(_ low: Int, _ high: Int, first: Bool)
    /// Puts the network's batch statistics into `buffer`'s statistics slots (once the step's
    /// last forward is done).
    func copyStatistics()
}

extension GradientReduction {
    /// Writes what travels with the gradient: this rank's loss sum, its stop and checkpoint votes
    /// (and, when the buffer is not the network's own, a copy of the layers' batch statistics).
    func fillSlots(localLoss: Double, stop: Bool, checkpoint: Bool) {
        buffer.pointer[layout.loss] = Float(localLoss)
        buffer.pointer[layout.stop] = stop ? 1 : 0
        buffer.pointer[layout.checkpoint] = checkpoint ? 1 : 0
        copyStatistics()
    }

    /// The summed loss after the exchange, and whether any rank voted to stop.
    var summedLoss: Double { Double(buffer.pointer[layout.loss]) }
    var stopVoted: Bool { buffer.pointer[layout.stop] > 0 }
    var checkpointVoted: Bool { buffer.pointer[layout.checkpoint] > 0 }
}

/// The network's gradient buffer is what travels; a rank's share is one group, so nothing folds.
final class PlainReduction: GradientReduction {
    let buffer: FloatBuffer
    let layout: ExchangeLayout
    let planes = [0]

    init(network: Network, layout: ExchangeLayout) {
        precondition(layout.squares == nil && network.gradients.count == layout.count,
                     "the network's gradient buffer carries the slots (ExchangeLayout.slotsAfterGradient)")
        buffer = network.gradients
        self.layout = layout
    }

    @inline(__always)
    func fold(_ low: Int, _ high: Int, first: Bool) {}

    /// The network's statistics already sit in this buffer's slots.
    func copyStatistics() {}
}

/// GSNR's shifted first and second moments over the gradient groups, [Σ (w_d − a), Σ (w_d − a)²], in one buffer.
final class GSNRMomentsReduction: GradientReduction {
    let buffer: FloatBuffer
    let layout: ExchangeLayout
    let planes: [Int]
    private let gradients: UnsafeMutablePointer<Float>
    private let squares: Int
    /// The shift a (VarianceReduced.shift: P floats, the same on every rank).
    private let shift: UnsafePointer<Float>

    init(network: Network, layout: ExchangeLayout, shift: FloatBuffer) {
        guard let squares = layout.squares else { preconditionFailure("a GSNR layout has a squares plane") }
        buffer = FloatBuffer(count: layout.count)
        self.layout = layout
        self.squares = squares
        planes = [0, squares]
        gradients = network.gradients.pointer
        precondition(shift.count == layout.parameters, "one shift per parameter")
        self.shift = UnsafePointer(shift.pointer)
        statistics = (network.statistics, network.statisticsCount)
        precondition(layout.statistics.count == network.statisticsCount, "the layout carries the network's statistics")
    }

    private let statistics: (from: UnsafeMutablePointer<Float>, count: Int)

    func copyStatistics() {
        guard statistics.count > 0 else { return }
        (buffer.pointer + layout.statistics.lowerBound).update(from: statistics.from, count: statistics.count)
    }

    @inline(__always)
    func fold(_ low: Int, _ high: Int, first: Bool) {
        GradientGroups.fold(gradients + low, shift: shift + low, sum: buffer.pointer + low, squares: buffer.pointer + squares + low,
                            count: high - low, first: first)
    }
}
