// Finite-difference gradient checks of Network, Dense and ReLU against a Float64 reimplementation.
import Testing
import Lockstep
#if canImport(Glibc)
import Glibc
#endif

/// The network's math redone in Float64 from its flat parameters (Dense weight [out, in], y = x·Wᵀ + b).
struct ReferenceMLP {
    struct DenseLayer { let inputs: Int, outputs: Int, weightOffset: Int, biasOffset: Int, relu: Bool }
    let layers: [DenseLayer]

    init(network: Network, specs: [LayerSpec]) throws {
        var layers: [DenseLayer] = []
        var width = network.inputWidth
        for (i, spec) in specs.enumerated() {
            let weight = try #require(network.views.first { $0.path == "dense\(i)/weight" })
            let bias = try #require(network.views.first { $0.path == "dense\(i)/bias" })
            layers.append(DenseLayer(inputs: width, outputs: spec.units, weightOffset: weight.offset,
                                     biasOffset: bias.offset, relu: spec.activation == .relu))
            width = spec.units
        }
        self.layers = layers
    }

    /// Logits [batch, classes]; `smallestPreactivation` is the smallest |z| fed to a ReLU.
    func logits(_ theta: [Double], x: [Double], batch: Int, smallestPreactivation: inout Double) -> [Double] {
        var a = x
        for layer in layers {
            var z = [Double](repeating: 0, count: batch * layer.outputs)
            for r in 0..<batch {
                for o in 0..<layer.outputs {
                    var s = theta[layer.biasOffset + o]
                    for i in 0..<layer.inputs { s += a[r * layer.inputs + i] * theta[layer.weightOffset + o * layer.inputs + i] }
                    if layer.relu {
                        smallestPreactivation = min(smallestPreactivation, abs(s))
                        s = max(s, 0)
                    }
                    z[r * layer.outputs + o] = s
                }
            }
            a = z
        }
        return a
    }

    /// Mean softmax cross-entropy over the batch, by log-sum-exp.
    func loss(_ theta: [Double], x: [Double], labels: [Int32], batch: Int) -> Double {
        var unused = Double.infinity
        let z = logits(theta, x: x, batch: batch, smallestPreactivation: &unused)
        let classes = layers.last!.outputs
        var total = 0.0
        for r in 0..<batch {
            let row = z[(r * classes)..<((r + 1) * classes)]
            let m = row.max()!
            let lse = m + log(row.reduce(0) { $0 + exp($1 - m) })
            total += lse - row[r * classes + Int(labels[r])]
        }
        return total / Double(batch)
    }
}

@Suite struct GradientCheckTests {
    static let specs = [LayerSpec(units: 5, activation: .relu),
                        LayerSpec(units: 4, activation: .relu),
                        LayerSpec(units: 3, activation: .identity)]
    static let inputWidth = 6
    static let batch = 4

    struct Fixture {
        let network: Network
        let reference: ReferenceMLP
        let x: [Float]
        let labels: [Int32]
        var theta: [Double] { network.parameters.array.map(Double.init) }
        var x64: [Double] { x.map(Double.init) }
    }

    /// A seeded network (biases made non-zero so their gradients are exercised) and batch whose ReLU
    /// inputs all stay ≥ 1e-3 from the kink, so an h = 1e-6 central difference never straddles it.
    static func fixture() throws -> Fixture {
        for seed in UInt64(1)...64 {
            let network = Network(inputWidth: inputWidth, layers: specs)
            network.initialize(seed: seed)
            var rng = Xoshiro256(seed: seed, stream: 99)
            for view in network.views where !view.spec.isWeight {
                for i in 0..<view.count { network.parameters.pointer[view.offset + i] = Float(rng.nextUnit() * 0.4 - 0.2) }
            }
            let x = uniformFloats(batch * inputWidth, -1, 1, rng: &rng)
            let labels = (0..<batch).map { _ in Int32(rng.next(below: 3)) }
            let reference = try ReferenceMLP(network: network, specs: specs)
            var smallest = Double.infinity
            _ = reference.logits(network.parameters.array.map(Double.init), x: x.map(Double.init), batch: batch,
                                 smallestPreactivation: &smallest)
            if smallest > 1e-3 { return Fixture(network: network, reference: reference, x: x, labels: labels) }
        }
        throw LockstepError.runtime("no seed in 1...64 kept every ReLU input away from 0")
    }

    /// forward → softmax cross-entropy (scaled by 1/`scaleBatch`) → backward; returns the loss sum.
    @discardableResult
    static func analytic(_ network: Network, x: ArraySlice<Float>, labels: ArraySlice<Int32>, scaleBatch: Int,
                         accumulate: Bool) -> Double {
        let rows = labels.count
        network.reserve(batch: max(rows, batch))
        return x.withUnsafeBufferPointer { px in
            labels.withUnsafeBufferPointer { pl in
                let logits = network.forward(px.baseAddress!, batch: rows)
                let loss = SoftmaxCrossEntropy.lossAndGradient(
                    logits: logits, labels: pl.baseAddress!, dlogits: network.logitGradient,
                    batch: rows, classes: network.classes, scale: 1 / Float(scaleBatch))
                network.backward(px.baseAddress!, dlogits: network.logitGradient, batch: rows, accumulate: accumulate)
                return loss
            }
        }
    }

    @Test func networkShapeAndViews() {
        let network = Network(inputWidth: 6, layers: Self.specs, extraGradientSlots: 2)
        #expect(network.layers.map(\.name) == ["dense0", "relu0", "dense1", "relu1", "dense2"])
        #expect(network.classes == 3)
        #expect(network.views.map(\.path) == ["dense0/weight", "dense0/bias", "dense1/weight", "dense1/bias",
                                              "dense2/weight", "dense2/bias"])
        #expect(network.views.map(\.spec.shape) == [[5, 6], [5], [4, 5], [4], [3, 4], [3]])
        #expect(network.views.map(\.spec.isWeight) == [true, false, true, false, true, false])
        var offset = 0
        for view in network.views {
            #expect(view.offset == offset, "views must tile the flat buffer in order")
            offset += view.count
        }
        #expect(network.parameterCount == 6 * 5 + 5 + 5 * 4 + 4 + 4 * 3 + 3)
        #expect(network.parameterCount == offset)
        #expect(network.parameters.count == network.parameterCount)
        #expect(network.gradients.count == network.parameterCount + 2)
    }

    @Test func initializationIsSeededAndScaled() {
        let a = Network(inputWidth: 6, layers: Self.specs), b = Network(inputWidth: 6, layers: Self.specs)
        let c = Network(inputWidth: 6, layers: Self.specs)
        a.initialize(seed: 5); b.initialize(seed: 5); c.initialize(seed: 6)
        #expect(a.parameters.array == b.parameters.array)
        #expect(a.parameterChecksum == b.parameterChecksum)
        #expect(a.parameters.array != c.parameters.array)
        #expect(a.parameterChecksum != c.parameterChecksum)
        for view in a.views {
            let values = Array(a.parameters.slice(view.offset, view.count))
            if view.spec.isWeight {
                // He for ReLU layers, Glorot for the logit layer: Uniform(−limit, limit).
                let (fanOut, fanIn) = (view.spec.shape[0], view.spec.shape[1])
                let limit = view.layer == "dense2" ? (6.0 / Double(fanIn + fanOut)).squareRoot() : (6.0 / Double(fanIn)).squareRoot()
                #expect(values.allSatisfy { abs(Double($0)) <= limit }, "\(view.path) outside ±\(limit)")
                #expect(values.contains { abs(Double($0)) > limit / 4 }, "\(view.path) suspiciously small")
            } else {
                #expect(values.allSatisfy { $0 == 0 }, "\(view.path) should start at zero")
            }
        }
    }

    @Test func forwardAndLossMatchFloat64() throws {
        let f = try Self.fixture()
        f.network.reserve(batch: Self.batch)
        let logits = f.x.withUnsafeBufferPointer { Array(UnsafeBufferPointer(start: f.network.forward($0.baseAddress!, batch: Self.batch), count: Self.batch * 3)) }
        var unused = Double.infinity
        let expected = f.reference.logits(f.theta, x: f.x64, batch: Self.batch, smallestPreactivation: &unused)
        for (got, want) in zip(logits, expected) {
            // Float32 forward through three small layers: 1e-5 abs + 1e-5 rel.
            #expect(isClose(Double(got), want, abs: 1e-5, rel: 1e-5), "logit \(got) vs \(want)")
        }
        let lossSum = Self.analytic(f.network, x: f.x[...], labels: f.labels[...], scaleBatch: Self.batch, accumulate: false)
        let expectedLoss = f.reference.loss(f.theta, x: f.x64, labels: f.labels, batch: Self.batch)
        #expect(isClose(lossSum / Double(Self.batch), expectedLoss, abs: 1e-6, rel: 1e-5))
    }

    @Test func networkGradientsMatchFiniteDifferences() throws {
        let f = try Self.fixture()
        Self.analytic(f.network, x: f.x[...], labels: f.labels[...], scaleBatch: Self.batch, accumulate: false)
        let analytic = Array(f.network.gradients.buffer)
        let theta = f.theta, x64 = f.x64
        let checked = expectFiniteDifferences(analytic, theta: theta, views: f.network.views) {
            f.reference.loss($0, x: x64, labels: f.labels, batch: Self.batch)
        }
        #expect(checked == 74)
        // Guard against a vacuous pass: the gradient is not all (near) zero.
        #expect(analytic.map { abs($0) }.max()! > 1e-2)
    }

    @Test func accumulateAddsAndNonAccumulateOverwrites() throws {
        let f = try Self.fixture()
        // accumulate: false must overwrite whatever was in the gradient buffer.
        f.network.gradients.fill(777)
        Self.analytic(f.network, x: f.x[...], labels: f.labels[...], scaleBatch: Self.batch, accumulate: false)
        let once = f.network.gradients.array
        #expect(!once.contains(777))
        // A second backward of the same batch with accumulate: true doubles every gradient.
        Self.analytic(f.network, x: f.x[...], labels: f.labels[...], scaleBatch: Self.batch, accumulate: true)
        let twice = f.network.gradients.array
        for (a, b) in zip(once, twice) {
            #expect(isClose(Double(b), 2 * Double(a), abs: 1e-7, rel: 1e-6), "accumulated \(b), expected 2 × \(a)")
        }
    }

    @Test func microBatchAccumulationEqualsFullBatch() throws {
        let f = try Self.fixture()
        let w = Self.inputWidth, half = Self.batch / 2
        Self.analytic(f.network, x: f.x[...], labels: f.labels[...], scaleBatch: Self.batch, accumulate: false)
        let full = f.network.gradients.array
        // Two micro-batches, each scaled by 1/B_global, summed: the unsplit gradient (docs/algorithms.md §1).
        Self.analytic(f.network, x: f.x[0..<(half * w)], labels: f.labels[0..<half], scaleBatch: Self.batch, accumulate: false)
        Self.analytic(f.network, x: f.x[(half * w)...], labels: f.labels[half...], scaleBatch: Self.batch, accumulate: true)
        let split = f.network.gradients.array
        for (a, b) in zip(full, split) {
            #expect(isClose(Double(b), Double(a), abs: 1e-7, rel: 1e-5), "micro-batched \(b) vs full \(a)")
        }
    }

    @Test func denseBackwardMatchesFiniteDifferences() {
        let (inputs, outputs, rows) = (6, 5, 3)
        let dense = Dense(name: "d", inputs: inputs, outputs: outputs, initialization: .glorot)
        #expect(dense.parameterSpecs.map(\.shape) == [[outputs, inputs], [outputs]])
        #expect(dense.parameterCount == outputs * inputs + outputs)
        let params = FloatBuffer(count: dense.parameterCount), grads = FloatBuffer(count: dense.parameterCount)
        dense.bind(parameters: params.pointer, gradients: grads.pointer)
        var rng = Xoshiro256(seed: 31)
        params.copy(from: uniformFloats(dense.parameterCount, -1, 1, rng: &rng))
        let x = uniformFloats(rows * inputs, -1, 1, rng: &rng)
        let c = uniformFloats(rows * outputs, -1, 1, rng: &rng)   // L = Σ c ⊙ y, so dL/dy = c
        var y = [Float](repeating: 0, count: rows * outputs)
        var dx = [Float](repeating: .nan, count: rows * inputs)
        grads.fill(.nan)
        dense.forward(x: x, y: &y, batch: rows)
        dense.backward(x: x, y: y, dy: c, dx: &dx, batch: rows, accumulate: false)

        let theta = params.array.map(Double.init), c64 = c.map(Double.init)
        func loss(_ x: [Double], _ theta: [Double]) -> Double {
            var total = 0.0
            for r in 0..<rows {
                for o in 0..<outputs {
                    var s = theta[outputs * inputs + o]
                    for i in 0..<inputs { s += x[r * inputs + i] * theta[o * inputs + i] }
                    total += c64[r * outputs + o] * s
                }
            }
            return total
        }
        let x64 = x.map(Double.init), h = 1e-6
        for i in 0..<(rows * inputs) {
            var p = x64, m = x64
            p[i] += h; m[i] -= h
            let numeric = (loss(p, theta) - loss(m, theta)) / (2 * h)
            #expect(isClose(Double(dx[i]), numeric, abs: 1e-4, rel: 1e-3), "dx[\(i)] \(dx[i]) vs \(numeric)")
        }
        let g = grads.array
        for j in 0..<dense.parameterCount {
            var p = theta, m = theta
            p[j] += h; m[j] -= h
            let numeric = (loss(x64, p) - loss(x64, m)) / (2 * h)
            #expect(isClose(Double(g[j]), numeric, abs: 1e-4, rel: 1e-3), "dθ[\(j)] \(g[j]) vs \(numeric)")
        }
        // And y itself is x·Wᵀ + b.
        for r in 0..<rows {
            for o in 0..<outputs {
                var s = theta[outputs * inputs + o]
                for i in 0..<inputs { s += x64[r * inputs + i] * theta[o * inputs + i] }
                #expect(isClose(Double(y[r * outputs + o]), s, abs: 1e-6, rel: 1e-5))
            }
        }
    }

    @Test func reluForwardBackward() {
        let width = 7, rows = 3
        let relu = ReLU(name: "r", width: width)
        #expect(relu.parameterSpecs.isEmpty && relu.outputWidth == width)
        var rng = Xoshiro256(seed: 8)
        // Inputs kept ≥ 0.05 from the kink, plus one exact 0 whose subgradient is documented as 0.
        var x = uniformFloats(rows * width, 0.05, 1, rng: &rng).map { rng.next(below: 2) == 0 ? $0 : -$0 }
        x[4] = 0
        let c = uniformFloats(rows * width, -1, 1, rng: &rng)
        var y = [Float](repeating: .nan, count: rows * width)
        var dx = [Float](repeating: .nan, count: rows * width)
        relu.forward(x: x, y: &y, batch: rows)
        relu.backward(x: x, y: y, dy: c, dx: &dx, batch: rows, accumulate: false)
        #expect(y == x.map { max($0, 0) })
        let h = 1e-6
        for i in 0..<(rows * width) where i != 4 {
            // L = Σ c·max(x, 0) in Float64; central difference away from the kink.
            let numeric = Double(c[i]) * (max(Double(x[i]) + h, 0) - max(Double(x[i]) - h, 0)) / (2 * h)
            #expect(isClose(Double(dx[i]), numeric, abs: 1e-6, rel: 1e-6), "dx[\(i)] \(dx[i]) vs \(numeric)")
        }
        #expect(dx[4] == 0)
        // Without dx there is nothing to do and nothing must be touched.
        relu.backward(x: x, y: y, dy: c, dx: nil, batch: rows, accumulate: false)
    }
}
