// Convolution and pooling: forward against a direct Float64 convolution, finite-difference gradient
// checks (in Float64, as GradientCheckTests) of Conv2d, MaxPool2d, AvgPool2d and a conv→pool→dense
// network, a batch in one pass or in chunks against its samples one at a time, the shapes a
// network builds from an image sample, and the [model] keys of a CNN job. The references live
// in ConvolutionReference.swift.
import Testing
import Lockstep
#if canImport(Glibc)
import Glibc
#endif

@Suite struct ConvolutionTests {
    /// A Conv2d bound to its own buffers and filled from the seed (biases non-zero).
    static func boundConv(_ conv: Conv2d, seed: UInt64) -> (FloatBuffer, FloatBuffer) {
        let params = FloatBuffer(count: conv.parameterCount), grads = FloatBuffer(count: conv.parameterCount)
        conv.bind(parameters: params.pointer, gradients: grads.pointer)
        var rng = Xoshiro256(seed: seed)
        params.copy(from: uniformFloats(conv.parameterCount, -1, 1, rng: &rng))
        conv.reserve(batch: 2)
        return (params, grads)
    }

    struct ConvCase: CustomTestStringConvertible, Sendable {
        let channels: Int, height: Int, width: Int, out: Int, kernel: Int, stride: Int, padding: Int
        var testDescription: String { "\(channels)×\(height)×\(width) → \(out) ch, k\(kernel) s\(stride) p\(padding)" }
    }

    static let convCases = [
        ConvCase(channels: 3, height: 7, width: 6, out: 4, kernel: 3, stride: 1, padding: 0),
        ConvCase(channels: 3, height: 7, width: 6, out: 4, kernel: 3, stride: 1, padding: 1),
        ConvCase(channels: 3, height: 7, width: 6, out: 4, kernel: 3, stride: 2, padding: 1),
        ConvCase(channels: 2, height: 8, width: 5, out: 3, kernel: 2, stride: 2, padding: 0),
        ConvCase(channels: 2, height: 5, width: 5, out: 3, kernel: 5, stride: 3, padding: 2),
        ConvCase(channels: 4, height: 4, width: 4, out: 2, kernel: 1, stride: 1, padding: 0),
    ]

    @Test(arguments: convCases)
    func convMatchesDirectConvolutionAndFiniteDifferences(_ t: ConvCase) {
        let rows = 2
        let input = ImageShape(channels: t.channels, height: t.height, width: t.width)
        let conv = Conv2d(name: "c", input: input, channels: t.out, kernel: t.kernel, stride: t.stride,
                          padding: t.padding, initialization: .he)
        let (params, grads) = Self.boundConv(conv, seed: 41)
        #expect(conv.parameterSpecs.map(\.shape) == [[t.out, t.channels, t.kernel, t.kernel], [t.out]])
        #expect(conv.output.height == (t.height + 2 * t.padding - t.kernel) / t.stride + 1)
        var rng = Xoshiro256(seed: 42)
        let x = uniformFloats(rows * conv.inputWidth, -1, 1, rng: &rng)
        let c = uniformFloats(rows * conv.outputWidth, -1, 1, rng: &rng)   // L = Σ c ⊙ y, so dL/dy = c
        var y = [Float](repeating: .nan, count: rows * conv.outputWidth)
        var dx = [Float](repeating: .nan, count: rows * conv.inputWidth)
        grads.fill(.nan)
        conv.forward(x: x, y: &y, batch: rows)
        conv.backward(x: x, y: y, dy: c, dx: &dx, batch: rows, accumulate: false)

        let theta = params.array.map(Double.init), x64 = x.map(Double.init), c64 = c.map(Double.init)
        let weights = t.out * t.channels * t.kernel * t.kernel
        func direct(_ x: [Double], _ theta: [Double]) -> [Double] {
            Reference64.conv(x, batch: rows, conv, theta: theta, weight: 0, bias: weights)
        }
        func loss(_ x: [Double], _ theta: [Double]) -> Double { zip(direct(x, theta), c64).reduce(0) { $0 + $1.0 * $1.1 } }

        // Forward: Float32 sums of ≤ 100 products of values in [−1, 1].
        for (got, want) in zip(y, direct(x64, theta)) {
            #expect(isClose(Double(got), want, abs: 1e-5, rel: 1e-5), "y \(got) vs direct \(want)")
        }
        let h = 1e-6
        for i in 0..<x64.count {
            var p = x64, m = x64
            p[i] += h; m[i] -= h
            let numeric = (loss(p, theta) - loss(m, theta)) / (2 * h)
            #expect(isClose(Double(dx[i]), numeric, abs: 1e-4, rel: 1e-3), "dx[\(i)] \(dx[i]) vs \(numeric)")
        }
        let g = grads.array
        for j in 0..<theta.count {
            var p = theta, m = theta
            p[j] += h; m[j] -= h
            let numeric = (loss(x64, p) - loss(x64, m)) / (2 * h)
            #expect(isClose(Double(g[j]), numeric, abs: 1e-4, rel: 1e-3), "dθ[\(j)] \(g[j]) vs \(numeric)")
        }
        // accumulate: true adds the same gradient again.
        conv.backward(x: x, y: y, dy: c, dx: nil, batch: rows, accumulate: true)
        for (a, b) in zip(g, grads.array) { #expect(isClose(Double(b), 2 * Double(a), abs: 1e-6, rel: 1e-5)) }
    }

    struct BatchedCase: CustomTestStringConvertible, Sendable {
        let channels: Int, size: Int, out: Int, kernel: Int, stride: Int, padding: Int, bias: Bool
        var testDescription: String { "\(channels)×\(size)×\(size) → \(out) ch, k\(kernel) s\(stride) p\(padding)\(bias ? "" : ", no bias")" }
    }

    // K = Cin·k·k ≥ Conv2d.minimumChunkedPatch, so the layers chunk; the last one stays per sample.
    static let batchedCases = [
        BatchedCase(channels: 4, size: 7, out: 5, kernel: 3, stride: 1, padding: 1, bias: true),
        BatchedCase(channels: 4, size: 7, out: 4, kernel: 3, stride: 2, padding: 1, bias: false),
        BatchedCase(channels: 32, size: 5, out: 6, kernel: 1, stride: 1, padding: 0, bias: true),
        BatchedCase(channels: 32, size: 6, out: 8, kernel: 1, stride: 2, padding: 0, bias: false),
        BatchedCase(channels: 2, size: 5, out: 3, kernel: 5, stride: 3, padding: 2, bias: true),
        BatchedCase(channels: 1, size: 6, out: 3, kernel: 3, stride: 1, padding: 1, bias: true),
    ]

    /// A batch in one pass (one GEMM each way), and in chunks of 2 (2 + 2 + 1, so a chunk boundary
    /// and a lone last sample), give the y, dx and gradients of the samples run one at a time
    /// (a layer with K below Conv2d.minimumChunkedPatch runs per sample anyway). The three layers
    /// share one workspace, as a network's conv layers do.
    @Test(arguments: batchedCases)
    func batchedPassMatchesSampleBySample(_ t: BatchedCase) {
        let rows = 5
        let input = ImageShape(channels: t.channels, height: t.size, width: t.size)
        let workspace = ConvWorkspace()
        final class Count { var reports = 0 }
        let count = Count()
        let progress = BackwardProgress()
        progress.tick = { count.reports += 1 }
        func make(budget: Int) -> Conv2d {
            let conv = Conv2d(name: "c", input: input, channels: t.out, kernel: t.kernel, stride: t.stride, padding: t.padding,
                              initialization: .he, bias: t.bias, progress: progress, workspace: workspace)
            conv.columnBudget = budget
            return conv
        }
        let single = make(budget: 0), whole = make(budget: Conv2d.defaultColumnBudget)
        let columnsPerSample = t.channels * t.kernel * t.kernel * single.output.plane
        let chunked = make(budget: 2 * columnsPerSample + 1)
        let params = FloatBuffer(count: single.parameterCount)
        var rng = Xoshiro256(seed: 91)
        params.copy(from: uniformFloats(single.parameterCount, -1, 1, rng: &rng))
        let grads = [single, whole, chunked].map { conv in
            let g = FloatBuffer(count: conv.parameterCount)
            conv.bind(parameters: params.pointer, gradients: g.pointer)
            return g
        }
        single.reserve(batch: 1)
        whole.reserve(batch: rows)
        chunked.reserve(batch: rows)
        let chunks = t.channels * t.kernel * t.kernel >= Conv2d.minimumChunkedPatch
        #expect(single.chunk == 1 && whole.chunk == (chunks ? rows : 1) && chunked.chunk == (chunks ? 2 : 1))

        let x = uniformFloats(rows * single.inputWidth, -1, 1, rng: &rng)
        let dy = uniformFloats(rows * single.outputWidth, -1, 1, rng: &rng)
        var y = [[Float]](repeating: [Float](repeating: .nan, count: rows * single.outputWidth), count: 3)
        var dx = [[Float]](repeating: [Float](repeating: .nan, count: rows * single.inputWidth), count: 3)
        x.withUnsafeBufferPointer { x in
            dy.withUnsafeBufferPointer { dy in
                let (xi, yo, dyi) = (single.inputWidth, single.outputWidth, single.outputWidth)
                for b in 0..<rows {
                    y[0].withUnsafeMutableBufferPointer { y in
                        single.forward(x: x.baseAddress! + b * xi, y: y.baseAddress! + b * yo, batch: 1)
                    }
                    dx[0].withUnsafeMutableBufferPointer { dx in
                        y[0].withUnsafeBufferPointer { y in
                            single.backward(x: x.baseAddress! + b * xi, y: y.baseAddress! + b * yo, dy: dy.baseAddress! + b * dyi,
                                            dx: dx.baseAddress! + b * xi, batch: 1, accumulate: b > 0)
                        }
                    }
                }
                for (i, conv) in [(1, whole), (2, chunked)] {
                    count.reports = 0
                    conv.forward(x: x.baseAddress!, y: &y[i], batch: rows)
                    conv.backward(x: x.baseAddress!, y: y[i], dy: dy.baseAddress!, dx: &dx[i], batch: rows, accumulate: false)
                    #expect(count.reports >= rows, "backward reports progress at least once per sample")
                }
            }
        }
        // Only the summation order differs: within 1e-5 of each tensor's largest entry.
        func expectClose(_ got: [Float], _ want: [Float], _ what: String) {
            let scale = Double(want.map { abs($0) }.max() ?? 0)
            for (i, (g, w)) in zip(got, want).enumerated() {
                #expect(isClose(Double(g), Double(w), abs: 1e-5 * scale, rel: 1e-5), "\(what)[\(i)]: \(g) vs one at a time \(w)")
            }
        }
        for (i, what) in [(1, "whole batch"), (2, "chunks of 2")] {
            expectClose(y[i], y[0], "\(what) y")
            expectClose(dx[i], dx[0], "\(what) dx")
            expectClose(grads[i].array, grads[0].array, "\(what) dθ")
        }
    }

    struct PoolCase: CustomTestStringConvertible, Sendable {
        let max: Bool, channels: Int, height: Int, width: Int, kernel: Int, stride: Int
        var testDescription: String { "\(max ? "max" : "avg") \(channels)×\(height)×\(width) k\(kernel) s\(stride)" }
    }

    static let poolCases = [true, false].flatMap { isMax in [
        PoolCase(max: isMax, channels: 2, height: 6, width: 5, kernel: 2, stride: 2),   // a leftover column
        PoolCase(max: isMax, channels: 3, height: 7, width: 7, kernel: 3, stride: 2),   // overlapping windows
        PoolCase(max: isMax, channels: 1, height: 4, width: 6, kernel: 3, stride: 1),
    ] }

    @Test(arguments: poolCases)
    func poolMatchesReferenceAndFiniteDifferences(_ t: PoolCase) {
        let rows = 2
        let input = ImageShape(channels: t.channels, height: t.height, width: t.width)
        let layer: any Layer = t.max ? MaxPool2d(name: "p", input: input, kernel: t.kernel, stride: t.stride)
                                     : AvgPool2d(name: "p", input: input, kernel: t.kernel, stride: t.stride)
        let window = PoolWindow(input: input, kernel: t.kernel, stride: t.stride)
        #expect(layer.parameterSpecs.isEmpty && layer.outputWidth == window.output.count)
        layer.reserve(batch: rows)
        var rng = Xoshiro256(seed: 77)
        let x = uniformFloats(rows * layer.inputWidth, 0.01, 1, rng: &rng)   // positive, so every max has a margin
        let c = uniformFloats(rows * layer.outputWidth, -1, 1, rng: &rng)
        var y = [Float](repeating: .nan, count: rows * layer.outputWidth)
        var dx = [Float](repeating: .nan, count: rows * layer.inputWidth)
        layer.forward(x: x, y: &y, batch: rows)
        layer.backward(x: x, y: y, dy: c, dx: &dx, batch: rows, accumulate: false)

        let x64 = x.map(Double.init), c64 = c.map(Double.init)
        var margin = Double.infinity
        let expected = Reference64.pool(x64, batch: rows, window, max: t.max, margin: &margin)
        #expect(margin > 1e-5, "seeded inputs must keep every max apart from its runner-up")
        for (got, want) in zip(y, expected) {
            #expect(isClose(Double(got), want, abs: 1e-6, rel: 1e-6), "y \(got) vs \(want)")
        }
        func loss(_ x: [Double]) -> Double {
            var unused = Double.infinity
            return zip(Reference64.pool(x, batch: rows, window, max: t.max, margin: &unused), c64).reduce(0) { $0 + $1.0 * $1.1 }
        }
        let h = 1e-7
        for i in 0..<x64.count {
            var p = x64, m = x64
            p[i] += h; m[i] -= h
            let numeric = (loss(p) - loss(m)) / (2 * h)
            #expect(isClose(Double(dx[i]), numeric, abs: 1e-4, rel: 1e-3), "dx[\(i)] \(dx[i]) vs \(numeric)")
        }
        // Without dx there is nothing to do and nothing must be touched.
        layer.backward(x: x, y: y, dy: c, dx: nil, batch: rows, accumulate: false)
    }

    // MARK: - A whole CNN

    /// conv(3×3, pad 1) → relu → maxpool 2 → conv(3×3, stride 2, pad 1) → relu → avgpool 2 stride 1 → dense → relu → dense.
    static let specs: [LayerSpec] = [
        .conv2d(channels: 3, kernel: 3, stride: 1, padding: 1),
        .maxPool(kernel: 2),
        .conv2d(channels: 4, kernel: 3, stride: 2, padding: 1),
        .avgPool(kernel: 2, stride: 1),
        LayerSpec(units: 5, activation: .relu),
        LayerSpec(units: 3, activation: .identity),
    ]
    static let sample = [2, 8, 8]
    static let batch = 3

    struct Fixture {
        let network: Network
        let reference: ReferenceNetwork
        let x: [Float]
        let labels: [Int32]
        var theta: [Double] { network.parameters.array.map(Double.init) }
        var x64: [Double] { x.map(Double.init) }
    }

    /// A seeded CNN (biases non-zero) and batch whose ReLU inputs stay ≥ 1e-3 from the kink and
    /// whose max-pool winners lead by ≥ 1e-4, so an h = 1e-6 central difference changes neither.
    static func fixture() throws -> Fixture {
        let width = sample.reduce(1, *)
        for seed in UInt64(1)...64 {
            let network = try Network(inputShape: sample, layers: specs)
            network.initialize(seed: seed)
            var rng = Xoshiro256(seed: seed, stream: 99)
            for view in network.views where !view.spec.isWeight {
                for i in 0..<view.count { network.parameters.pointer[view.offset + i] = Float(rng.nextUnit() * 0.4 - 0.2) }
            }
            let x = uniformFloats(batch * width, -1, 1, rng: &rng)
            let labels = (0..<batch).map { _ in Int32(rng.next(below: 3)) }
            let reference = ReferenceNetwork(network: network)
            var margin = Double.infinity
            _ = reference.logits(network.parameters.array.map(Double.init), x: x.map(Double.init), batch: batch, margin: &margin)
            if margin > 1e-4 { return Fixture(network: network, reference: reference, x: x, labels: labels) }
        }
        throw LockstepError.runtime("no seed in 1...64 kept every ReLU input and max-pool winner clear")
    }

    @Test func cnnShapesNamesAndViews() throws {
        let network = try Network(inputShape: Self.sample, layers: Self.specs, extraGradientSlots: 2)
        #expect(network.layers.map(\.name) == ["conv0", "relu0", "maxpool0", "conv1", "relu1", "avgpool0", "dense0", "relu2", "dense1"])
        #expect(network.outputShapes == [[3, 8, 8], [3, 8, 8], [3, 4, 4], [4, 2, 2], [4, 2, 2], [4, 1, 1], [5], [5], [3]])
        #expect(network.views.map(\.path) == ["conv0/weight", "conv0/bias", "conv1/weight", "conv1/bias",
                                              "dense0/weight", "dense0/bias", "dense1/weight", "dense1/bias"])
        #expect(network.views.map(\.spec.shape) == [[3, 2, 3, 3], [3], [4, 3, 3, 3], [4], [5, 4], [5], [3, 5], [3]])
        var offset = 0
        for view in network.views {
            #expect(view.offset == offset, "views must tile the flat buffer in order")
            offset += view.count
        }
        #expect(network.parameterCount == 3 * 2 * 9 + 3 + 4 * 3 * 9 + 4 + 5 * 4 + 5 + 3 * 5 + 3)
        #expect(network.classes == 3)
        // An [H, W] sample is one channel; a dense layer after a pool reads C·H·W.
        let fashion = try Network(inputShape: [28, 28], layers: [
            .conv2d(channels: 16, kernel: 3, padding: 1), .maxPool(kernel: 2),
            .conv2d(channels: 32, kernel: 3, padding: 1), .maxPool(kernel: 2),
            LayerSpec(units: 128, activation: .relu), LayerSpec(units: 10, activation: .identity)])
        #expect(fashion.outputShapes.filter { $0.count == 3 } == [[16, 28, 28], [16, 28, 28], [16, 14, 14], [32, 14, 14], [32, 14, 14], [32, 7, 7]])
        #expect(fashion.views.map(\.spec.shape) == [[16, 1, 3, 3], [16], [32, 16, 3, 3], [32], [128, 32 * 7 * 7], [128], [10, 128], [10]])
    }

    @Test func convInitializationIsSeededAndHeScaled() throws {
        let a = try Network(inputShape: Self.sample, layers: Self.specs), b = try Network(inputShape: Self.sample, layers: Self.specs)
        a.initialize(seed: 5); b.initialize(seed: 5)
        #expect(a.parameters.array == b.parameters.array)
        for view in a.views where view.layer.hasPrefix("conv") {
            let values = Array(a.parameters.slice(view.offset, view.count))
            if view.spec.isWeight {
                let limit = (6.0 / Double(view.spec.shape[1] * view.spec.shape[2] * view.spec.shape[3])).squareRoot()
                #expect(values.allSatisfy { abs(Double($0)) <= limit }, "\(view.path) outside ±\(limit)")
                #expect(values.contains { abs(Double($0)) > limit / 4 }, "\(view.path) suspiciously small")
            } else {
                #expect(values.allSatisfy { $0 == 0 }, "\(view.path) should start at zero")
            }
        }
    }

    @Test func cnnForwardAndGradientsMatchFloat64() throws {
        let f = try Self.fixture()
        let lossSum = GradientCheckTests.analytic(f.network, x: f.x[...], labels: f.labels[...], scaleBatch: Self.batch, accumulate: false)
        let theta = f.theta, x64 = f.x64
        #expect(isClose(lossSum / Double(Self.batch), f.reference.loss(theta, x: x64, labels: f.labels, batch: Self.batch), abs: 1e-6, rel: 1e-5))
        let analytic = Array(f.network.gradients.buffer)
        expectFiniteDifferences(analytic, theta: theta, views: f.network.views) {
            f.reference.loss($0, x: x64, labels: f.labels, batch: Self.batch)
        }
        // Not vacuous: the convolutions' gradients are alive.
        for view in f.network.views where view.layer.hasPrefix("conv") && view.spec.isWeight {
            #expect(analytic[view.offset..<(view.offset + view.count)].map { abs($0) }.max()! > 1e-3, "\(view.path) gradient is ~0")
        }
    }

    @Test func cnnMicroBatchesAccumulateToTheFullBatch() throws {
        let f = try Self.fixture()
        let w = Self.sample.reduce(1, *)
        GradientCheckTests.analytic(f.network, x: f.x[...], labels: f.labels[...], scaleBatch: Self.batch, accumulate: false)
        let full = f.network.gradients.array
        f.network.gradients.fill(777)
        GradientCheckTests.analytic(f.network, x: f.x[0..<w], labels: f.labels[0..<1], scaleBatch: Self.batch, accumulate: false)
        GradientCheckTests.analytic(f.network, x: f.x[w...], labels: f.labels[1...], scaleBatch: Self.batch, accumulate: true)
        for (a, b) in zip(full, f.network.gradients.array) {
            #expect(isClose(Double(b), Double(a), abs: 1e-7, rel: 1e-5), "micro-batched \(b) vs full \(a)")
        }
    }

    @Test func shapeMismatchesNameTheLayerKey() {
        // A conv on flat samples, and after a dense layer.
        expectUsage(["model.layers.0.type", "conv2d", "[20]"]) {
            try Network(inputShape: [20], layers: [.conv2d(channels: 2, kernel: 3), LayerSpec(units: 2, activation: .identity)])
        }
        expectUsage(["model.layers.1.type", "maxpool", "model.layers.0", "[8]"]) {
            try Network(inputShape: [6, 6], layers: [LayerSpec(units: 8, activation: .relu), .maxPool(kernel: 2), LayerSpec(units: 2, activation: .identity)])
        }
        // A kernel larger than the (padded) image, first layer and later.
        expectUsage(["model.layers.0.kernel", "5", "3×3", "at most 3"]) {
            try Network(inputShape: [3, 3], layers: [.conv2d(channels: 2, kernel: 5), LayerSpec(units: 2, activation: .identity)])
        }
        expectUsage(["model.layers.1.kernel", "3", "2×2", "[4, 2, 2]"]) {
            try Network(inputShape: [1, 4, 4], layers: [.conv2d(channels: 4, kernel: 2, stride: 2), .avgPool(kernel: 3),
                                                        LayerSpec(units: 2, activation: .identity)])
        }
        // 4-D samples are not images.
        expectUsage(["model.layers.0.type", "[2, 3, 4, 5]"]) {
            try Network(inputShape: [2, 3, 4, 5], layers: [.conv2d(channels: 2, kernel: 1), LayerSpec(units: 2, activation: .identity)])
        }
        // Padding makes room: a 5×5 kernel fits a 3×3 image padded by 2.
        #expect((try? Network(inputShape: [3, 3], layers: [.conv2d(channels: 2, kernel: 5, padding: 2), LayerSpec(units: 2, activation: .identity)])) != nil)
    }
}

@Suite struct ConvolutionJobTests {
    /// A job whose [model] layers are `layers` (the inside of the array).
    static func job(_ layers: String) -> String {
        """
        [data]
        file = "data/fashion-mnist.h5"

        [model]
        layers = [\(layers)]

        [batch]
        global = 128

        [optimizer]
        lr = 0.1
        """
    }

    static func parse(_ layers: String, overrides: [String] = []) throws -> Job {
        try Job.parse(job(layers), source: "jobs/cnn.toml", overrides: overrides)
    }

    @Test func layerKeysAndDefaults() throws {
        let job = try Self.parse("""
            { type = "conv2d", channels = 16, kernel = 3, padding = 1 },
            { type = "maxpool", kernel = 2 },
            { type = "conv2d", channels = 8, kernel = 5, stride = 2, activation = "identity" },
            { type = "avgpool", kernel = 3, stride = 1 },
            { type = "dense", units = 10 },
            """)
        #expect(job.layers == [.conv2d(channels: 16, kernel: 3, stride: 1, padding: 1, activation: .relu),
                               .maxPool(kernel: 2, stride: 2),
                               .conv2d(channels: 8, kernel: 5, stride: 2, padding: 0, activation: .identity),
                               .avgPool(kernel: 3, stride: 1),
                               LayerSpec(units: 10, activation: .identity)])
        let again = try Job.parse(job.resolvedTOML, source: "elsewhere.toml")
        #expect(again == job, "resolvedTOML:\n\(job.resolvedTOML)")
        #expect(again.resolvedTOML == job.resolvedTOML)
        #expect(job.resolvedTOML.contains("{ type = \"maxpool\", kernel = 2, stride = 2 }"))
        // --set replaces the whole array, conv layers included.
        let small = try Self.parse("{ units = 4 }", overrides: ["model.layers=[{type=\"conv2d\", channels=2, kernel=3}, {units=3}]"])
        #expect(small.layers == [.conv2d(channels: 2, kernel: 3), LayerSpec(units: 3, activation: .identity)])
    }

    @Test func badLayerKeysAreOneLineErrors() {
        expectUsage(["model.layers.0.kernel", "missing"]) { try Self.parse("{ type = \"conv2d\", channels = 4 }, { units = 2 }") }
        expectUsage(["model.layers.0.channels", "missing"]) { try Self.parse("{ type = \"conv2d\", kernel = 3 }, { units = 2 }") }
        expectUsage(["model.layers.0.units", "unknown key"]) { try Self.parse("{ type = \"conv2d\", units = 4, channels = 4, kernel = 3 }, { units = 2 }") }
        expectUsage(["model.layers.0.activation", "unknown key"]) { try Self.parse("{ type = \"maxpool\", kernel = 2, activation = \"relu\" }, { units = 2 }") }
        expectUsage(["model.layers.0.padding", "at most 1"]) { try Self.parse("{ type = \"conv2d\", channels = 4, kernel = 3, padding = 2 }, { units = 2 }") }
        expectUsage(["model.layers.0.stride", "at least 1"]) { try Self.parse("{ type = \"avgpool\", kernel = 2, stride = 0 }, { units = 2 }") }
        expectUsage(["model.layers.1.type", "last layer", "dense"]) { try Self.parse("{ units = 4 }, { type = \"maxpool\", kernel = 2 }") }
        expectUsage(["model.layers.0.type", "\"conv2d\"", "\"maxpool\""]) { try Self.parse("{ type = \"conv\", kernel = 2 }, { units = 2 }") }
    }
}
