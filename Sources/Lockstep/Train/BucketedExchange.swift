// `exchange.bucket_mb`: the gradient exchange split into buckets of consecutive layers, each
// started (MPI_Iallreduce, in place) as soon as backward has produced it, and all completed
// before the update. The flat gradient buffer is laid out in layer order and backward runs last
// layer first, so each bucket is one contiguous range that becomes final when backward finishes
// its lowest layer. The top bucket also carries the extra slots (loss, stop), which are known
// before backward starts. Open MPI progresses non-blocking collectives only inside MPI calls, so
// after every layer the started requests are tested once.
//
// With GSNR the exchange is [Σ w_d (P), Σ w_d² (P), loss, stop]: when a bucket's range is final,
// the last group's gradient is folded into both moments over that range only, and the two
// ranges (sum, squares) are started as two requests; the top bucket's squares range runs on to
// the end of the buffer, so it carries the slots.
//
// Elementwise sums and folds do not depend on how the buffer is cut, so on 2 ranks the result is
// bitwise that of the single allreduce; on more ranks only MPI's summation order can differ.

final class BucketedExchange {
    private let comm: Communicator
    /// Where backward writes: the network's gradient buffer.
    private let gradients: UnsafeMutablePointer<Float>
    /// What is exchanged: the gradient buffer itself, or GSNR's moments buffer.
    private let exchange: UnsafeMutablePointer<Float>
    private let exchangeCount: Int
    /// P when the exchange holds GSNR's moments (sum at 0, squares at P); nil otherwise.
    private let squaresOffset: Int?
    /// Parameter range [start, end) of each bucket, in the order they are started (top first).
    private let ranges: [(start: Int, end: Int)]
    /// For each layer index, the bucket its backward completes (−1: none).
    private let closes: [Int]
    /// Two per bucket at most (GSNR's sum and squares).
    private let requests: InPlaceRequests
    private var bucketsStarted = 0
    /// Whether this pass's backward should start buckets (the last backward of a step).
    private var armed = false
    /// GSNR: whether the folded group is the rank's first (write the moments rather than add).
    private var foldFirst = false

    /// `squaresOffset`: P when `exchange` holds GSNR's [sum, squares, slots]; nil when the exchange
    /// is the gradient buffer itself.
    init(comm: Communicator, network: Network, exchange: FloatBuffer, squaresOffset: Int?, bucketBytes: Int) {
        self.comm = comm
        gradients = network.gradients.pointer
        self.exchange = exchange.pointer
        exchangeCount = exchange.count
        self.squaresOffset = squaresOffset
        let (ranges, closes) = Self.buckets(network: network, bucketBytes: bucketBytes)
        self.ranges = ranges
        self.closes = closes
        requests = InPlaceRequests(comm: comm, capacity: 2 * ranges.count)
    }

    /// Cuts the layers, from the last down, into buckets of at least `bucketBytes` of gradient
    /// (the bottom bucket takes what is left). Returns each bucket's parameter range and, per
    /// layer, the bucket whose last layer it is.
    static func buckets(network: Network, bucketBytes: Int) -> (ranges: [(start: Int, end: Int)], closes: [Int]) {
        let layerCount = network.layers.count
        // Each layer's range of the flat buffer (empty for layers without parameters).
        var low = [Int](repeating: Int.max, count: layerCount)
        var high = [Int](repeating: Int.min, count: layerCount)
        for view in network.views {
            guard let i = network.layers.firstIndex(where: { $0.name == view.layer }) else { continue }
            low[i] = min(low[i], view.offset)
            high[i] = max(high[i], view.offset + view.count)
        }
        var ranges: [(start: Int, end: Int)] = []
        var closes = [Int](repeating: -1, count: layerCount)
        var top = network.parameterCount
        var bytes = 0
        for i in stride(from: layerCount - 1, through: 0, by: -1) {
            let hasParameters = low[i] != Int.max
            if hasParameters { bytes += (high[i] - low[i]) * MemoryLayout<Float>.size }
            // Close a bucket at a layer with parameters once it is big enough, and always at the
            // first layer (whose backward ends the pass).
            if i == 0 || (hasParameters && bytes >= bucketBytes) {
                let start = i == 0 ? 0 : low[i]
                closes[i] = ranges.count
                ranges.append((start, top))
                top = start
                bytes = 0
            }
        }
        return (ranges, closes)
    }

    var bucketCount: Int { ranges.count }

    /// The next backward pass completes the step's gradient: start buckets as layers finish.
    /// `foldFirst` (GSNR): the pass's group is the rank's first, so the fold writes the moments.
    func arm(foldFirst: Bool) {
        armed = true
        self.foldFirst = foldFirst
        requests.restart()
        bucketsStarted = 0
    }

    /// Called by the network after layer `index`'s backward.
    func layerFinished(_ index: Int) {
        guard armed else { return }
        let bucket = closes[index]
        if bucket >= 0 {
            start(bucket)
            bucketsStarted += 1
        }
        progress()
    }

    /// Lets the started requests progress (one MPI_Testall); called between layers and, by
    /// long layers, inside their backward.
    func progress() {
        guard armed else { return }
        requests.test()
    }

    private func start(_ bucket: Int) {
        let (low, high) = ranges[bucket]
        let isTop = bucket == 0
        guard let p = squaresOffset else {
            // The gradient buffer is the exchange: the top bucket runs on over the slots.
            reduce(low, (isTop ? exchangeCount : high) - low)
            return
        }
        GradientGroups.fold(gradients + low, sum: exchange + low, squares: exchange + p + low, count: high - low,
                            first: foldFirst)
        reduce(low, high - low)
        reduce(p + low, (isTop ? exchangeCount : p + high) - (p + low))
    }

    private func reduce(_ offset: Int, _ count: Int) {
        requests.startSum(exchange + offset, count: count)
    }

    /// Waits for every bucket (after backward). Counts as the step's one collective call.
    func finish() {
        precondition(armed && bucketsStarted == ranges.count, "every bucket must have been started by backward")
        // Only the wait counts as being in a collective for the stall watchdog: a rank stuck in
        // backward must still name itself (starting and testing requests never blocks).
        comm.marks.enterCollective()
        requests.waitAll()
        armed = false
        comm.countCollective()
        comm.marks.leaveCollective()
    }
}
