// `optimizer.name = "lbfgs"` (docs/algorithms.md §5): its keys, built as `LBFGS` (Optim/LBFGS.swift).
// No weight decay; the rate is the line search's first trial step, 1 by default.

extension LBFGSSettings: OptimizerSettings {}

extension Job.Optimizer.Name {
    public static let lbfgs = Self(registered: OptimizerDescriptor.lbfgs.name)
}

extension Job.Optimizer {
    /// L-BFGS's settings (the defaults when another optimizer is chosen).
    public var lbfgs: LBFGSSettings { settings(as: LBFGSSettings.self) }
}

extension OptimizerDescriptor {
    static let lbfgs = Self(
        name: "lbfgs", keys: ["history", "inner", "line_search", "curvature_eps", "max_evals"], decays: false, defaultLR: 1,
        parse: { o, _ in
            var s = LBFGSSettings()
            s.history = try o.int("history", default: 10, min: 1)
            s.inner = try o.int("inner", default: 1, min: 1)
            s.lineSearch = try o.choice("line_search", default: LBFGSSettings.LineSearch.armijo)
            s.curvatureEpsilon = try o.double("curvature_eps", default: 1e-10, min: 0)
            s.maxEvaluations = try o.int("max_evals", default: 20, min: 1)
            return s
        },
        render: { (s: LBFGSSettings) in
            ["history = \(s.history)", "inner = \(s.inner)", "line_search = \"\(s.lineSearch.rawValue)\"",
             "curvature_eps = \(s.curvatureEpsilon)", "max_evals = \(s.maxEvaluations)"]
        },
        // The gradient buffers carry the network's extra gradient slots along.
        make: { s, network, _, _ in
            .lbfgs(LBFGS(parameterCount: network.parameterCount, settings: s, spareSlots: ExchangeLayout.slotsAfterGradient(lbfgs: true) + network.statisticsCount))
        })
}
