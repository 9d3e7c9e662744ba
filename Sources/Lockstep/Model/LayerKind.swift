// The layer kinds a job can name (`[model] layers`, `type = "..."`), each described once: a
// descriptor per kind reads its TOML keys, renders them resolved, counts its parameters and
// builds the layer. A new kind is its layer's file (with its descriptor) plus one line in
// `LayerKinds.all` (docs/design.md §4).

/// What one `[model] layers` entry of a kind says, and how to turn it into a layer.
public protocol LayerKind: Equatable, Sendable {
    /// The entry's `type`, e.g. "dense"; unique among `LayerKinds.all`.
    static var type: String { get }
    /// Whether the layer slides a window over an image (and so needs an image input); false by default.
    static var isSpatial: Bool { get }
    /// Reads the kind's keys from one entry, `l` (its `type` is read already, and any key left
    /// unread is refused afterwards). `isLast`: the entry gives the class scores.
    init(_ l: TOMLReader, isLast: Bool) throws
    /// Applied after the layer, as a layer of its own; identity by default.
    var activation: LayerSpec.Activation { get }
    /// The entry's keys after `type`, resolved, as inline-table TOML (`quote` makes a TOML string):
    /// exactly the keys `init(_:isLast:)` reads, so the rendering is itself a valid entry.
    func resolvedKeys(quote: (String) -> String) -> String
    /// The trainable parameters the layer will have on per-sample shape `input`, with checked
    /// arithmetic (nil: no Int holds them); counted before anything is allocated. 0 by default.
    func parameterCount(input: [Int]) -> Int?
    /// Builds the layer for per-sample shape `input`, returning it and its per-sample output
    /// shape. A shape that does not fit is a usage error naming the job key (`builder.key`).
    func build(input: [Int], with builder: LayerBuilder) throws -> (layer: any Layer, output: [Int])
    /// The BatchNorm layers the entry makes, each with the key suffix that sets its group
    /// (".group", ".bn_group", ".layers.2.group"), so a job can check them against its batch
    /// shape before anything is built. None by default.
    var batchNorms: [(key: String, kind: BatchNorm.Kind)] { get }
}

extension LayerKind {
    public static var isSpatial: Bool { false }
    public var batchNorms: [(key: String, kind: BatchNorm.Kind)] { [] }
    public var activation: LayerSpec.Activation { .identity }
    public func parameterCount(input: [Int]) -> Int? { 0 }
}

/// Every kind a job can name, in the order error messages list them.
public enum LayerKinds {
    public static let all: [any LayerKind.Type] = [
        Dense.Kind.self,
        Conv2d.Kind.self,
        MaxPool2d.Kind.self,
        AvgPool2d.Kind.self,
        BatchNorm.Kind.self,
        GlobalAvgPool.Kind.self,
        Dropout.Kind.self,
        Residual.Kind.self,
    ]

    /// The kind whose `type` is `type`, if any.
    public static func named(_ type: String) -> (any LayerKind.Type)? {
        all.first { $0.type == type }
    }
}

/// What a descriptor's `build` gets from the network being built: where the entry is (for
/// messages), the layer names handed out so far, the network's backward progress, pass context
/// and convolution workspace, and the communicator (for layers whose statistics span ranks).
public final class LayerBuilder {
    /// The entry's index in its list of layers.
    public internal(set) var index = 0
    /// What the entry reads, for messages: "the dataset's sample" or "the output of model.layers.N".
    public internal(set) var previous = "the dataset's sample"
    /// Handed to layers whose backward is long enough to report progress (Conv2d).
    public let progress: BackwardProgress
    /// Handed to layers that draw per sample (Dropout).
    public let pass: PassContext
    /// Handed to every Conv2d, so the network's conv layers share one set of column buffers.
    public let convolution: ConvWorkspace
    /// The ranks training together (BatchNorm with `stats = "global"`); nil: one process alone.
    public let communicator: Communicator?
    /// The job key of the list being built: "model.layers", or "model.layers.3.layers" inside a block.
    public let list: String
    /// Where this builder's layers sit in the top-level network: the index there of the entry
    /// that holds them (nil at the top level, where it is `index`).
    private let topIndex: Int?
    private var counts: [String: Int] = [:]

    init(progress: BackwardProgress, pass: PassContext, communicator: Communicator?, convolution: ConvWorkspace = ConvWorkspace(),
         list: String = "model.layers", topIndex: Int? = nil) {
        self.progress = progress
        self.pass = pass
        self.convolution = convolution
        self.communicator = communicator
        self.list = list
        self.topIndex = topIndex
    }

    /// The entry's job key, "model.layers.N".
    public var key: String { "\(list).\(index)" }

    /// The top-level entry the layer being built belongs to (dropout keys its masks by it).
    public var topLevelIndex: Int { topIndex ?? index }

    /// A builder for the layers a composite entry lists (`layers = [...]`): its own names, keys
    /// under the entry's.
    public func nested() -> LayerBuilder {
        LayerBuilder(progress: progress, pass: pass, communicator: communicator, convolution: convolution,
                     list: key + ".layers", topIndex: topLevelIndex)
    }

    /// The next name for a layer of `prefix`: each prefix is numbered on its own ("dense0",
    /// "conv0", "relu0", ...), so a dense-only network keeps the names (and checkpoint paths) it
    /// always had.
    public func name(_ prefix: String) -> String {
        defer { counts[prefix, default: 0] += 1 }
        return "\(prefix)\(counts[prefix, default: 0])"
    }
}

extension LayerBuilder {
    /// Builds a list of entries on per-sample shape `input`, each through its kind's descriptor,
    /// with a ReLU layer after each entry whose activation is "relu". Counts the parameters with
    /// checked arithmetic before any layer allocates (a usage error names the entry when no Int
    /// holds them). Returns the layers, each one's per-sample output shape, the parameter total
    /// and the entry with the most.
    public func sequence(_ specs: [LayerSpec], input: [Int]) throws
        -> (layers: [any Layer], shapes: [[Int]], parameters: Int, largest: (index: Int, count: Int)) {
        var layers: [any Layer] = []
        var shapes: [[Int]] = []
        var shape = input
        var total = 0
        var largest = (index: 0, count: 0)
        for (index, spec) in specs.enumerated() {
            self.index = index
            previous = index == 0 ? (list == "model.layers" ? "the dataset's sample" : "the block's input") : "the output of \(list).\(index - 1)"
            guard let count = spec.kind.parameterCount(input: shape) else {
                throw LockstepError.usage("\(key): \(spec.type) on \(previous) (shape \(shape)) has more parameters than this machine can address: use fewer units or channels")
            }
            guard !total.addingReportingOverflow(count).overflow else {
                throw LockstepError.usage("\(list): more parameters than this machine can address: use fewer units or channels")
            }
            total += count
            if count > largest.count { largest = (index, count) }
            let (layer, output) = try spec.kind.build(input: shape, with: self)
            shape = output
            layers.append(layer)
            shapes.append(shape)
            if spec.activation == .relu {
                layers.append(ReLU(name: name("relu"), width: layer.outputWidth))
                shapes.append(shape)
            }
        }
        return (layers, shapes, total, largest)
    }
}
