// The global data order: one permutation of the training set per epoch, from the job seed and
// the epoch number only, identical on every rank. A global batch is a contiguous window of it
// (docs/algorithms.md §8.2).

public enum EpochOrder {
    /// Fills `order` with a Fisher–Yates permutation of 0..<order.count for (`seed`, `epoch`).
    public static func permutation(seed: UInt64, epoch: Int, into order: inout [Int32]) {
        var rng = Xoshiro256(seed: seed, stream: 0xDA7A_0000_0000 &+ UInt64(epoch))
        for i in order.indices { order[i] = Int32(i) }
        var i = order.count - 1
        while i > 0 {
            let j = rng.next(below: i + 1)
            order.swapAt(i, j)
            i -= 1
        }
    }

    /// Steps in an epoch: the tail that does not fill a global batch is dropped.
    public static func stepsPerEpoch(samples: Int, globalBatch: Int) -> Int { samples / globalBatch }

    /// The positions in the epoch's order that rank `rank` of `ranks` uses at `step` of the epoch.
    public static func localWindow(step: Int, globalBatch: Int, rank: Int, ranks: Int) -> Range<Int> {
        let local = globalBatch / ranks
        let start = step * globalBatch + rank * local
        return start..<(start + local)
    }
}
