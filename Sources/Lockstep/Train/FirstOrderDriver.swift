// First-order steps: the passes leave the gradient (or, with GSNR or run.noise_scale, each group
// folded into the shifted moments) in the reduction's buffer, one exchange sums it with its slots,
// and the optimizer updates the parameters from it. With groups the optimizer is wrapped in
// `VarianceReduced`, which reads the squares plane of the same buffer and owns the shift the fold
// subtracts (docs/algorithms.md §2).

final class FirstOrderDriver: StepDriver {
    let optimizer: any OptimizerState
    private let update: any Optimizer
    /// The GSNR wrapper, when the job has one (its per-tensor statistics go to metrics).
    private let varianceReduced: VarianceReduced?
    let comm: Communicator
    private let network: Network
    let passes: BatchPasses
    private let reduction: any GradientReduction
    let single: SingleAllreduce
    /// The bucketed exchange (`exchange.bucket_mb` > 0), or nil.
    let buckets: BucketedExchange?
    /// Whether steps use `buckets` (the overlap probe switches it per pass).
    var overlapsExchange: Bool
    private(set) var stopAgreed = false
    private(set) var checkpointAgreed = false
    private(set) var exchangeWait = 0.0
    /// The last step's global batch (the noise scale needs B).
    private var lastGlobalBatch = 0

    init(comm: Communicator, network: Network, base: any Optimizer, passes: BatchPasses, configuration c: TrainerConfiguration) {
        self.comm = comm
        self.network = network
        self.passes = passes
        let p = network.parameterCount
        let layout = ExchangeLayout(parameters: p, gsnr: c.gsnr != nil, statistics: network.statisticsCount)
        if let gsnr = c.gsnr {
            precondition(!c.fullBatch, "validated by Job: GSNR needs equal groups, not a full batch")
            let reduced = VarianceReduced(base: base, views: network.views, parameterCount: p,
                                          groups: c.groupsPerRank * comm.size, settings: gsnr, useMomentum: c.gsnrMomentum)
            let moments = GSNRMomentsReduction(network: network, layout: layout, shift: reduced.shift)
            reduced.bind(squares: moments.buffer.pointer + layout.squares!)
            reduction = moments
            update = reduced
            varianceReduced = reduced
        } else {
            reduction = PlainReduction(network: network, layout: layout)
            update = base
            varianceReduced = nil
        }
        optimizer = update
        single = SingleAllreduce(comm: comm, reduction: reduction)
        if c.bucketMegabytes > 0 {
            precondition(!c.fullBatch, "validated by Job: buckets need minibatches")
            buckets = BucketedExchange(comm: comm, network: network, reduction: reduction,
                                       bucketBytes: Int(c.bucketMegabytes * 1_000_000))
        } else {
            buckets = nil
        }
        overlapsExchange = c.overlap && buckets != nil
    }

    var bucketCount: Int { buckets?.bucketCount ?? 0 }

    func evaluate(at position: TrainingPosition, shape: StepShape, lr: Double) throws -> Double {
        lastGlobalBatch = shape.global
        let exchange: any GradientExchange = overlapsExchange ? buckets! : single
        _ = passes.localGradient(at: position, shape: shape, exchange: exchange)
        let waitStart = Clock.nanoseconds()
        exchange.finish()
        exchangeWait += Double(Clock.nanoseconds() - waitStart) * 1e-9
        stopAgreed = reduction.stopVoted
        checkpointAgreed = reduction.checkpointVoted
        return reduction.summedLoss / Double(shape.global)
    }

    func apply(lr: Double) {
        update.step(parameters: network.parameters.pointer, gradients: reduction.buffer.pointer, lr: Float(lr))
        // BatchNorm's running statistics move with the step they were measured in.
        network.commitStatistics(reduction.buffer.pointer + reduction.layout.statistics.lowerBound)
    }

    var gradient: UnsafePointer<Float> { UnsafePointer(reduction.buffer.pointer) }

    /// One pass without GSNR (only when logging).
    var gradientNorm: Double {
        varianceReduced?.meanGradientNorm ?? Norms.l2(reduction.buffer.pointer, reduction.layout.parameters)
    }

    func appendFields(to fields: inout [(String, Any)], waitsPerStep: StepWaits) {
        // LARS and LAMB (possibly under GSNR) report their trust ratios.
        let trust = update.trustRatioReport
        if !trust.isEmpty { fields.append(("trust", trust.map { ($0.name, $0.ratio) })) }
        // Mean seconds per step since the previous line spent waiting for the exchange after
        // backward (with buckets: the part the overlap did not hide).
        fields.append(("exchange_wait", waitsPerStep.exchange))
        if !passes.fullBatch {
            // Mean seconds per step since the previous line spent waiting for the step's rows.
            fields.append(("data_wait", waitsPerStep.data))
        }
        if let varianceReduced {
            let names = network.views.map(\.path)
            if varianceReduced.multiplies {
                fields.append(("gsnr_mean", Array(zip(names, varianceReduced.meanGSNR))))
                let clipped = varianceReduced.clipFractions()
                fields.append(("gsnr_clip_low", Array(zip(names, clipped.low))))
                fields.append(("gsnr_clip_high", Array(zip(names, clipped.high))))
                fields.append(("gsnr_step_ratio", Array(zip(names, varianceReduced.stepRatios(gradients: gradient)))))
            }
            // The gradient noise scale from the same statistics (docs/algorithms.md §2.6).
            let noise = varianceReduced.noiseScale(batch: lastGlobalBatch)
            fields.append(("noise_scale", noise.simple ?? .nan))
            fields.append(("noise_trace", noise.trace))
            fields.append(("noise_grad_sq", noise.gradientSquared))
        }
    }
}
