// The global batch of each epoch (docs/algorithms.md §4, Kamo & Iiduka): constant, or increasing at
// epoch boundaries as b(e) = min(a·δ^⌊e/E⌋ + c, b_max) with a = batch.global. The data order,
// steps per epoch and the learning-rate scaling all follow the current batch.

public struct BatchSchedule: Equatable, Sendable {
    /// a: the batch of the first interval (before the offset).
    public var base: Int
    /// δ: the factor per interval (1: constant batch).
    public var growth = 1
    /// E: epochs per interval.
    public var everyEpochs = 1
    /// c: added after the growth (the capped affine form of §4).
    public var offset = 0
    /// b_max (nil: no cap).
    public var maxBatch: Int?

    public init(base: Int) { self.base = base }

    public var isConstant: Bool { growth == 1 && offset == 0 }

    /// The global batch of 0-based epoch `epoch`.
    public func batch(epoch: Int) -> Int {
        var b = base
        let intervals = epoch / max(everyEpochs, 1)
        if growth > 1 {
            for _ in 0..<intervals {
                // Stop multiplying once past the cap (or before overflowing).
                if let cap = maxBatch, b >= cap { break }
                if b > Int.max / growth / 2 { break }
                b *= growth
            }
        }
        // Past Int: larger than any data set, which Job.validate reports.
        let (sum, overflow) = b.addingReportingOverflow(offset)
        b = overflow ? Int.max : sum
        if let cap = maxBatch { b = min(b, cap) }
        return b
    }
}
