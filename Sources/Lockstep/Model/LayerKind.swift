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
}

extension LayerKind {
    public static var isSpatial: Bool { false }
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
    ]

    /// The kind whose `type` is `type`, if any.
    public static func named(_ type: String) -> (any LayerKind.Type)? {
        all.first { $0.type == type }
    }
}

/// What a descriptor's `build` gets from the network being built: where the entry is (for
/// messages), the layer names handed out so far, and the network's backward progress.
public final class LayerBuilder {
    /// The entry's index in `model.layers`.
    public internal(set) var index = 0
    /// What the entry reads, for messages: "the dataset's sample" or "the output of model.layers.N".
    public internal(set) var previous = "the dataset's sample"
    /// Handed to layers whose backward is long enough to report progress (Conv2d).
    public let progress: BackwardProgress
    private var counts: [String: Int] = [:]

    init(progress: BackwardProgress) {
        self.progress = progress
    }

    /// The entry's job key, "model.layers.N".
    public var key: String { "model.layers.\(index)" }

    /// The next name for a layer of `prefix`: each prefix is numbered on its own ("dense0",
    /// "conv0", "relu0", ...), so a dense-only network keeps the names (and checkpoint paths) it
    /// always had.
    public func name(_ prefix: String) -> String {
        defer { counts[prefix, default: 0] += 1 }
        return "\(prefix)\(counts[prefix, default: 0])"
    }
}
