// `exchange.bucket_mb`: the gradient exchange split into buckets of consecutive layers, each
// started (MPI_Iallreduce, in place) as soon as backward has produced it, and all completed
// before the update. The flat gradient buffer is laid out in layer order and backward runs last
// layer first, so each bucket is one contiguous range that becomes final when backward finishes
// its lowest layer. The top bucket also carries the extra slots (loss, stop), which are known
// before backward starts. Open MPI progresses non-blocking collectives only inside MPI calls, so
// after every layer the started requests are tested once.
//
// The reduction says what is summed (GradientReduction): when a bucket's range is final, the last
// group's gradient is folded over that range only (a no-op for the plain reduction), and the range
// of each of the reduction's planes (gradient; with GSNR sum and squares) is started as one
// request; the top bucket's last plane runs on to the end of the buffer, so it carries the slots.
//
// Elementwise sums and folds do not depend on how the buffer is cut, so on 2 ranks the result is
// bitwise that of the single allreduce; on more ranks only MPI's summation order can differ.

final class BucketedExchange: GradientExchange {
    let reduction: any GradientReduction
    private let comm: Communicator
    /// What is summed: the reduction's buffer.
    private let exchange: UnsafeMutablePointer<Float>
    private let exchangeCount: Int
    /// Offsets of the reduction's planes in `exchange`.
    private let planes: [Int]
    /// Parameter range [start, end) of each bucket, in the order they are started (top first).
    private let ranges: [(start: Int, end: Int)]
    /// For each layer index, the bucket its backward completes (−1: none).
    private let closes: [Int]
    /// One per plane per bucket.
    private let requests: InPlaceRequests
    private var bucketsStarted = 0
    /// Whether this pass's backward should start buckets (the last backward of a step).
    private var armed = false
    /// Whether the folded group is the rank's first (write rather than add).
    private var foldFirst = false

    /// Buckets of at least `bucketBytes` of gradient. Installs itself as the network's
    /// backward-progress listener (it ignores passes it was not armed for).
    init(comm: Communicator, network: Network, reduction: any GradientReduction, bucketBytes: Int) {
        self.comm = comm
        self.reduction = reduction
        exchange = reduction.buffer.pointer
        exchangeCount = reduction.buffer.count
        planes = reduction.planes
        let (ranges, closes) = Self.buckets(network: network, bucketBytes: bucketBytes)
        self.ranges = ranges
        self.closes = closes
        requests = InPlaceRequests(comm: comm, capacity: planes.count * ranges.count)
        network.layerFinishedBackward = { [unowned self] in self.layerFinished($0) }
        network.backwardProgress.tick = { [unowned self] in self.progress() }
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
            // The top-level layer whose backward makes this tensor final (a composite's children too).
            let i = view.topLayer
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
    func lastBackwardBegins(firstGroup: Bool) {
        armed = true
        foldFirst = firstGroup
        requests.restart()
        bucketsStarted = 0
    }

    /// Groups before the last are folded whole; the last one bucket by bucket during its backward.
    func groupFinished(first: Bool, last: Bool) {
        if !last { reduction.fold(0, reduction.layout.parameters, first: first) }
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
        reduction.fold(low, high, first: foldFirst)
        let lastPlane = planes.count - 1
        for (i, plane) in planes.enumerated() {
            // The top bucket's last plane runs on over the slots.
            let end = bucket == 0 && i == lastPlane ? exchangeCount : plane + high
            requests.startSum(exchange + plane + low, count: end - (plane + low))
        }
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
