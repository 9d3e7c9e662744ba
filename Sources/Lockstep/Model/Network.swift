// A feed-forward network: an ordered list of layers over one flat parameter buffer and one flat
// gradient buffer, with activation buffers sized once for the largest batch it will see.

/// What the job file says about one layer.
public struct LayerSpec: Equatable, Sendable {
    public enum Activation: String, Sendable, CaseIterable { case relu, identity }
    public var type: String          // "dense" (the only kind so far)
    public var units: Int
    public var activation: Activation
    public init(type: String = "dense", units: Int, activation: Activation) {
        self.type = type
        self.units = units
        self.activation = activation
    }
}

/// One parameter tensor's place in the flat buffers.
public struct ParameterView: Sendable {
    public let layer: String
    public let spec: ParameterSpec
    public let offset: Int
    public var count: Int { spec.count }
    /// Checkpoint path, e.g. "dense0/weight".
    public var path: String { "\(layer)/\(spec.name)" }
}

public final class Network {
    public let layers: [any Layer]
    public let inputWidth: Int
    public let classes: Int
    public let views: [ParameterView]
    public let parameterCount: Int
    /// All parameters, contiguous.
    public let parameters: FloatBuffer
    /// All gradients, contiguous, followed by `extraGradientSlots` slots that travel in the same
    /// allreduce (the trainer puts the loss sum there, so a step costs one collective).
    public let gradients: FloatBuffer

    private var capacity = 0
    private var activations: [FloatBuffer] = []
    private var scratch: [FloatBuffer] = []

    public init(inputWidth: Int, layers specs: [LayerSpec], extraGradientSlots: Int = 0) {
        var layers: [any Layer] = []
        var width = inputWidth
        var denseIndex = 0, reluIndex = 0
        for spec in specs {
            layers.append(Dense(name: "dense\(denseIndex)", inputs: width, outputs: spec.units,
                                initialization: spec.activation == .relu ? .he : .glorot))
            denseIndex += 1
            width = spec.units
            if spec.activation == .relu {
                layers.append(ReLU(name: "relu\(reluIndex)", width: width))
                reluIndex += 1
            }
        }
        self.layers = layers
        self.inputWidth = inputWidth
        classes = width

        var views: [ParameterView] = []
        var offset = 0
        for layer in layers {
            for spec in layer.parameterSpecs {
                views.append(ParameterView(layer: layer.name, spec: spec, offset: offset))
                offset += spec.count
            }
        }
        self.views = views
        parameterCount = offset
        parameters = FloatBuffer(count: offset)
        gradients = FloatBuffer(count: offset + extraGradientSlots)
        var layerOffset = 0
        for layer in layers {
            layer.bind(parameters: parameters.pointer + layerOffset, gradients: gradients.pointer + layerOffset)
            layerOffset += layer.parameterCount
        }
    }

    /// Initialises every layer from the job seed; each layer has its own stream so that adding a
    /// layer does not change the others' initial values.
    public func initialize(seed: UInt64) {
        for (index, layer) in layers.enumerated() {
            var rng = Xoshiro256(seed: seed, stream: 0x1417_0000 + UInt64(index))
            layer.initialize(&rng)
        }
    }

    /// Sizes activation buffers for batches of up to `batch` rows. Call once, before the loop.
    public func reserve(batch: Int) {
        guard batch > capacity else { return }
        capacity = batch
        activations = layers.map { FloatBuffer(count: batch * $0.outputWidth) }
        let widest = max(inputWidth, layers.map(\.outputWidth).max() ?? 0)
        scratch = [FloatBuffer(count: batch * widest), FloatBuffer(count: batch * widest)]
    }

    /// Runs the batch forward; returns the logits [batch, classes] (valid until the next call).
    @discardableResult
    public func forward(_ input: UnsafePointer<Float>, batch: Int) -> UnsafeMutablePointer<Float> {
        precondition(batch <= capacity, "Network.reserve(batch:) was not called for this batch size")
        var x = input
        for (i, layer) in layers.enumerated() {
            layer.forward(x: x, y: activations[i].pointer, batch: batch)
            x = UnsafePointer(activations[i].pointer)
        }
        return activations[layers.count - 1].pointer
    }

    /// Backpropagates dL/dlogits through the batch last seen by `forward`, writing (or adding to,
    /// when `accumulate`) the gradient buffer. `dlogits` may be the logits buffer itself.
    public func backward(_ input: UnsafePointer<Float>, dlogits: UnsafePointer<Float>, batch: Int, accumulate: Bool) {
        var dy = dlogits
        for i in stride(from: layers.count - 1, through: 0, by: -1) {
            let x = i == 0 ? input : UnsafePointer(activations[i - 1].pointer)
            let dx: UnsafeMutablePointer<Float>? = i == 0 ? nil : scratch[i % 2].pointer
            layers[i].backward(x: x, y: activations[i].pointer, dy: dy, dx: dx, batch: batch, accumulate: accumulate)
            if let dx { dy = UnsafePointer(dx) }
        }
    }

    /// A scratch buffer for dL/dlogits of up to `reserve`d rows.
    public var logitGradient: UnsafeMutablePointer<Float> {
        precondition(capacity > 0, "Network.reserve(batch:) must be called before training")
        return scratch[layers.count % 2].pointer
    }

    /// Checksum of the parameters, compared across ranks after init and after resume.
    public var parameterChecksum: UInt64 {
        var h = FNV1a64()
        h.add(UnsafeBufferPointer(parameters.buffer))
        return h.value
    }
}
