// `optimizer.name = "sgd"` and `"nshb"` (docs/algorithms.md §1.6): the keys of SGD with heavy-ball
// or Nesterov momentum and of normalized heavy ball, both built as `SGD` (Optim/SGD.swift).

extension SGDSettings: OptimizerSettings {}

extension Job.Optimizer.Name {
    public static let sgd = Self(registered: OptimizerDescriptor.sgd.name)
    public static let nshb = Self(registered: OptimizerDescriptor.nshb.name)
}

extension Job.Optimizer {
    /// SGD's and NSHB's settings (the defaults when another optimizer is chosen).
    public var sgd: SGDSettings { settings(as: SGDSettings.self) }
}

extension OptimizerDescriptor {
    static let sgd = sgdFamily("sgd", normalized: false)
    static let nshb = sgdFamily("nshb", normalized: true)

    /// NSHB reads no `nesterov` and defaults its β (`momentum`) to 0.9.
    private static func sgdFamily(_ name: String, normalized: Bool) -> Self {
        Self(name: name, keys: normalized ? ["momentum"] : ["momentum", "nesterov"], decays: true,
             parse: { o, decay in
                 var s = SGDSettings()
                 s.momentum = try o.double("momentum", default: normalized ? 0.9 : 0, min: 0, max: 0.999999)
                 s.nesterov = normalized ? false : try o.bool("nesterov", default: false)
                 s.normalized = normalized
                 decay.apply(to: &s)
                 if s.nesterov && s.momentum == 0 {
                     throw LockstepError.usage("\(o.prefix).nesterov: Nesterov needs optimizer.momentum > 0")
                 }
                 return s
             },
             render: { (s: SGDSettings) in
                 ["momentum = \(s.momentum)"] + (normalized ? [] : ["nesterov = \(s.nesterov)"]) + WeightDecayKeys.lines(s)
             },
             make: { s, network, _, _ in .firstOrder(SGD(views: network.views, parameterCount: network.parameterCount, settings: s)) })
    }
}
