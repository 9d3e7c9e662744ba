// What a job's BatchNorm layers need from its batch shape, checked with the rest of the launch
// (Job.validate), and what the run's first line says about them (docs/algorithms.md §8.9).

extension Job {
    /// Every BatchNorm the model makes, with the job key that sets its group.
    var batchNorms: [(key: String, kind: BatchNorm.Kind)] {
        layers.enumerated().flatMap { index, spec in
            spec.kind.batchNorms.map { ("model.layers.\(index)" + $0.key, $0.kind) }
        }
    }

    /// Group statistics need every pass to be whole groups of the global batch (so 1 or p ranks
    /// normalise the same groups); global statistics need one pass per step; and every kind needs
    /// minibatch steps, whose passes are what the statistics are defined over.
    /// `pass`: a rank's rows per forward, for each batch of the run.
    func validateBatchNorms(passes: [(pass: Int, which: String)]) throws {
        let norms = batchNorms
        guard let first = norms.first else { return }
        if batch.full {
            throw LockstepError.usage("\(first.key): BatchNorm needs minibatch steps, not batch.global = \"full\": use a minibatch (e.g. batch.global = 256) or a model without batchnorm layers")
        }
        if run.fullGradNormEvery > 0 {
            throw LockstepError.usage("run.full_grad_norm_every: the full-gradient measurement is not defined for a model with BatchNorm (\(first.key)): set it to 0")
        }
        for (key, kind) in norms {
            switch kind.statistics {
            case .group:
                for (pass, which) in passes where pass % kind.group != 0 {
                    throw LockstepError.usage("\(key): a BatchNorm group of \(kind.group) samples does not divide a rank's pass of \(pass) rows (\(which)): use a group that divides \(pass), or a batch whose per-rank pass is a multiple of \(kind.group)")
                }
            case .global:
                if let micro = batch.micro {
                    throw LockstepError.usage("\(key): stats = \"global\" normalises over the whole global batch, which micro-batches (batch.micro = \(micro)) never hold at once: drop batch.micro or use stats = \"group\"")
                }
                if gradientGroups != nil {
                    throw LockstepError.usage("\(key): stats = \"global\" couples the GSNR gradient groups through the batch statistics: use stats = \"group\" with GSNR")
                }
            case .local:
                break
            }
        }
    }

    /// The first line's note on BatchNorm (nil without it): which statistics, the collectives
    /// they cost (`globalLayers` BatchNorm layers with global statistics, each two per pass), and
    /// whether the run stays rank-count invariant.
    public func batchNormSummary(passesPerStep: Int, globalLayers: Int) -> String? {
        let norms = batchNorms
        guard !norms.isEmpty else { return nil }
        let kinds = Set(norms.map(\.kind.statistics))
        var parts: [String] = []
        if kinds.contains(.group) {
            let groups = Set(norms.filter { $0.kind.statistics == .group }.map(\.kind.group)).sorted()
            parts.append("group statistics over \(groups.map(String.init).joined(separator: "/")) samples (running statistics ride in the step's allreduce)")
        }
        if kinds.contains(.global) {
            parts.append("global statistics in \(globalLayers) layer(s): \(2 * globalLayers * passesPerStep) more collectives per step")
        }
        if kinds.contains(.local) {
            parts.append("local statistics: NOT rank-count invariant (each rank normalises its own share; use stats = \"group\" for invariance)")
        }
        return "BatchNorm: " + parts.joined(separator: "; ")
    }
}
