// How much of the gradient exchange the bucketed exchange hides behind backward, measured apart
// from a training run's noise (`lockstep bench`). A run's own exchange_wait also holds the time
// a rank waits for a slower one, which on a busy machine dwarfs the exchange itself; here every
// pass starts at a barrier and the three kinds of pass are interleaved:
//   compute   forward + backward, no exchange;
//   single    forward + backward, then one allreduce;
//   buckets   forward + backward starting the buckets, then waiting for them.
// A pass lasts, for the job, as long as its slowest rank (one max-allreduce per pass, untimed).
// The exchange's exposed cost is a kind's median pass minus the compute pass's median; the
// fraction hidden is 1 − exposed(buckets) / exposed(single). Parameters and optimizer state are left alone.

public struct OverlapMeasurement: Sendable {
    /// Median seconds per pass of each kind (medians: a pass that the OS preempted is an
    /// outlier that would dominate a mean on shared cores), and each kind's interquartile range.
    public var compute = 0.0, single = 0.0, buckets = 0.0
    public var computeIQR = 0.0, singleIQR = 0.0, bucketsIQR = 0.0
    public var passes = 0
    public var bucketCount = 0

    /// 1 − (buckets − compute) / (single − compute); nil when the single exchange showed no cost.
    public var hiddenFraction: Double? {
        let exposed = single - compute
        return exposed > 0 ? 1 - (buckets - compute) / exposed : nil
    }
}

extension FirstOrderDriver {
    /// `passes` of each kind on the batch of the step at `position`; nil on one rank or without buckets.
    func measureOverlap(passes count: Int, at position: TrainingPosition, shape: StepShape) -> OverlapMeasurement? {
        guard let buckets, comm.size > 1, !passes.fullBatch, count > 0 else { return nil }
        var times = [[Double]](repeating: [], count: 3)
        var slowest = [0.0]
        for _ in 0..<count {
            for kind in 0..<3 {
                let exchange: any GradientExchange = kind == 2 ? buckets : single
                comm.barrier()
                let start = Clock.nanoseconds()
                _ = passes.localGradient(at: position, shape: shape, exchange: exchange)
                if kind > 0 { exchange.finish() }
                slowest[0] = Double(Clock.nanoseconds() - start) * 1e-9
                comm.allreduce(&slowest, .max)
                times[kind].append(slowest[0])
            }
        }
        let sorted = times.map { $0.sorted() }
        let quantile = { (k: Int, q: Double) in sorted[k][Int((Double(count - 1) * q).rounded())] }
        return OverlapMeasurement(compute: quantile(0, 0.5), single: quantile(1, 0.5), buckets: quantile(2, 0.5),
                                  computeIQR: quantile(0, 0.75) - quantile(0, 0.25),
                                  singleIQR: quantile(1, 0.75) - quantile(1, 0.25),
                                  bucketsIQR: quantile(2, 0.75) - quantile(2, 0.25),
                                  passes: count, bucketCount: buckets.bucketCount)
    }
}
