// [optimizer]: which optimizer, its rate and its settings. Each optimizer is one descriptor
// (Config/Optimizers/, registered in `OptimizerDescriptor.registry`) that parses its keys,
// renders them and builds the optimizer; this file holds what all of them share. Keys that do
// not apply to the chosen optimizer are errors (a `beta2` on SGD is a mistake, not something to
// ignore silently).

extension Job {
    public struct Optimizer: Equatable, Sendable {
        /// An `optimizer.name`: the name of a registered descriptor. `allCases` is the registry's
        /// order; each descriptor's file adds its constant (`.sgd`, `.lbfgs`, ...).
        public struct Name: RawRepresentable, Hashable, Sendable, CaseIterable {
            public let rawValue: String
            public init?(rawValue: String) {
                guard OptimizerDescriptor.registry.contains(where: { $0.name == rawValue }) else { return nil }
                self.rawValue = rawValue
            }
            init(registered rawValue: String) { self.rawValue = rawValue }
            public static var allCases: [Name] { OptimizerDescriptor.registry.map { Name(registered: $0.name) } }
        }

        public var name: Name
        /// η_base.
        public var lr: Double
        /// The chosen optimizer's settings, of its descriptor's type (each descriptor's file adds
        /// a typed accessor: `sgd`, `adam`, ...).
        var settings: any OptimizerSettings

        var descriptor: OptimizerDescriptor { OptimizerDescriptor.named(name.rawValue) }

        init(_ o: TOMLReader) throws {
            name = try o.choice("name", default: Name.sgd)
            let descriptor = OptimizerDescriptor.named(name.rawValue)
            lr = try o.double("lr", default: descriptor.defaultLR, min: 0)
            let mine = Set(descriptor.keys)
            let everyKey = Set(OptimizerDescriptor.registry.map(\.keys).joined())
            for key in everyKey.subtracting(mine).sorted() where o.has(key) {
                let users = OptimizerDescriptor.registry.filter { $0.keys.contains(key) }.map(\.name)
                throw LockstepError.usage("\(o.prefix).\(key): not used by optimizer \"\(name.rawValue)\" (it applies to \(users.joined(separator: ", "))): remove it (--unset \(o.prefix).\(key)) or change optimizer.name")
            }
            // Read for every optimizer, before its own keys (so these errors come first); for one
            // without decay (L-BFGS) they were refused above and read as their defaults here.
            let decay = try WeightDecayKeys(o)
            settings = try descriptor.parse(o, decay)
            try o.finish()
        }

        /// Builds the optimizer for a network's parameter layout. R-SGD draws from `seed` and
        /// counts epochs of `stepsPerEpoch` steps. L-BFGS's gradient buffers carry the network's
        /// extra gradient slots along.
        public func make(for network: Network, seed: UInt64 = 0, stepsPerEpoch: Int = 1) -> any OptimizerState {
            method(for: network, seed: seed, stepsPerEpoch: stepsPerEpoch).state
        }

        /// The optimizer with the step driver it needs (first-order, or L-BFGS's own evaluations).
        public func method(for network: Network, seed: UInt64 = 0, stepsPerEpoch: Int = 1) -> StepMethod {
            descriptor.make(settings, network, seed, stepsPerEpoch)
        }

        /// The resolved `[optimizer]` section, only the keys this optimizer reads.
        var resolvedLines: [String] {
            ["name = \"\(name.rawValue)\"", "lr = \(lr)"] + descriptor.render(settings)
        }

        public static func == (a: Self, b: Self) -> Bool {
            a.name == b.name && a.lr == b.lr && a.settings.isEqual(to: b.settings)
        }

        /// λ of an optimizer that decays (nil for one that does not, L-BFGS).
        public var weightDecay: Double? { (settings as? any WeightDecaySettings)?.weightDecay }

        /// The settings as type `S`, or `S`'s defaults when another optimizer's are held.
        func settings<S: OptimizerSettings>(as _: S.Type) -> S { settings as? S ?? S() }
    }
}
