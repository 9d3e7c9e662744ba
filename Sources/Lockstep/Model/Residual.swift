// A residual block (He et al.): y = ReLU(F(x) + S(x)), where F is the block's main path and the
// shortcut S is the identity or, when F changes the shape, a 1×1 convolution with F's stride
// followed by BatchNorm ("projection", torchvision's `downsample`). Two forms in a job:
//
//   { type = "residual", channels = C, stride = s }   the basic block: conv3×3 (stride s, no bias)
//       – BN+ReLU – conv3×3 (no bias) – BN (γ = 0 at start with `zero_init_last`, as Goyal et
//       al.), projection when s ≠ 1 or C differs from the input's channels;
//   { type = "residual", layers = [ ... ], shortcut = "identity" | "projection" }   any main path.
//
// The block is a composite layer: its children (main path, then shortcut) are laid out and named
// under it ("block0/conv1/weight", "block0/shortcut_conv/weight"), and it runs them itself,
// holding the activations between them (sized by `reserve`).

public final class Residual: Layer {
    public let name: String
    public let inputWidth: Int
    public let outputWidth: Int
    public var parameterSpecs: [ParameterSpec] { [] }
    /// The main path, in order.
    public let main: [any Layer]
    /// The projection shortcut (conv, then BN), or empty for the identity.
    public let shortcut: [any Layer]
    public var children: [any Layer] { main + shortcut }

    /// Each main child's output (the last is F(x), kept apart from y so its layer's backward can
    /// read it), and the shortcut's two.
    private var outputs: [FloatBuffer] = []
    private var shortcutOutputs: [FloatBuffer] = []
    /// dL/d(F(x) + S(x)), two ping-pong gradients for the main path, and the shortcut's.
    private var sumGradient: FloatBuffer?
    private var pingPong: [FloatBuffer] = []
    private var shortcutGradient: FloatBuffer?
    private var shortcutInputGradient: FloatBuffer?

    public init(name: String, main: [any Layer], shortcut: [any Layer]) {
        precondition(!main.isEmpty, "a residual block needs a main path")
        precondition(shortcut.isEmpty || shortcut.count == 2, "the projection is a conv and a BatchNorm")
        self.name = name
        self.main = main
        self.shortcut = shortcut
        inputWidth = main[0].inputWidth
        outputWidth = main[main.count - 1].outputWidth
        precondition(shortcut.isEmpty ? inputWidth == outputWidth : shortcut[1].outputWidth == outputWidth,
                     "\(name): the shortcut's output must match the main path's")
    }

    public func bind(parameters: UnsafeMutablePointer<Float>, gradients: UnsafeMutablePointer<Float>) {}
    public func initialize(_ rng: inout Xoshiro256) {}

    private var widest: Int { (main + shortcut).map { max($0.inputWidth, $0.outputWidth) }.max() ?? 0 }

    public var workFloatsPerSample: Int {
        main.map(\.outputWidth).reduce(0, +) + 2 * widest + outputWidth
            + (shortcut.isEmpty ? 0 : shortcut[0].outputWidth * 2 + outputWidth + inputWidth)
    }

    public func reserve(batch: Int) {
        guard batch > (sumGradient?.count ?? 0) / max(outputWidth, 1) else { return }
        outputs = main.map { FloatBuffer(count: batch * $0.outputWidth) }
        shortcutOutputs = shortcut.map { FloatBuffer(count: batch * $0.outputWidth) }
        sumGradient = FloatBuffer(count: batch * outputWidth)
        pingPong = [FloatBuffer(count: batch * widest), FloatBuffer(count: batch * widest)]
        if !shortcut.isEmpty {
            shortcutGradient = FloatBuffer(count: batch * shortcut[0].outputWidth)
            shortcutInputGradient = FloatBuffer(count: batch * inputWidth)
        }
    }

    public func forward(x: UnsafePointer<Float>, y: UnsafeMutablePointer<Float>, batch: Int, mode: LayerMode) {
        var input = x
        for (i, layer) in main.enumerated() {
            layer.forward(x: input, y: outputs[i].pointer, batch: batch, mode: mode)
            input = UnsafePointer(outputs[i].pointer)
        }
        var skip = x
        if !shortcut.isEmpty {
            shortcut[0].forward(x: x, y: shortcutOutputs[0].pointer, batch: batch, mode: mode)
            shortcut[1].forward(x: shortcutOutputs[0].pointer, y: shortcutOutputs[1].pointer, batch: batch, mode: mode)
            skip = UnsafePointer(shortcutOutputs[1].pointer)
        }
        for i in 0..<(batch * outputWidth) { y[i] = max(input[i] + skip[i], 0) }
    }

    public func backward(x: UnsafePointer<Float>, y: UnsafePointer<Float>, dy: UnsafePointer<Float>,
                         dx: UnsafeMutablePointer<Float>?, batch: Int, accumulate: Bool) {
        guard let sumGradient else { preconditionFailure("\(name): Network.reserve(batch:) was not called") }
        let dz = sumGradient.pointer
        for i in 0..<(batch * outputWidth) { dz[i] = y[i] > 0 ? dy[i] : 0 }
        // The main path, backwards; its input gradient lands in dx.
        var upstream = UnsafePointer(dz)
        for i in stride(from: main.count - 1, through: 0, by: -1) {
            let input = i == 0 ? x : UnsafePointer(outputs[i - 1].pointer)
            let output = UnsafePointer(outputs[i].pointer)
            let down = i == 0 ? dx : pingPong[i % 2].pointer
            main[i].backward(x: input, y: output, dy: upstream, dx: down, batch: batch, accumulate: accumulate)
            if let down { upstream = UnsafePointer(down) }
        }
        guard !shortcut.isEmpty else {
            if let dx { for i in 0..<(batch * inputWidth) { dx[i] += dz[i] } }
            return
        }
        let (conv, bn) = (shortcut[0], shortcut[1])
        bn.backward(x: shortcutOutputs[0].pointer, y: shortcutOutputs[1].pointer, dy: dz,
                    dx: shortcutGradient!.pointer, batch: batch, accumulate: accumulate)
        let skipGradient: UnsafeMutablePointer<Float>? = dx == nil ? nil : shortcutInputGradient!.pointer
        conv.backward(x: x, y: shortcutOutputs[0].pointer, dy: shortcutGradient!.pointer, dx: skipGradient,
                      batch: batch, accumulate: accumulate)
        if let dx, let skipGradient { for i in 0..<(batch * inputWidth) { dx[i] += skipGradient[i] } }
    }
}

extension Residual {
    /// The `residual` entry: the basic block (`channels`, `stride`) or a main path of its own (`layers`).
    public struct Kind: LayerKind {
        public static let type = "residual"
        public static var isSpatial: Bool { true }

        public enum Form: Equatable, Sendable {
            /// conv3×3(stride)–BN–ReLU–conv3×3–BN, projection when the shape changes.
            case basic(channels: Int, stride: Int, zeroInitLast: Bool)
            /// Any main path, with the shortcut the job names.
            case layers([LayerSpec], projection: Bool)
        }

        public enum Shortcut: String, CaseIterable, Sendable { case identity, projection }

        public var form: Form
        /// The block's own BatchNorms (the basic block's two, and any projection's).
        public var norm: BatchNorm.Kind

        public init(form: Form, norm: BatchNorm.Kind = BatchNorm.Kind()) {
            self.form = form
            self.norm = norm
        }

        /// The basic block.
        public static func basic(channels: Int, stride: Int = 1, group: Int = 32, zeroInitLast: Bool = true,
                                 statistics: BatchNorm.Statistics = .group) -> Kind {
            Kind(form: .basic(channels: channels, stride: stride, zeroInitLast: zeroInitLast),
                 norm: BatchNorm.Kind(statistics: statistics, group: group))
        }

        public init(_ l: TOMLReader, isLast: Bool) throws {
            let statistics = try l.choice("bn_stats", default: BatchNorm.Statistics.group)
            let group = statistics == .group ? try l.int("bn_group", default: 32, min: 1) : 32
            norm = BatchNorm.Kind(statistics: statistics, group: group)
            if l.has("layers") {
                if l.has("channels") || l.has("stride") || l.has("zero_init_last") {
                    throw LockstepError.usage("\(l.prefix): a block gives either layers = [...] or channels/stride/zero_init_last, not both: drop one")
                }
                let entries = try l.tables("layers")
                guard !entries.isEmpty else {
                    throw LockstepError.usage("\(l.prefix).layers: empty: list the block's main path, e.g. [{ type = \"conv2d\", channels = 16, kernel = 3, padding = 1 }]")
                }
                let specs = try entries.map { try LayerSpec($0, isLast: false) }
                form = .layers(specs, projection: try l.choice("shortcut", default: Shortcut.identity) == .projection)
            } else {
                form = .basic(channels: try l.int("channels", min: 1), stride: try l.int("stride", default: 1, min: 1),
                              zeroInitLast: try l.bool("zero_init_last", default: true))
            }
        }

        public func resolvedKeys(quote: (String) -> String) -> String {
            let norms = "bn_stats = \(quote(norm.statistics.rawValue))" + (norm.statistics == .group ? ", bn_group = \(norm.group)" : "")
            switch form {
            case let .basic(channels, stride, zeroInitLast):
                return "channels = \(channels), stride = \(stride), zero_init_last = \(zeroInitLast), \(norms)"
            case let .layers(specs, projection):
                let inner = specs.map { spec -> String in
                    let keys = spec.kind.resolvedKeys(quote: quote)
                    return "{ type = \(quote(spec.type))\(keys.isEmpty ? "" : ", " + keys) }"
                }
                return "layers = [\(inner.joined(separator: ", "))], shortcut = \(quote(projection ? "projection" : "identity")), \(norms)"
            }
        }

        public var batchNorms: [(key: String, kind: BatchNorm.Kind)] {
            switch form {
            case .basic: return [(".bn_group", norm)]
            case let .layers(specs, projection):
                let inner = specs.enumerated().flatMap { index, spec in
                    spec.kind.batchNorms.map { (".layers.\(index)" + $0.key, $0.kind) }
                }
                return inner + (projection ? [(".bn_group", norm)] : [])
            }
        }

        public func parameterCount(input: [Int]) -> Int? {
            // Counted on the layers themselves (they allocate nothing until the network binds
            // them); a shape that does not fit is left for `build` to report.
            let builder = LayerBuilder(progress: BackwardProgress(), pass: PassContext(), communicator: nil)
            guard let built = try? build(input: input, with: builder) else { return 0 }
            var total = 0
            for layer in NetworkLayout([built.layer]).views {
                let (sum, overflow) = total.addingReportingOverflow(layer.count)
                if overflow { return nil }
                total = sum
            }
            return total
        }

        public func build(input: [Int], with builder: LayerBuilder) throws -> (layer: any Layer, output: [Int]) {
            let key = builder.key
            let image = try builder.image(from: input, type: Self.type, kernel: 1, padding: 0)
            let blockName = builder.name("block")
            let main: [any Layer]
            let output: ImageShape
            let project: Bool
            switch form {
            case let .basic(channels, stride, zeroInitLast):
                let conv1 = Conv2d(name: "conv1", input: image, channels: channels, kernel: 3, stride: stride, padding: 1,
                                   initialization: .he, bias: false, progress: builder.progress, workspace: builder.convolution)
                var second = norm
                second.zeroInit = zeroInitLast
                var first = norm
                first.relu = true
                let bn1 = try first.make(name: "bn1", channels: channels, plane: conv1.output.plane, key: key + ".bn_group", builder: builder)
                let conv2 = Conv2d(name: "conv2", input: conv1.output, channels: channels, kernel: 3, stride: 1, padding: 1,
                                   initialization: .he, bias: false, progress: builder.progress, workspace: builder.convolution)
                let bn2 = try second.make(name: "bn2", channels: channels, plane: conv2.output.plane, key: key + ".bn_group", builder: builder)
                main = [conv1, bn1, conv2, bn2]
                output = conv2.output
                project = stride != 1 || channels != image.channels
            case let .layers(specs, projection):
                let inner = builder.nested()
                let built = try inner.sequence(specs, input: image.dimensions)
                main = built.layers
                let last = built.shapes[built.shapes.count - 1]
                guard last.count == 3 else {
                    throw LockstepError.usage("\(key).layers: the block's main path ends in shape \(last), not an image: end it with a conv2d or pool, or use a dense layer after the block")
                }
                output = ImageShape(channels: last[0], height: last[1], width: last[2])
                project = projection
                if !projection && output != image {
                    throw LockstepError.usage("\(key).shortcut: the main path turns \(image) into \(output), so the identity shortcut cannot be added: set shortcut = \"projection\" or keep the shape")
                }
            }
            var shortcut: [any Layer] = []
            if project {
                // The 1×1 conv whose stride lands on the main path's output size.
                guard let stride = (1...max(image.height, 1)).first(where: {
                    ImageShape.windows(size: image.height, kernel: 1, stride: $0, padding: 0) == output.height
                        && ImageShape.windows(size: image.width, kernel: 1, stride: $0, padding: 0) == output.width
                }) else {
                    throw LockstepError.usage("\(key): no 1×1 convolution stride turns \(image) into the main path's \(output): keep the block's downsampling to a stride (e.g. a conv with stride 2)")
                }
                let conv = Conv2d(name: "shortcut_conv", input: image, channels: output.channels, kernel: 1, stride: stride, padding: 0,
                                  initialization: .he, bias: false, progress: builder.progress, workspace: builder.convolution)
                let bn = try norm.make(name: "shortcut_bn", channels: output.channels, plane: output.plane, key: key + ".bn_group", builder: builder)
                shortcut = [conv, bn]
            }
            return (Residual(name: blockName, main: main, shortcut: shortcut), output.dimensions)
        }
    }
}
