// `optimizer.name = "lars"` (docs/algorithms.md §3.3): its keys, built as `LARS` (Optim/LARS.swift).

extension LARSSettings: OptimizerSettings {}

extension Job.Optimizer.Name {
    public static let lars = Self(registered: OptimizerDescriptor.lars.name)
}

extension Job.Optimizer {
    /// LARS's settings (the defaults when another optimizer is chosen).
    public var lars: LARSSettings { settings(as: LARSSettings.self) }
}

extension OptimizerDescriptor {
    static let lars = Self(
        name: "lars", keys: ["momentum", "trust_coefficient", "trust_biases"], decays: true,
        parse: { o, decay in
            var s = LARSSettings()
            s.momentum = try o.double("momentum", default: 0.9, min: 0, max: 0.999999)
            // τ = 0 is accepted: every trust ratio is then 1 (docs/algorithms.md §9).
            s.trustCoefficient = try o.double("trust_coefficient", default: 0.001, min: 0)
            decay.apply(to: &s)
            s.trustBiases = try o.bool("trust_biases", default: false)
            return s
        },
        render: { (s: LARSSettings) in
            ["momentum = \(s.momentum)", "trust_coefficient = \(s.trustCoefficient)"] + WeightDecayKeys.lines(s)
                + ["trust_biases = \(s.trustBiases)"]
        },
        make: { s, network, _, _ in .firstOrder(LARS(views: network.views, parameterCount: network.parameterCount, settings: s)) })
}
