// BatchNorm, residual blocks, global average pooling and dropout against Float64: forward values,
// finite-difference gradients of every parameter and of the input (train mode, all three
// statistics kinds on one process), the running statistics a step commits, and evaluation with
// them. The reference recomputes the network from its own layer tree and flat parameters.
import Testing
import Lockstep
#if canImport(Glibc)
import Glibc
#endif

/// The ResNet layers' math in Float64, walked from a Network's layer tree.
struct ReferenceResNet {
    let network: Network

    func offset(_ path: String) -> Int? { network.views.first { $0.path == path }?.offset }

    /// Logits in training mode (batch statistics) or evaluation (running statistics, `state`).
    /// `margin`: the smallest |z| fed to any ReLU.
    func logits(_ theta: [Double], x: [Double], batch: Int, train: Bool, state: [Double], margin: inout Double) -> [Double] {
        var a = x
        for layer in network.layers { a = apply(layer, path: layer.name, a, theta, batch, train, state, &margin) }
        return a
    }

    /// Layer `index` of the network alone, in training mode.
    func output(ofLayer index: Int, _ theta: [Double], x: [Double], batch: Int, margin: inout Double) -> [Double] {
        let layer = network.layers[index]
        return apply(layer, path: layer.name, x, theta, batch, true, [], &margin)
    }

    private func apply(_ layer: any Layer, path: String, _ x: [Double], _ theta: [Double], _ batch: Int, _ train: Bool,
                       _ state: [Double], _ margin: inout Double) -> [Double] {
        switch layer {
        case let conv as Conv2d:
            // The reference reads a bias; a bias-free conv reads zeros past the parameters.
            let zeros = theta + [Double](repeating: 0, count: conv.output.channels)
            return Reference64.conv(x, batch: batch, conv, theta: zeros, weight: offset(path + "/weight")!,
                                    bias: offset(path + "/bias") ?? theta.count)
        case let dense as Dense:
            let (n, m, w) = (dense.inputWidth, dense.outputWidth, offset(path + "/weight")!)
            let bias = offset(path + "/bias")
            var z = [Double](repeating: 0, count: batch * m)
            for r in 0..<batch {
                for o in 0..<m {
                    var s = bias.map { theta[$0 + o] } ?? 0
                    for i in 0..<n { s += x[r * n + i] * theta[w + o * n + i] }
                    z[r * m + o] = s
                }
            }
            return z
        case is ReLU:
            margin = min(margin, x.map { abs($0) }.min()!)
            return x.map { max($0, 0) }
        case let bn as BatchNorm:
            return batchNorm(bn, path: path, x, theta, batch, train, state, &margin)
        case let block as Residual:
            var main = x
            for child in block.main { main = apply(child, path: path + "/" + child.name, main, theta, batch, train, state, &margin) }
            var skip = x
            for child in block.shortcut { skip = apply(child, path: path + "/" + child.name, skip, theta, batch, train, state, &margin) }
            let sum = zip(main, skip).map { $0 + $1 }
            margin = min(margin, sum.map { abs($0) }.min()!)
            return sum.map { max($0, 0) }
        case let pool as GlobalAvgPool:
            let (c, p) = (pool.input.channels, pool.input.plane)
            return (0..<(batch * c)).map { i in x[(i * p)..<((i + 1) * p)].reduce(0, +) / Double(p) }
        default:
            Issue.record("no reference for \(layer.name)")
            return x
        }
    }

    private func batchNorm(_ bn: BatchNorm, path: String, _ x: [Double], _ theta: [Double], _ batch: Int, _ train: Bool,
                           _ state: [Double], _ margin: inout Double) -> [Double] {
        let (gamma, beta) = (offset(path + "/weight")!, offset(path + "/bias")!)
        let stateAt = network.stateViews.first { $0.path == path + "/running_mean" }!.offset
        let (c, p, width) = (bn.channels, bn.plane, bn.inputWidth)
        let size = train && bn.statistics == .group ? bn.group : batch
        var y = x
        for start in stride(from: 0, to: batch, by: size) {
            let rows = start..<min(start + size, batch)
            for ch in 0..<c {
                var values: [Double] = []
                for b in rows { values += x[(b * width + ch * p)..<(b * width + ch * p + p)] }
                let mean = train ? values.reduce(0, +) / Double(values.count) : state[stateAt + ch]
                let variance = train ? values.map { ($0 - mean) * ($0 - mean) }.reduce(0, +) / Double(values.count)
                                     : state[stateAt + c + ch]
                let inverse = 1 / (variance + Double(bn.eps)).squareRoot()
                for b in rows {
                    for i in 0..<p {
                        let k = b * width + ch * p + i
                        let v = theta[gamma + ch] * (x[k] - mean) * inverse + theta[beta + ch]
                        if bn.relu { margin = min(margin, abs(v)) }
                        y[k] = bn.relu ? max(v, 0) : v
                    }
                }
            }
        }
        return y
    }

    func loss(_ theta: [Double], x: [Double], labels: [Int32], batch: Int) -> Double {
        var unused = Double.infinity
        let z = logits(theta, x: x, batch: batch, train: true, state: [], margin: &unused)
        return Self.crossEntropy(z, labels: labels, classes: network.classes)
    }

    static func crossEntropy(_ z: [Double], labels: [Int32], classes: Int) -> Double {
        var total = 0.0
        for r in 0..<labels.count {
            let row = z[(r * classes)..<((r + 1) * classes)]
            let m = row.max()!
            total += m + log(row.reduce(0.0) { $0 + exp($1 - m) }) - row[r * classes + Int(labels[r])]
        }
        return total / Double(labels.count)
    }
}

@Suite struct BatchNormGradientTests {
    static let sample = [2, 6, 6]
    static let batch = 4

    /// conv (no bias) – BN+ReLU – a projection block (stride 2) – an identity block – GAP – dense.
    static func specs(_ statistics: BatchNorm.Statistics) -> [LayerSpec] {
        [LayerSpec(Conv2d.Kind(channels: 3, kernel: 3, stride: 1, padding: 1, activation: .identity, bias: false)),
         LayerSpec(BatchNorm.Kind(statistics: statistics, group: 2, relu: true)),
         LayerSpec(Residual.Kind.basic(channels: 4, stride: 2, group: 2, zeroInitLast: false, statistics: statistics)),
         LayerSpec(Residual.Kind.basic(channels: 4, stride: 1, group: 2, zeroInitLast: false, statistics: statistics)),
         LayerSpec(GlobalAvgPool.Kind()),
         LayerSpec(units: 3, activation: .identity)]
    }

    struct Fixture {
        let network: Network
        let reference: ReferenceResNet
        let x: [Float]
        let labels: [Int32]
    }

    /// A seeded network (γ, β moved off 1 and 0) and batch whose ReLU inputs all stay ≥ 1e-3 from the kink.
    static func fixture(_ statistics: BatchNorm.Statistics) throws -> Fixture {
        for seed in UInt64(1)...64 {
            let network = try Network(inputShape: sample, layers: specs(statistics))
            network.initialize(seed: seed)
            var rng = Xoshiro256(seed: seed, stream: 7)
            for view in network.views where !view.spec.isWeight {
                let base: Double = view.spec.name == "weight" ? 1 : 0
                for i in 0..<view.count { network.parameters.pointer[view.offset + i] = Float(base + rng.nextUnit() * 0.6 - 0.3) }
            }
            let x = uniformFloats(batch * sample.reduce(1, *), -1, 1, rng: &rng)
            let labels = (0..<batch).map { _ in Int32(rng.next(below: 3)) }
            let reference = ReferenceResNet(network: network)
            var margin = Double.infinity
            _ = reference.logits(network.parameters.array.map(Double.init), x: x.map(Double.init), batch: batch,
                                 train: true, state: [], margin: &margin)
            if margin > 1e-3 { return Fixture(network: network, reference: reference, x: x, labels: labels) }
        }
        throw LockstepError.runtime("no seed in 1...64 kept every ReLU input away from 0")
    }

    @Test func namesNestUnderTheBlock() throws {
        let network = try Network(inputShape: Self.sample, layers: Self.specs(.group))
        #expect(network.layers.map(\.name) == ["conv0", "bn0", "block0", "block1", "gap0", "dense0"])
        #expect(network.views.map(\.path) == [
            "conv0/weight", "bn0/weight", "bn0/bias",
            "block0/conv1/weight", "block0/bn1/weight", "block0/bn1/bias", "block0/conv2/weight", "block0/bn2/weight", "block0/bn2/bias",
            "block0/shortcut_conv/weight", "block0/shortcut_bn/weight", "block0/shortcut_bn/bias",
            "block1/conv1/weight", "block1/bn1/weight", "block1/bn1/bias", "block1/conv2/weight", "block1/bn2/weight", "block1/bn2/bias",
            "dense0/weight", "dense0/bias"])
        #expect(network.stateViews.map(\.path).filter { $0.hasPrefix("block0/bn1") } == ["block0/bn1/running_mean", "block0/bn1/running_var"])
        // γ, β are excluded from weight decay and trust ratios like biases.
        #expect(network.views.filter { $0.layer.contains("bn") }.allSatisfy { !$0.spec.isWeight })
        #expect(network.outputShapes == [[3, 6, 6], [3, 6, 6], [4, 3, 3], [4, 3, 3], [4], [3]])
        // [groups, Σ μ (C), Σ σ² (C)] per BatchNorm: bn0 (3 channels), then 3 + 2 of 4 channels.
        #expect(network.statisticsCount == (1 + 2 * 3) + 5 * (1 + 2 * 4))
    }

    @Test(arguments: [BatchNorm.Statistics.group, .local, .global])
    func gradientsMatchFloat64FiniteDifferences(_ statistics: BatchNorm.Statistics) throws {
        let f = try Self.fixture(statistics)
        let lossSum = GradientCheckTests.analytic(f.network, x: f.x[...], labels: f.labels[...], scaleBatch: Self.batch, accumulate: false)
        let theta = f.network.parameters.array.map(Double.init), x64 = f.x.map(Double.init)
        #expect(isClose(lossSum / Double(Self.batch), f.reference.loss(theta, x: x64, labels: f.labels, batch: Self.batch), abs: 1e-6, rel: 1e-5))
        let analytic = Array(f.network.gradients.buffer)
        let checked = expectFiniteDifferences(analytic, theta: theta, views: f.network.views, "\(statistics): ") {
            f.reference.loss($0, x: x64, labels: f.labels, batch: Self.batch)
        }
        #expect(checked == f.network.parameterCount)
    }

    /// dL/dx through the whole network (the first layer's input gradient is never needed by
    /// training, so it is checked on a block alone, whose backward writes dx).
    @Test(arguments: [false, true])
    func blockInputGradientMatchesFloat64(_ projection: Bool) throws {
        let network = try Network(inputShape: [2, 4, 4], layers: [
            LayerSpec(Residual.Kind.basic(channels: projection ? 3 : 2, stride: projection ? 2 : 1, group: 2, zeroInitLast: false)),
            LayerSpec(GlobalAvgPool.Kind()), LayerSpec(units: 3, activation: .identity)])
        network.initialize(seed: 3)
        var rng = Xoshiro256(seed: 3, stream: 9)
        let x = uniformFloats(Self.batch * 32, -1, 1, rng: &rng)
        network.reserve(batch: Self.batch)
        let block = network.layers[0]
        let y = FloatBuffer(count: Self.batch * block.outputWidth)
        let dx = FloatBuffer(count: Self.batch * block.inputWidth)
        let reference = ReferenceResNet(network: network)
        let theta = network.parameters.array.map(Double.init)
        // L = Σ y · r for a fixed r: dL/dy = r.
        let r = uniformFloats(Self.batch * block.outputWidth, -1, 1, rng: &rng)
        x.withUnsafeBufferPointer { px in
            block.forward(x: px.baseAddress!, y: y.pointer, batch: Self.batch, mode: .train)
            r.withUnsafeBufferPointer { pr in
                block.backward(x: px.baseAddress!, y: y.pointer, dy: pr.baseAddress!, dx: dx.pointer, batch: Self.batch, accumulate: false)
            }
        }
        func objective(_ input: [Double]) -> Double {
            var unused = Double.infinity
            let out = reference.output(ofLayer: 0, theta, x: input, batch: Self.batch, margin: &unused)
            return zip(out, r).reduce(0) { $0 + $1.0 * Double($1.1) }
        }
        let x64 = x.map(Double.init)
        let h = 1e-6
        for i in stride(from: 0, to: x.count, by: 3) {
            var plus = x64, minus = x64
            plus[i] += h
            minus[i] -= h
            let numeric = (objective(plus) - objective(minus)) / (2 * h)
            #expect(isClose(Double(dx.pointer[i]), numeric, abs: 1e-4, rel: 1e-3), "dx[\(i)] \(dx.pointer[i]) vs \(numeric)")
        }
    }

    /// A step's statistics, committed, move the running statistics by PyTorch's momentum rule over
    /// the mean of the groups' μ and unbiased σ²; evaluation then normalises with them.
    @Test func runningStatisticsAndEvaluation() throws {
        let network = try Network(inputShape: [3], layers: [
            LayerSpec(BatchNorm.Kind(statistics: .group, group: 2, momentum: 0.25)), LayerSpec(units: 2, activation: .identity)])
        network.initialize(seed: 1)
        let x: [Float] = [1, 2, 3, 2, 0, 7, -1, 5, 4, 3, 1, 1]   // 4 samples of 3 features
        network.reserve(batch: 4)
        network.resetStatistics()
        x.withUnsafeBufferPointer { _ = network.forward($0.baseAddress!, batch: 4) }
        network.commitStatistics(network.statistics)
        let state = network.state.array
        for f in 0..<3 {
            var means: [Double] = [], variances: [Double] = []
            for g in 0..<2 {
                let v = [Double(x[(2 * g) * 3 + f]), Double(x[(2 * g + 1) * 3 + f])]
                let m = (v[0] + v[1]) / 2
                means.append(m)
                variances.append((v[0] - m) * (v[0] - m) + (v[1] - m) * (v[1] - m))   // unbiased, n = 2
            }
            let mean = 0.75 * 0 + 0.25 * (means[0] + means[1]) / 2
            let variance = 0.75 * 1 + 0.25 * (variances[0] + variances[1]) / 2
            #expect(isClose(Double(state[f]), mean, abs: 1e-6, rel: 1e-6), "running_mean[\(f)] \(state[f]) vs \(mean)")
            #expect(isClose(Double(state[3 + f]), variance, abs: 1e-6, rel: 1e-6), "running_var[\(f)] \(state[3 + f]) vs \(variance)")
        }
        let reference = ReferenceResNet(network: network)
        var unused = Double.infinity
        let want = reference.logits(network.parameters.array.map(Double.init), x: x.map(Double.init), batch: 4, train: false,
                                    state: state.map(Double.init), margin: &unused)
        let got = x.withUnsafeBufferPointer { Array(UnsafeBufferPointer(start: network.forward($0.baseAddress!, batch: 4, mode: .eval), count: 8)) }
        for (g, w) in zip(got, want) { #expect(isClose(Double(g), w, abs: 1e-6, rel: 1e-5), "eval logit \(g) vs \(w)") }
        // Evaluation adds nothing to the statistics.
        network.resetStatistics()
        x.withUnsafeBufferPointer { _ = network.forward($0.baseAddress!, batch: 4, mode: .eval) }
        #expect(UnsafeBufferPointer(start: network.statistics, count: network.statisticsCount).allSatisfy { $0 == 0 })
    }

    /// Dropout: y = x·mask/(1 − r), dx = dy·mask/(1 − r); the mask of a sample depends on the
    /// step and its position in the global batch, not on how the batch is split into passes.
    @Test func dropoutMasksAndGradient() throws {
        let network = try Network(inputShape: [64], layers: [LayerSpec(Dropout.Kind(rate: 0.25)), LayerSpec(units: 2, activation: .identity)])
        network.pass.seed = 11
        network.pass.step = 5
        let layer = network.layers[0]
        network.reserve(batch: 8)
        var rng = Xoshiro256(seed: 4)
        let x = uniformFloats(8 * 64, 0.5, 1, rng: &rng)   // no zeros, so a zero output is a dropped value
        let whole = FloatBuffer(count: 8 * 64), halves = FloatBuffer(count: 8 * 64), dx = FloatBuffer(count: 8 * 64)
        x.withUnsafeBufferPointer { px in
            network.pass.firstSample = 0
            layer.forward(x: px.baseAddress!, y: whole.pointer, batch: 8, mode: .train)
            layer.backward(x: px.baseAddress!, y: whole.pointer, dy: px.baseAddress!, dx: dx.pointer, batch: 8, accumulate: false)
            // The same samples as two passes of 4 (two ranks' shares).
            layer.forward(x: px.baseAddress!, y: halves.pointer, batch: 4, mode: .train)
            network.pass.firstSample = 4
            layer.forward(x: px.baseAddress! + 4 * 64, y: halves.pointer + 4 * 64, batch: 4, mode: .train)
        }
        #expect(whole.array == halves.array)
        let kept = whole.array.filter { $0 != 0 }.count
        #expect(kept > 320 && kept < 448, "\(kept) of 512 kept at rate 0.25")
        for i in 0..<(8 * 64) {
            let mask: Float = whole.pointer[i] != 0 ? 1 : 0
            #expect(whole.pointer[i] == x[i] * mask * Float(1 / 0.75))
            #expect(dx.pointer[i] == x[i] * mask * Float(1 / 0.75))
        }
        // Another step draws other masks; evaluation drops nothing.
        network.pass.step = 6
        network.pass.firstSample = 0
        let other = FloatBuffer(count: 8 * 64), eval = FloatBuffer(count: 8 * 64)
        x.withUnsafeBufferPointer { px in
            layer.forward(x: px.baseAddress!, y: other.pointer, batch: 8, mode: .train)
            layer.forward(x: px.baseAddress!, y: eval.pointer, batch: 8, mode: .eval)
        }
        #expect(other.array != whole.array)
        #expect(eval.array == x)
    }
}
