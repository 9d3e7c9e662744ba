// The layer protocol: explicit forward and backward over a batch of row-major samples, with the
// layer's parameters and gradients living inside the network's two flat buffers.

/// One parameter tensor of a layer, as the layer declares it.
public struct ParameterSpec: Equatable, Sendable {
    public let name: String        // "weight", "bias"
    public let shape: [Int]
    /// Whether weight decay (and, later, trust ratios) apply: true for weights, false for biases.
    public let isWeight: Bool
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
public protocol Layer: AnyObject {
    /// Unique within the network, e.g. "dense0"; names the checkpoint group.
    var name: String { get }
    var inputWidth: Int { get }
    var outputWidth: Int { get }
    var parameterSpecs: [ParameterSpec] { get }

    /// Points the layer at its slices of the flat parameter and gradient buffers (in spec order).
    func bind(parameters: UnsafeMutablePointer<Float>, gradients: UnsafeMutablePointer<Float>)
    /// Sizes the layer's own work buffers for batches of up to `batch` rows (called by
    /// `Network.reserve`, never per step). Most layers have none.
    func reserve(batch: Int)
    /// Fills the layer's parameters from the job's generator (never rank-local entropy).
    func initialize(_ rng: inout Xoshiro256)
    /// y[batch, out] = f(x[batch, in]).
    func forward(x: UnsafePointer<Float>, y: UnsafeMutablePointer<Float>, batch: Int)
    /// Given dL/dy, writes dL/dx (when `dx` is non-nil) and writes, or adds to when `accumulate`,
    /// the parameter gradients.
    func backward(x: UnsafePointer<Float>, y: UnsafePointer<Float>, dy: UnsafePointer<Float>,
                  dx: UnsafeMutablePointer<Float>?, batch: Int, accumulate: Bool)
}

extension Layer {
    public func reserve(batch: Int) {}
    public var parameterCount: Int { parameterSpecs.reduce(0) { $0 + $1.count } }
}
