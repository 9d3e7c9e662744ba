// A feed-forward network: an ordered list of layers over one flat parameter buffer, one flat
// gradient buffer and one flat state buffer (non-trainable tensors such as running statistics),
// with activation buffers sized once for the largest batch it will see. Layers may be composite
// (Layer.children); the buffers are laid out over the whole tree, depth first.

/// One parameter tensor's place in the flat buffers.
public struct ParameterView: Sendable {
    /// The owning layer's path: "dense0", or "block0/conv1" for a child of a composite layer.
    public let layer: String
    public let spec: ParameterSpec
    public let offset: Int
    /// The index in `Network.layers` of the top-level layer the tensor belongs to: its gradient
    /// is final once that layer's backward has run (`Network.layerFinishedBackward`).
    public let topLayer: Int
    public var count: Int { spec.count }
    /// Checkpoint path, e.g. "dense0/weight".
    public var path: String { "\(layer)/\(spec.name)" }
}

/// One state tensor's place in the flat state buffer.
public struct StateView: Sendable {
    /// The owning layer's path, as in ParameterView.
    public let layer: String
    public let spec: StateSpec
    public let offset: Int
    public var count: Int { spec.count }
    /// Checkpoint path (under /model, next to the parameters), e.g. "bn0/running_mean".
    public var path: String { "\(layer)/\(spec.name)" }
}

public final class Network {
    /// The top-level layers, in order (forward and backward run over these).
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
    /// Every layer's state tensors, contiguous, in the same tree order as the parameters (empty
    /// when no layer has state). Checkpointed, broadcast on resume and covered by
    /// `parameterChecksum` like the parameters; never exchanged or updated by the optimizer.
    public let state: FloatBuffer
    public let stateViews: [StateView]
    public var stateCount: Int { state.count }

    /// Each top-level layer with its descendants, depth first (the layer first): the order
    /// tensors are laid out, bound, reserved and initialised in.
    private let trees: [[any Layer]]
    private var capacity = 0
    private var activations: [FloatBuffer] = []
    private var scratch: [FloatBuffer] = []

    /// Builds the layers of a job's `[model] layers` for samples of `inputShape` (a dataset's
    /// sample shape: [width], or an image [H, W] or [C, H, W]), each through its kind's
    /// descriptor (LayerKind). Throws a usage error naming the job key when a layer does not fit
    /// its input (a conv on flat samples, a kernel larger than the image).
    public convenience init(inputShape: [Int], layers specs: [LayerSpec], extraGradientSlots: Int = 0,
                            communicator: Communicator? = nil) throws {
        let pass = PassContext()
        let builder = LayerBuilder(progress: BackwardProgress(), pass: pass, communicator: communicator)
        let built = try builder.sequence(specs, input: inputShape)
        // Parameters and gradients (the optimizer's state comes on top).
        let (total, largest) = (built.parameters, built.largest)
        try MemoryBudget.require(count: MemoryBudget.product([total, 2]), elementSize: MemoryLayout<Float>.size,
                                 for: "the model's \(total) parameters (model.layers.\(largest.index) has \(largest.count))",
                                 fix: "use fewer units or channels in model.layers.\(largest.index)")
        self.init(inputShape: inputShape, layers: built.layers, outputShapes: built.shapes, progress: builder.progress,
                  pass: pass, extraGradientSlots: extraGradientSlots)
    }

    /// A network over layers built already (tests, tools; a job goes through `init(inputShape:layers:)`
    /// with specs). `outputShapes` defaults to each layer's flat width; layers that report
    /// backward progress must have been built with `progress`. Every tensor path must be unique.
    public init(inputShape: [Int], layers: [any Layer], outputShapes: [[Int]]? = nil,
                progress: BackwardProgress = BackwardProgress(), pass: PassContext = PassContext(), extraGradientSlots: Int = 0) {
        self.layers = layers
        self.inputShape = inputShape
        self.inputWidth = inputShape.reduce(1, *)
        self.outputShapes = outputShapes ?? layers.map { [$0.outputWidth] }
        precondition(self.outputShapes.count == layers.count, "one output shape per layer")
        classes = layers.last?.outputWidth ?? inputShape.reduce(1, *)
        backwardProgress = progress
        self.pass = pass

        let layout = NetworkLayout(layers)
        trees = layout.trees
        views = layout.views
        stateViews = layout.stateViews
        parameterCount = layout.parameterCount
        parameters = FloatBuffer(count: layout.parameterCount)
        // The batch statistics ride after the slots, so the plain exchange carries them as they are.
        statisticsOffset = layout.parameterCount + extraGradientSlots
        statisticsCount = layout.statisticsCount
        gradients = FloatBuffer(count: statisticsOffset + statisticsCount)
        state = FloatBuffer(count: layout.stateCount)
        var statisticsLayers: [(layer: any Layer, offset: Int)] = []
        for (layer, at) in zip(trees.joined(), layout.offsets) {
            layer.bind(parameters: parameters.pointer + at.parameters, gradients: gradients.pointer + at.parameters)
            if layer.stateCount > 0 { layer.bind(state: state.pointer + at.state) }
            if layer.statisticsCount > 0 {
                layer.bind(statistics: gradients.pointer + statisticsOffset + at.statistics)
                statisticsLayers.append((layer, at.statistics))
            }
        }
        self.statisticsLayers = statisticsLayers
    }

    /// What the network's passes may need besides their input (Dropout's keys); set by the trainer.
    public let pass: PassContext

    /// Floats of batch statistics the layers add up over a step (0 without BatchNorm): they sit
    /// in `gradients` after the extra slots, at `statisticsOffset` (ExchangeLayout.statistics).
    public let statisticsCount: Int
    public let statisticsOffset: Int
    private let statisticsLayers: [(layer: any Layer, offset: Int)]

    /// The batch statistics this rank's passes have added up since `resetStatistics`.
    public var statistics: UnsafeMutablePointer<Float> { gradients.pointer + statisticsOffset }

    /// Zeroes the batch statistics: at the start of every step's passes.
    public func resetStatistics() {
        if statisticsCount > 0 { statistics.update(repeating: 0, count: statisticsCount) }
    }

    /// Hands each layer its part of a step's statistics summed over ranks (`summed`, laid out as
    /// `statistics`), which updates the running state. Once per applied step, on every rank.
    public func commitStatistics(_ summed: UnsafePointer<Float>) {
        for (layer, offset) in statisticsLayers { layer.commitStatistics(summed + offset) }
    }

    /// A network of dense layers over flat samples of `inputWidth` floats (which cannot fail).
    public convenience init(inputWidth: Int, layers specs: [LayerSpec], extraGradientSlots: Int = 0) {
        precondition(!specs.contains(where: \.isSpatial), "conv and pool layers need an image shape: use init(inputShape:)")
        try! self.init(inputShape: [inputWidth], layers: specs, extraGradientSlots: extraGradientSlots)
    }

    /// Initialises every layer from the job seed; each top-level layer has its own stream so
    /// that adding a layer does not change the others' initial values (a composite layer's
    /// children draw from its stream after it, depth first).
    public func initialize(seed: UInt64) {
        for (index, tree) in trees.enumerated() {
            var rng = Xoshiro256(seed: seed, stream: 0x1417_0000 + UInt64(index))
            for layer in tree { layer.initialize(&rng) }
        }
    }

    /// Every layer of the tree (composites' children included) of type `T`, in layout order.
    public func all<T>(_ type: T.Type) -> [T] { trees.joined().compactMap { $0 as? T } }

    /// Floats `reserve(batch:)` allocates per row (activations and the two scratch rows), or nil
    /// if that overflows: what a run checks against the node's memory before reserving.
    public var activationFloatsPerSample: Int? {
        let widest = max(inputWidth, layers.map(\.outputWidth).max() ?? 0)
        var total = 0
        for w in layers.map(\.outputWidth) + [widest, widest] + trees.joined().map(\.workFloatsPerSample) {
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
        for layer in trees.joined() { layer.reserve(batch: batch) }
        activations = layers.map { FloatBuffer(count: batch * $0.outputWidth) }
        let widest = max(inputWidth, layers.map(\.outputWidth).max() ?? 0)
        scratch = [FloatBuffer(count: batch * widest), FloatBuffer(count: batch * widest)]
    }

    /// Runs the batch forward, for training (the default) or for evaluation (`.eval`: layers
    /// with batch statistics use their running ones); returns the logits [batch, classes]
    /// (valid until the next call).
    @discardableResult
    public func forward(_ input: UnsafePointer<Float>, batch: Int, mode: LayerMode = .train) -> UnsafeMutablePointer<Float> {
        precondition(batch <= capacity, "Network.reserve(batch:) was not called for this batch size")
        var x = input
        for (i, layer) in layers.enumerated() {
            layer.forward(x: x, y: activations[i].pointer, batch: batch, mode: mode)
            x = UnsafePointer(activations[i].pointer)
        }
        return activations[layers.count - 1].pointer
    }

    /// Called after each top-level layer's backward with the layer's index (the bucketed
    /// exchange starts a bucket's allreduce once its layers are done; a composite's children
    /// report nothing of their own). Set once; calling it allocates nothing.
    var layerFinishedBackward: ((Int) -> Void)?

    /// What layers report during their own backward (BackwardProgress); every layer that takes
    /// long enough to matter is built with it.
    public let backwardProgress: BackwardProgress

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

    /// Checksum of the parameters, then the state (when there is any), compared across ranks
    /// after init and after resume.
    public var parameterChecksum: UInt64 {
        var h = FNV1a64()
        h.add(UnsafeBufferPointer(parameters.buffer))
        if state.count > 0 { h.add(UnsafeBufferPointer(state.buffer)) }
        return h.value
    }
}
