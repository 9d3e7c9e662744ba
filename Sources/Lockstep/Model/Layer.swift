// The layer protocol: explicit forward and backward over a batch of row-major samples, with the
// layer's parameters and gradients living inside the network's two flat buffers, its
// non-trainable state (running statistics) inside a third, and, for composite layers (a residual
// block), child layers whose tensors the network lays out and names under the parent
// (docs/design.md §4).

/// Whether a forward pass is for training (batch statistics, dropout) or for evaluation
/// (running statistics, no randomness). Layers without such a difference ignore it.
public enum LayerMode: Sendable {
    case train, eval
}

/// One parameter tensor of a layer, as the layer declares it.
public struct ParameterSpec: Equatable, Sendable {
    public let name: String        // "weight", "bias"
    public let shape: [Int]
    /// Whether weight decay (and, later, trust ratios) apply: true for weights, false for biases.
    public let isWeight: Bool
    public var count: Int { shape.reduce(1, *) }
}

/// One non-trainable state tensor of a layer (BatchNorm's running mean, say): saved in
/// checkpoints and restored on resume like a parameter, but never seen by the optimizer, the
/// gradient exchange or weight decay.
public struct StateSpec: Equatable, Sendable {
    public let name: String        // "running_mean"
    public let shape: [Int]
    public init(name: String, shape: [Int]) {
        self.name = name
        self.shape = shape
    }
    public var count: Int { shape.reduce(1, *) }
}

/// One sample of an image batch, channels × height × width. A sample is still one row of
/// `count` floats, stored C-major (NCHW per sample, as PyTorch does), so a dense layer after a
/// convolution reads exactly what `torch.flatten(x, 1)` would give it: no Flatten layer needed.
public struct ImageShape: Equatable, Sendable, CustomStringConvertible {
    public let channels: Int
    public let height: Int
    public let width: Int
    public init(channels: Int, height: Int, width: Int) {
        self.channels = channels
        self.height = height
        self.width = width
    }
    /// Floats per sample.
    public var count: Int { channels * height * width }
    /// Floats per channel plane.
    public var plane: Int { height * width }
    public var dimensions: [Int] { [channels, height, width] }
    public var description: String { "\(dimensions)" }

    /// Output positions along one axis of a sliding window: ⌊(size + 2·padding − kernel) / stride⌋ + 1
    /// (0 when the window does not fit even once).
    public static func windows(size: Int, kernel: Int, stride: Int, padding: Int) -> Int {
        let span = size + 2 * padding - kernel
        return span < 0 ? 0 : span / stride + 1
    }
}

/// A layer of a feed-forward network. Inputs and outputs are [batch, width] row-major matrices.
/// Layers that see images (Conv2d, pooling) know their `ImageShape`s; the others only widths.
/// The network records every layer's per-sample shape (`Network.outputShapes`).
///
/// A composite layer lists its `children`; the network lays out and binds every layer of the
/// tree (a layer's own tensors first, then each child's, depth first) and names a child's tensors
/// under its parent ("block0/conv1/weight"). `bind`, `reserve` and `initialize` are called by the
/// network on every layer of the tree, each for its own tensors only; `forward` and `backward`
/// only on the top-level layers, so a composite runs its children itself.
public protocol Layer: AnyObject {
    /// Unique among its siblings, e.g. "dense0"; names the checkpoint group.
    var name: String { get }
    var inputWidth: Int { get }
    var outputWidth: Int { get }
    /// The layer's own trainable tensors (not its children's).
    var parameterSpecs: [ParameterSpec] { get }
    /// The layer's own non-trainable state tensors; none by default.
    var stateSpecs: [StateSpec] { get }
    /// The layers a composite layer is made of, in layout order; none by default.
    var children: [any Layer] { get }
    /// Floats of batch statistics the layer's training forward adds to over a step's passes
    /// (BatchNorm: its group count and per-channel sums of group means and variances). They
    /// travel in the step's one allreduce; `commitStatistics` then gets their sum over ranks.
    /// 0 by default.
    var statisticsCount: Int { get }
    /// Floats per sample the layer's own work buffers take (a residual block's activations
    /// between its children), for the memory check before `reserve`; 0 by default.
    var workFloatsPerSample: Int { get }

    /// Points the layer at its slices of the flat parameter and gradient buffers (in spec order).
    func bind(parameters: UnsafeMutablePointer<Float>, gradients: UnsafeMutablePointer<Float>)
    /// Points the layer at its slice of the flat state buffer (in `stateSpecs` order). Called
    /// only on layers with state.
    func bind(state: UnsafeMutablePointer<Float>)
    /// Points the layer at its slice of the network's batch statistics (`statisticsCount`
    /// floats, zeroed by the network at the start of each step). Called only on layers with some.
    func bind(statistics: UnsafeMutablePointer<Float>)
    /// The step's statistics summed over ranks, laid out as the layer wrote them: update the
    /// running state from them. Called once per step that is applied, on every rank alike.
    func commitStatistics(_ summed: UnsafePointer<Float>)
    /// Sizes the layer's own work buffers for batches of up to `batch` rows (called by
    /// `Network.reserve`, never per step). Most layers have none.
    func reserve(batch: Int)
    /// Fills the layer's parameters and state from the job's generator (never rank-local
    /// entropy). A child is initialised after its parent, from the same generator.
    func initialize(_ rng: inout Xoshiro256)
    /// y[batch, out] = f(x[batch, in]), for training or evaluation.
    func forward(x: UnsafePointer<Float>, y: UnsafeMutablePointer<Float>, batch: Int, mode: LayerMode)
    /// Given dL/dy, writes dL/dx (when `dx` is non-nil) and writes, or adds to when `accumulate`,
    /// the parameter gradients.
    func backward(x: UnsafePointer<Float>, y: UnsafePointer<Float>, dy: UnsafePointer<Float>,
                  dx: UnsafeMutablePointer<Float>?, batch: Int, accumulate: Bool)
}

extension Layer {
    public var stateSpecs: [StateSpec] { [] }
    public var children: [any Layer] { [] }
    public func bind(state: UnsafeMutablePointer<Float>) {}
    public var statisticsCount: Int { 0 }
    public var workFloatsPerSample: Int { 0 }
    public func bind(statistics: UnsafeMutablePointer<Float>) {}
    public func commitStatistics(_ summed: UnsafePointer<Float>) {}
    public func reserve(batch: Int) {}
    /// The layer's own parameters (not its children's).
    public var parameterCount: Int { parameterSpecs.reduce(0) { $0 + $1.count } }
    /// The layer's own state floats (not its children's).
    public var stateCount: Int { stateSpecs.reduce(0) { $0 + $1.count } }
    /// A training-mode forward, for callers that drive one layer on its own (tests, tools).
    public func forward(x: UnsafePointer<Float>, y: UnsafeMutablePointer<Float>, batch: Int) {
        forward(x: x, y: y, batch: batch, mode: .train)
    }
}
