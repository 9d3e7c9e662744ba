// `optimizer.name = "rsgd"` (docs/algorithms.md §6): its keys, built as `RSGD` (Optim/RSGD.swift),
// which draws from the job's seed and counts epochs of the given steps per epoch.

extension RSGDSettings: OptimizerSettings {}

extension Job.Optimizer.Name {
    public static let rsgd = Self(registered: OptimizerDescriptor.rsgd.name)
}

extension Job.Optimizer {
    /// R-SGD's settings (the defaults when another optimizer is chosen).
    public var rsgd: RSGDSettings { settings(as: RSGDSettings.self) }
}

extension OptimizerDescriptor {
    static let rsgd = Self(
        name: "rsgd", keys: ["p0", "gamma", "p_max", "draw", "clock", "memory"], decays: true,
        parse: { o, decay in
            var s = RSGDSettings()
            s.p0 = try o.double("p0", default: 1, min: 0, max: 1)
            s.gamma = try o.double("gamma", default: 0.999, min: 0, max: 1)
            s.pMax = try o.double("p_max", default: 1, min: 0, max: 1)
            s.draw = try o.choice("draw", default: RSGDSettings.Draw.element)
            s.clock = try o.choice("clock", default: RSGDSettings.Clock.step)
            s.memory = try o.choice("memory", default: RSGDSettings.Memory.accumulated)
            decay.apply(to: &s)
            return s
        },
        render: { (s: RSGDSettings) in
            ["p0 = \(s.p0)", "gamma = \(s.gamma)", "p_max = \(s.pMax)",
             "draw = \"\(s.draw.rawValue)\"", "clock = \"\(s.clock.rawValue)\"", "memory = \"\(s.memory.rawValue)\""] + WeightDecayKeys.lines(s)
        },
        make: { s, network, seed, stepsPerEpoch in
            .firstOrder(RSGD(views: network.views, parameterCount: network.parameterCount, settings: s, seed: seed, stepsPerEpoch: stepsPerEpoch))
        })
}
