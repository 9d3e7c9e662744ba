// One optimizer as the job sees it: its `optimizer.name`, the keys it reads, how it parses and
// renders them, and how it builds the optimizer. Adding an optimizer is a file in this folder
// (a descriptor, its `Name` constant, a typed settings accessor) and one line in `registry`.

/// An optimizer's settings struct, held by `Job.Optimizer` whatever its type.
protocol OptimizerSettings: Sendable {
    init()
    func isEqual(to other: any OptimizerSettings) -> Bool
}

extension OptimizerSettings where Self: Equatable {
    func isEqual(to other: any OptimizerSettings) -> Bool { (other as? Self) == self }
}

struct OptimizerDescriptor: Sendable {
    /// Every optimizer, in the order error messages list them.
    static let registry: [OptimizerDescriptor] = [.sgd, .nshb, .adam, .adamw, .lars, .lamb, .rsgd, .lbfgs]

    static func named(_ name: String) -> OptimizerDescriptor {
        guard let descriptor = registry.first(where: { $0.name == name }) else {
            preconditionFailure("optimizer \"\(name)\" is not registered")
        }
        return descriptor
    }

    /// The `optimizer.name` value.
    let name: String
    /// The keys it reads besides `name` and `lr` (the weight-decay keys included where it decays).
    let keys: [String]
    /// `lr` when the job gives none; nil: the key is required.
    let defaultLR: Double?
    let parse: @Sendable (TOMLReader, WeightDecayKeys) throws -> any OptimizerSettings
    let render: @Sendable (any OptimizerSettings) -> [String]
    let make: @Sendable (any OptimizerSettings, Network, UInt64, Int) -> StepMethod

    /// `keys` are its own keys; `decays` adds the weight-decay keys. `parse` reads its own keys in
    /// order (the weight-decay keys were read already and come in `WeightDecayKeys`); `render`
    /// gives its resolved lines after `name` and `lr`; `make` builds it, as the step method that
    /// drives it (first-order or L-BFGS), from the network, the seed and the steps per epoch.
    init<S: OptimizerSettings>(name: String, keys: [String], decays: Bool, defaultLR: Double? = nil,
                               parse: @escaping @Sendable (TOMLReader, WeightDecayKeys) throws -> S,
                               render: @escaping @Sendable (S) -> [String],
                               make: @escaping @Sendable (S, Network, UInt64, Int) -> StepMethod) {
        self.name = name
        self.keys = keys + (decays ? WeightDecayKeys.names : [])
        self.defaultLR = defaultLR
        self.parse = { try parse($0, $1) }
        self.render = { render($0 as? S ?? S()) }
        self.make = { make($0 as? S ?? S(), $1, $2, $3) }
    }
}

/// `weight_decay` and `decay_biases` (docs/algorithms.md §1.2): read, stored and rendered the
/// same way for every optimizer that decays.
struct WeightDecayKeys {
    static let names = ["weight_decay", "decay_biases"]
    var weightDecay: Double
    var decayBiases: Bool

    init(_ o: TOMLReader) throws {
        weightDecay = try o.double("weight_decay", default: 0, min: 0)
        decayBiases = try o.bool("decay_biases", default: false)
    }

    func apply<S: WeightDecaySettings>(to settings: inout S) {
        settings.weightDecay = weightDecay
        settings.decayBiases = decayBiases
    }

    static func lines(_ settings: some WeightDecaySettings) -> [String] {
        ["weight_decay = \(settings.weightDecay)", "decay_biases = \(settings.decayBiases)"]
    }
}
