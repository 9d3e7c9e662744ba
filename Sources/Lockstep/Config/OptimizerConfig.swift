// [optimizer]: which optimizer, its rate and its settings. Keys that do not apply to the chosen
// optimizer are errors (a `beta2` on SGD is a mistake, not something to ignore silently).

extension Job {
    public struct Optimizer: Equatable, Sendable {
        public enum Name: String, Sendable, CaseIterable { case sgd, nshb, adam, adamw, lars, lamb, rsgd, lbfgs }
        public var name: Name
        /// η_base.
        public var lr: Double
        public var sgd = SGDSettings()
        public var adam = AdamSettings()
        public var lars = LARSSettings()
        public var lamb = LAMBSettings()
        public var rsgd = RSGDSettings()
        public var lbfgs = LBFGSSettings()

        /// The keys each optimizer reads besides `name` and `lr`.
        static let keys: [Name: [String]] = [
            .sgd: ["momentum", "nesterov", "weight_decay", "decay_biases"],
            .nshb: ["momentum", "weight_decay", "decay_biases"],
            .adam: ["beta1", "beta2", "eps", "weight_decay", "decay_biases"],
            .adamw: ["beta1", "beta2", "eps", "weight_decay", "decay_biases"],
            .lars: ["momentum", "trust_coefficient", "weight_decay", "decay_biases", "trust_biases"],
            .lamb: ["beta1", "beta2", "eps", "weight_decay", "decay_biases", "trust_biases"],
            .rsgd: ["p0", "gamma", "p_max", "draw", "clock", "weight_decay", "decay_biases"],
            .lbfgs: ["history", "inner", "line_search", "curvature_eps", "max_evals"],
        ]

        init(_ o: TOMLReader) throws {
            name = try o.choice("name", default: Name.sgd)
            // For L-BFGS the rate is the line search's first trial step, 1 by default.
            lr = try o.double("lr", default: name == .lbfgs ? 1 : nil, min: 0)
            let mine = Set(Self.keys[name]!)
            let everyKey = Set(Self.keys.values.joined())
            for key in everyKey.subtracting(mine).sorted() where o.has(key) {
                let users = Name.allCases.filter { Self.keys[$0]!.contains(key) }.map(\.rawValue)
                throw LockstepError.usage("\(o.prefix).\(key): not used by optimizer \"\(name.rawValue)\" (it applies to \(users.joined(separator: ", "))): remove it or change optimizer.name")
            }
            let weightDecay = try o.double("weight_decay", default: 0, min: 0)
            let decayBiases = try o.bool("decay_biases", default: false)
            switch name {
            case .sgd, .nshb:
                sgd.momentum = try o.double("momentum", default: name == .nshb ? 0.9 : 0, min: 0, max: 0.999999)
                sgd.nesterov = name == .sgd ? try o.bool("nesterov", default: false) : false
                sgd.normalized = name == .nshb
                sgd.weightDecay = weightDecay
                sgd.decayBiases = decayBiases
                if sgd.nesterov && sgd.momentum == 0 {
                    throw LockstepError.usage("\(o.prefix).nesterov: Nesterov needs optimizer.momentum > 0")
                }
            case .adam, .adamw:
                adam.beta1 = try o.double("beta1", default: 0.9, min: 0, max: 0.999999)
                adam.beta2 = try o.double("beta2", default: 0.999, min: 0, max: 0.999999)
                adam.epsilon = try o.double("eps", default: 1e-8, min: 0)
                adam.weightDecay = weightDecay
                adam.decoupled = name == .adamw
                adam.decayBiases = decayBiases
            case .lars:
                lars.momentum = try o.double("momentum", default: 0.9, min: 0, max: 0.999999)
                lars.trustCoefficient = try o.double("trust_coefficient", default: 0.001, min: 0)
                lars.weightDecay = weightDecay
                lars.decayBiases = decayBiases
                lars.trustBiases = try o.bool("trust_biases", default: false)
            case .rsgd:
                rsgd.p0 = try o.double("p0", default: 1, min: 0, max: 1)
                rsgd.gamma = try o.double("gamma", default: 0.999, min: 0, max: 1)
                rsgd.pMax = try o.double("p_max", default: 1, min: 0, max: 1)
                rsgd.draw = try o.choice("draw", default: RSGDSettings.Draw.element)
                rsgd.clock = try o.choice("clock", default: RSGDSettings.Clock.step)
                rsgd.weightDecay = weightDecay
                rsgd.decayBiases = decayBiases
            case .lbfgs:
                lbfgs.history = try o.int("history", default: 10, min: 1)
                lbfgs.inner = try o.int("inner", default: 1, min: 1)
                lbfgs.lineSearch = try o.choice("line_search", default: LBFGSSettings.LineSearch.armijo)
                lbfgs.curvatureEpsilon = try o.double("curvature_eps", default: 1e-10, min: 0)
                lbfgs.maxEvaluations = try o.int("max_evals", default: 20, min: 1)
            case .lamb:
                lamb.beta1 = try o.double("beta1", default: 0.9, min: 0, max: 0.999999)
                lamb.beta2 = try o.double("beta2", default: 0.999, min: 0, max: 0.999999)
                lamb.epsilon = try o.double("eps", default: 1e-6, min: 0)
                lamb.weightDecay = weightDecay
                lamb.decayBiases = decayBiases
                lamb.trustBiases = try o.bool("trust_biases", default: false)
            }
            try o.finish()
        }

        /// Builds the optimizer for a network's parameter layout. R-SGD draws from `seed` and
        /// counts epochs of `stepsPerEpoch` steps. L-BFGS's gradient buffers carry the network's
        /// extra gradient slots along.
        public func make(for network: Network, seed: UInt64 = 0, stepsPerEpoch: Int = 1) -> any OptimizerState {
            switch name {
            case .lbfgs: return LBFGS(parameterCount: network.parameterCount, settings: lbfgs,
                                      spareSlots: ExchangeLayout.slotsAfterGradient(lbfgs: true))
            case .sgd, .nshb: return SGD(views: network.views, parameterCount: network.parameterCount, settings: sgd)
            case .adam, .adamw: return Adam(views: network.views, parameterCount: network.parameterCount, settings: adam)
            case .lars: return LARS(views: network.views, parameterCount: network.parameterCount, settings: lars)
            case .lamb: return LAMB(views: network.views, parameterCount: network.parameterCount, settings: lamb)
            case .rsgd: return RSGD(views: network.views, parameterCount: network.parameterCount, settings: rsgd,
                                    seed: seed, stepsPerEpoch: stepsPerEpoch)
            }
        }

        /// The resolved `[optimizer]` section, only the keys this optimizer reads.
        var resolvedLines: [String] {
            var lines = ["name = \"\(name.rawValue)\"", "lr = \(lr)"]
            switch name {
            case .sgd, .nshb:
                lines.append("momentum = \(sgd.momentum)")
                if name == .sgd { lines.append("nesterov = \(sgd.nesterov)") }
                lines += ["weight_decay = \(sgd.weightDecay)", "decay_biases = \(sgd.decayBiases)"]
            case .adam, .adamw:
                lines += ["beta1 = \(adam.beta1)", "beta2 = \(adam.beta2)", "eps = \(adam.epsilon)",
                          "weight_decay = \(adam.weightDecay)", "decay_biases = \(adam.decayBiases)"]
            case .lars:
                lines += ["momentum = \(lars.momentum)", "trust_coefficient = \(lars.trustCoefficient)",
                          "weight_decay = \(lars.weightDecay)", "decay_biases = \(lars.decayBiases)", "trust_biases = \(lars.trustBiases)"]
            case .rsgd:
                lines += ["p0 = \(rsgd.p0)", "gamma = \(rsgd.gamma)", "p_max = \(rsgd.pMax)",
                          "draw = \"\(rsgd.draw.rawValue)\"", "clock = \"\(rsgd.clock.rawValue)\"",
                          "weight_decay = \(rsgd.weightDecay)", "decay_biases = \(rsgd.decayBiases)"]
            case .lbfgs:
                lines += ["history = \(lbfgs.history)", "inner = \(lbfgs.inner)", "line_search = \"\(lbfgs.lineSearch.rawValue)\"",
                          "curvature_eps = \(lbfgs.curvatureEpsilon)", "max_evals = \(lbfgs.maxEvaluations)"]
            case .lamb:
                lines += ["beta1 = \(lamb.beta1)", "beta2 = \(lamb.beta2)", "eps = \(lamb.epsilon)",
                          "weight_decay = \(lamb.weightDecay)", "decay_biases = \(lamb.decayBiases)", "trust_biases = \(lamb.trustBiases)"]
            }
            return lines
        }
    }
}
