// `optimizer.name = "lamb"` (docs/algorithms.md §3.4): its keys, built as `LAMB` (Optim/LAMB.swift).

extension LAMBSettings: OptimizerSettings {}

extension Job.Optimizer.Name {
    public static let lamb = Self(registered: OptimizerDescriptor.lamb.name)
}

extension Job.Optimizer {
    /// LAMB's settings (the defaults when another optimizer is chosen).
    public var lamb: LAMBSettings { settings(as: LAMBSettings.self) }
}

extension OptimizerDescriptor {
    static let lamb = Self(
        name: "lamb", keys: ["beta1", "beta2", "eps", "trust_biases"], decays: true,
        parse: { o, decay in
            var s = LAMBSettings()
            s.beta1 = try o.double("beta1", default: 0.9, min: 0, max: 0.999999)
            s.beta2 = try o.double("beta2", default: 0.999, min: 0, max: 0.999999)
            s.epsilon = try o.double("eps", default: 1e-6, min: 0)
            decay.apply(to: &s)
            s.trustBiases = try o.bool("trust_biases", default: false)
            return s
        },
        render: { (s: LAMBSettings) in
            ["beta1 = \(s.beta1)", "beta2 = \(s.beta2)", "eps = \(s.epsilon)"] + WeightDecayKeys.lines(s)
                + ["trust_biases = \(s.trustBiases)"]
        },
        make: { s, network, _, _ in .firstOrder(LAMB(views: network.views, parameterCount: network.parameterCount, settings: s)) })
}
