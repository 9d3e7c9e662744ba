// A feed-forward network: an ordered list of layers over one flat parameter buffer and one flat
// gradient buffer, with activation buffers sized once for the largest batch it will see.

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
    /// One sample's shape as the data gives it, e.g. [28, 28]; `inputWidth` is its product.
    public let inputShape: [Int]
    public let inputWidth: Int
    /// Per-sample output shape of each layer ([units], or [C, H, W] after a conv or pool), in
    /// `layers` order; layer i reads `inputShape` (i = 0) or `outputShapes[i − 1]`.
    public let outputShapes: [[Int]]
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

    /// Builds the layers for samples of `inputShape` (a dataset's sample shape: [width], or an
    /// image [H, W] or [C, H, W]). Throws a usage error naming the job key when a layer does not
    /// fit its input (a conv on flat samples, a kernel larger than the image).
    public init(inputShape: [Int], layers specs: [LayerSpec], extraGradientSlots: Int = 0) throws {
        var layers: [any Layer] = []
        var shapes: [[Int]] = []
        var shape = inputShape
        // Each kind is numbered on its own ("dense0", "conv0", "relu0", ...), so a dense-only
        // network keeps the names (and checkpoint paths) it always had.
        var counts: [String: Int] = [:]
        func name(_ kind: String) -> String {
            defer { counts[kind, default: 0] += 1 }
            return "\(kind)\(counts[kind, default: 0])"
        }
        // Sizes come from the job: count them with checked arithmetic before any layer allocates.
        var parameterTotal = 0
        var largest = (index: 0, count: 0)
        for (index, spec) in specs.enumerated() {
            let previous = index == 0 ? "the dataset's sample" : "the output of model.layers.\(index - 1)"
            let count = try Self.parameterCount(of: spec, input: shape, index: index, after: previous)
            guard !parameterTotal.addingReportingOverflow(count).overflow else {
                throw LockstepError.usage("model.layers: more parameters than this machine can address: use fewer units or channels")
            }
            parameterTotal += count
            if count > largest.count { largest = (index, count) }
            let initialization: Dense.Initialization = spec.activation == .relu ? .he : .glorot
            let layer: any Layer
            switch spec.type {
            case "dense":
                // Flattening is implicit: an image sample is already one row of C·H·W floats.
                layer = Dense(name: name("dense"), inputs: shape.reduce(1, *), outputs: spec.units,
                              initialization: initialization)
                shape = [spec.units]
            case "conv2d":
                let conv = Conv2d(name: name("conv"), input: try spec.image(from: shape, index: index, after: previous),
                                  channels: spec.channels, kernel: spec.kernel, stride: spec.stride,
                                  padding: spec.padding, initialization: initialization, progress: backwardProgress)
                layer = conv
                shape = conv.output.dimensions
            case "maxpool":
                let pool = MaxPool2d(name: name("maxpool"), input: try spec.image(from: shape, index: index, after: previous),
                                     kernel: spec.kernel, stride: spec.stride)
                layer = pool
                shape = pool.window.output.dimensions
            case "avgpool":
                let pool = AvgPool2d(name: name("avgpool"), input: try spec.image(from: shape, index: index, after: previous),
                                     kernel: spec.kernel, stride: spec.stride)
                layer = pool
                shape = pool.window.output.dimensions
            default:
                preconditionFailure("unknown layer type \(spec.type) (Job validates types)")
            }
            layers.append(layer)
            shapes.append(shape)
            if spec.activation == .relu {
                layers.append(ReLU(name: name("relu"), width: layer.outputWidth))
                shapes.append(shape)
            }
        }
        // Parameters and gradients (the optimizer's state comes on top).
        try MemoryBudget.require(count: MemoryBudget.product([parameterTotal, 2]), elementSize: MemoryLayout<Float>.size,
                                 for: "the model's \(parameterTotal) parameters (model.layers.\(largest.index) has \(largest.count))",
                                 fix: "use fewer units or channels in model.layers.\(largest.index)")
        let width = shape.reduce(1, *)
        self.layers = layers
        self.inputShape = inputShape
        self.inputWidth = inputShape.reduce(1, *)
        outputShapes = shapes
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

    /// The trainable parameters `spec` will have on `input`, with checked arithmetic; a size no
    /// Int holds is a usage error naming the layer. Shapes that do not fit are the layers' to report.
    private static func parameterCount(of spec: LayerSpec, input shape: [Int], index: Int, after previous: String) throws -> Int {
        let tooLarge = LockstepError.usage("model.layers.\(index): \(spec.type) on \(previous) (shape \(shape)) has more parameters than this machine can address: use fewer units or channels")
        switch spec.type {
        case "dense":
            guard let inputs = MemoryBudget.product(shape), let weights = MemoryBudget.product([inputs, spec.units]),
                  !weights.addingReportingOverflow(spec.units).overflow else { throw tooLarge }
            return weights + spec.units
        case "conv2d":
            let inputChannels = shape.count == 3 ? shape[0] : 1
            guard let weights = MemoryBudget.product([spec.channels, inputChannels, spec.kernel, spec.kernel]),
                  !weights.addingReportingOverflow(spec.channels).overflow else { throw tooLarge }
            return weights + spec.channels
        default:
            return 0
        }
    }

    /// A network of dense layers over flat samples of `inputWidth` floats (which cannot fail).
    public convenience init(inputWidth: Int, layers specs: [LayerSpec], extraGradientSlots: Int = 0) {
        precondition(!specs.contains(where: \.isSpatial), "conv and pool layers need an image shape: use init(inputShape:)")
        try! self.init(inputShape: [inputWidth], layers: specs, extraGradientSlots: extraGradientSlots)
    }

    /// Initialises every layer from the job seed; each layer has its own stream so that adding a
    /// layer does not change the others' initial values.
    public func initialize(seed: UInt64) {
        for (index, layer) in layers.enumerated() {
            var rng = Xoshiro256(seed: seed, stream: 0x1417_0000 + UInt64(index))
            layer.initialize(&rng)
        }
    }

    /// Floats `reserve(batch:)` allocates per row (activations and the two scratch rows), or nil
    /// if that overflows: what a run checks against the node's memory before reserving.
    public var activationFloatsPerSample: Int? {
        let widest = max(inputWidth, layers.map(\.outputWidth).max() ?? 0)
        var total = 0
        for w in layers.map(\.outputWidth) + [widest, widest] {
            let (sum, overflow) = total.addingReportingOverflow(w)
            if overflow { return nil }
            total = sum
        }
        return total
    }

    /// Sizes activation buffers (and the layers' own work buffers) for batches of up to `batch` rows. Call once, before the loop.
    public func reserve(batch: Int) {
        guard batch > capacity else { return }
        capacity = batch
        for layer in layers { layer.reserve(batch: batch) }
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

    /// Called after each layer's backward with the layer's index (the bucketed exchange starts
    /// a bucket's allreduce once its layers are done). Set once; calling it allocates nothing.
    var layerFinishedBackward: ((Int) -> Void)?

    /// What layers report during their own backward (BackwardProgress); every layer that takes
    /// long enough to matter is built with it.
    public let backwardProgress = BackwardProgress()

    /// Backpropagates dL/dlogits through the batch last seen by `forward`, writing (or adding to,
    /// when `accumulate`) the gradient buffer. `dlogits` may be the logits buffer itself.
    public func backward(_ input: UnsafePointer<Float>, dlogits: UnsafePointer<Float>, batch: Int, accumulate: Bool) {
        var dy = dlogits
        for i in stride(from: layers.count - 1, through: 0, by: -1) {
            let x = i == 0 ? input : UnsafePointer(activations[i - 1].pointer)
            let dx: UnsafeMutablePointer<Float>? = i == 0 ? nil : scratch[i % 2].pointer
            layers[i].backward(x: x, y: activations[i].pointer, dy: dy, dx: dx, batch: batch, accumulate: accumulate)
            layerFinishedBackward?(i)
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
