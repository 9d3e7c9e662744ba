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

/// A layer of a feed-forward network. Inputs and outputs are [batch, width] row-major matrices.
public protocol Layer: AnyObject {
    /// Unique within the network, e.g. "dense0"; names the checkpoint group.
    var name: String { get }
    var inputWidth: Int { get }
    var outputWidth: Int { get }
    var parameterSpecs: [ParameterSpec] { get }

    /// Points the layer at its slices of the flat parameter and gradient buffers (in spec order).
    func bind(parameters: UnsafeMutablePointer<Float>, gradients: UnsafeMutablePointer<Float>)
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
    public var parameterCount: Int { parameterSpecs.reduce(0) { $0 + $1.count } }
}
