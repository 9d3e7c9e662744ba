// How much of the gradient exchange the bucketed exchange hides behind backward, measured apart
// from a training run's noise (`lockstep bench`). A run's own exchange_wait also holds the time
// a rank waits for a slower one, which on a busy machine dwarfs the exchange itself; here every
// pass starts at a barrier and the three kinds of pass are interleaved:
//   compute   forward + backward, no exchange;
//   single    forward + backward, then one allreduce;
//   buckets   forward + backward starting the buckets, then waiting for them.
// A pass lasts, for the job, as long as its slowest rank (one max-allreduce per pass, untimed).
// The exchange's exposed cost is a pass's excess over the compute pass; the fraction hidden is
// 1 − exposed(buckets) / exposed(single). Parameters and optimizer state are left alone.

public struct OverlapMeasurement: Sendable {
    /// Mean seconds per pass of each kind, and the standard error of each mean.
    public var compute = 0.0, single = 0.0, buckets = 0.0
    public var computeError = 0.0, singleError = 0.0, bucketsError = 0.0
    public var passes = 0
    public var bucketCount = 0

    /// 1 − (buckets − compute) / (single − compute); nil when the single exchange showed no cost.
    public var hiddenFraction: Double? {
        let exposed = single - compute
        return exposed > 0 ? 1 - (buckets - compute) / exposed : nil
    }
}

extension Trainer {
    /// `passes` of each kind on the current step's batch; nil on one rank or without buckets.
    public func measureOverlap(passes: Int) -> OverlapMeasurement? {
        guard let buckets, comm.size > 1, !fullBatch, lbfgs == nil, passes > 0 else { return nil }
        let overlapped = overlapsExchange
        defer { overlapsExchange = overlapped }
        var sums = [0.0, 0.0, 0.0], squares = [0.0, 0.0, 0.0]
        var slowest = [0.0]
        for _ in 0..<passes {
            for kind in 0..<3 {
                overlapsExchange = kind == 2
                comm.barrier()
                let start = Clock.nanoseconds()
                _ = localGradient()
                if kind == 1 { comm.allreduce(exchange.buffer) }
                if kind == 2 { buckets.finish() }
                slowest[0] = Double(Clock.nanoseconds() - start) * 1e-9
                comm.allreduce(&slowest, .max)
                sums[kind] += slowest[0]
                squares[kind] += slowest[0] * slowest[0]
            }
        }
        let n = Double(passes)
        let means = sums.map { $0 / n }
        let errors = (0..<3).map { k in (max(squares[k] / n - means[k] * means[k], 0) / max(n - 1, 1)).squareRoot() }
        return OverlapMeasurement(compute: means[0], single: means[1], buckets: means[2],
                                  computeError: errors[0], singleError: errors[1], bucketsError: errors[2],
                                  passes: passes, bucketCount: buckets.bucketCount)
    }
}
