// `optimizer.name = "adam"` and `"adamw"` (docs/algorithms.md §3.1, §3.2): the keys of Adam with
// coupled (L2) and decoupled weight decay, both built as `Adam` (Optim/Adam.swift).

extension AdamSettings: OptimizerSettings {}

extension Job.Optimizer.Name {
    public static let adam = Self(registered: OptimizerDescriptor.adam.name)
    public static let adamw = Self(registered: OptimizerDescriptor.adamw.name)
}

extension Job.Optimizer {
    /// Adam's and AdamW's settings (the defaults when another optimizer is chosen).
    public var adam: AdamSettings { settings(as: AdamSettings.self) }
}

extension OptimizerDescriptor {
    static let adam = adamFamily("adam", decoupled: false)
    static let adamw = adamFamily("adamw", decoupled: true)

    private static func adamFamily(_ name: String, decoupled: Bool) -> Self {
        Self(name: name, keys: ["beta1", "beta2", "eps"], decays: true,
             parse: { o, decay in
                 var s = AdamSettings()
                 s.beta1 = try o.double("beta1", default: 0.9, min: 0, max: 0.999999)
                 s.beta2 = try o.double("beta2", default: 0.999, min: 0, max: 0.999999)
                 s.epsilon = try o.double("eps", default: 1e-8, min: 0)
                 decay.apply(to: &s)
                 s.decoupled = decoupled
                 return s
             },
             render: { (s: AdamSettings) in
                 ["beta1 = \(s.beta1)", "beta2 = \(s.beta2)", "eps = \(s.epsilon)"] + WeightDecayKeys.lines(s)
             },
             make: { s, network, _, _ in .firstOrder(Adam(views: network.views, parameterCount: network.parameterCount, settings: s)) })
    }
}
