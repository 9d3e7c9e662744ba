// SoftmaxCrossEntropy: loss and gradient against Float64 log-sum-exp (large logits too), argmax
// counting, and label smoothing against a Float64 reference (ε = 0 bitwise the plain loss).
import Testing
import Lockstep
#if canImport(Glibc)
import Glibc
#endif

@Suite struct SoftmaxCrossEntropyTests {
    /// Σ_rows −log softmax(z)[label] and (softmax − onehot)·scale, in Float64.
    static func reference(_ logits: [Float], _ labels: [Int32], classes: Int, scale: Double) -> (loss: Double, grad: [Double]) {
        var loss = 0.0
        var grad = [Double](repeating: 0, count: logits.count)
        for r in 0..<labels.count {
            let z = logits[(r * classes)..<((r + 1) * classes)].map(Double.init)
            let m = z.max()!
            let sum = z.reduce(0) { $0 + exp($1 - m) }
            loss += m + log(sum) - z[Int(labels[r])]
            for j in 0..<classes {
                grad[r * classes + j] = (exp(z[j] - m) / sum - (j == Int(labels[r]) ? 1 : 0)) * scale
            }
        }
        return (loss, grad)
    }

    static func run(_ logits: [Float], _ labels: [Int32], classes: Int, scale: Float) -> (loss: Double, grad: [Float]) {
        var d = [Float](repeating: .nan, count: logits.count)
        let loss = SoftmaxCrossEntropy.lossAndGradient(logits: logits, labels: labels, dlogits: &d,
                                                       batch: labels.count, classes: classes, scale: scale)
        return (loss, d)
    }

    @Test func matchesFloat64OnOrdinaryLogits() {
        var rng = Xoshiro256(seed: 77)
        let classes = 10, rows = 6
        let logits = uniformFloats(rows * classes, -4, 4, rng: &rng)
        let labels = (0..<rows).map { _ in Int32(rng.next(below: classes)) }
        let (loss, grad) = Self.run(logits, labels, classes: classes, scale: 1.0 / 6)
        let ref = Self.reference(logits, labels, classes: classes, scale: 1.0 / 6)
        // Float32 exp/log over 10 classes: 1e-5 relative on the loss, 1e-6 absolute on gradients (≤ 1/6).
        #expect(isClose(loss, ref.loss, abs: 1e-6, rel: 1e-5), "loss \(loss) vs \(ref.loss)")
        for (g, r) in zip(grad, ref.grad) { #expect(isClose(Double(g), r, abs: 1e-6, rel: 1e-5), "\(g) vs \(r)") }
        // Each row of (softmax − onehot) sums to zero.
        for r in 0..<rows {
            #expect(abs(grad[(r * classes)..<((r + 1) * classes)].reduce(0, +)) < 1e-6)
        }
    }

    @Test func stableForLargeLogits() {
        // exp(1000) overflows Float32 and Float64 alike; only the max-shifted form survives.
        let logits: [Float] = [1000, 999.5, 998,
                               -1000, -1000.25, -1003,
                               1000, -1000, 0,
                               3e4, 3e4, 3e4]
        let labels: [Int32] = [2, 0, 1, 1]
        let (loss, grad) = Self.run(logits, labels, classes: 3, scale: 0.25)
        let ref = Self.reference(logits, labels, classes: 3, scale: 0.25)
        #expect(loss.isFinite && grad.allSatisfy(\.isFinite))
        // The loss here is ~2000 (row 3): compare with 1e-5 relative; gradients ≤ 0.25: 1e-6 absolute.
        #expect(isClose(loss, ref.loss, abs: 1e-5, rel: 1e-5), "loss \(loss) vs \(ref.loss)")
        for (g, r) in zip(grad, ref.grad) { #expect(isClose(Double(g), r, abs: 1e-6, rel: 1e-5), "\(g) vs \(r)") }
        // Row 4: three equal logits → loss log 3, gradient (1/3 − onehot)/4.
        let row4 = Self.run(Array(logits[9...]), [Int32(0)], classes: 3, scale: 1)
        #expect(isClose(row4.loss, log(3.0), abs: 1e-6, rel: 0))
    }

    @Test func scaleMultipliesGradientNotLoss() {
        let logits: [Float] = [0.5, -1, 2, 0.25]
        let a = Self.run(logits, [3], classes: 4, scale: 1)
        let b = Self.run(logits, [3], classes: 4, scale: 0.125)
        #expect(a.loss == b.loss)
        for (x, y) in zip(a.grad, b.grad) { #expect(isClose(Double(y), Double(x) * 0.125, abs: 1e-9, rel: 1e-6)) }
    }

    /// Label smoothing ε in Float64: target t = (1 − ε)·onehot + ε/K; a row's loss is
    /// −Σ_k t_k·log p_k and its gradient (p − t)·scale.
    static func smoothedReference(_ logits: [Float], _ labels: [Int32], classes: Int, scale: Double, eps: Double)
        -> (loss: Double, grad: [Double]) {
        var loss = 0.0
        var grad = [Double](repeating: 0, count: logits.count)
        for r in 0..<labels.count {
            let z = logits[(r * classes)..<((r + 1) * classes)].map(Double.init)
            let m = z.max()!
            let logSum = m + log(z.reduce(0) { $0 + exp($1 - m) })
            for k in 0..<classes {
                let target = (k == Int(labels[r]) ? 1 - eps : 0) + eps / Double(classes)
                let logP = z[k] - logSum
                loss -= target * logP
                grad[r * classes + k] = (exp(logP) - target) * scale
            }
        }
        return (loss, grad)
    }

    @Test(arguments: [0.0, 0.1, 0.5])
    func labelSmoothingMatchesFloat64(_ eps: Double) {
        var rng = Xoshiro256(seed: 91)
        for (rows, classes, spread) in [(6, 10, 4.0), (5, 3, 12.0), (8, 7, 1.0), (3, 2, 30.0)] {
            let logits = uniformFloats(rows * classes, -spread, spread, rng: &rng)
            let labels = (0..<rows).map { _ in Int32(rng.next(below: classes)) }
            let scale = 1.0 / Double(rows)
            var d = [Float](repeating: .nan, count: logits.count)
            let loss = SoftmaxCrossEntropy.lossAndGradient(logits: logits, labels: labels, dlogits: &d, batch: rows,
                                                           classes: classes, scale: Float(scale), labelSmoothing: Float(eps))
            let ref = Self.smoothedReference(logits, labels, classes: classes, scale: scale, eps: eps)
            // Float32 exp/log: 1e-5 relative on the loss (≤ ~60 here), 1e-6 absolute on gradients (≤ 1/3).
            #expect(isClose(loss, ref.loss, abs: 1e-5, rel: 1e-5), "ε \(eps) K \(classes): loss \(loss) vs \(ref.loss)")
            for (g, r) in zip(d, ref.grad) { #expect(isClose(Double(g), r, abs: 1e-6, rel: 1e-5), "ε \(eps) K \(classes): \(g) vs \(r)") }
            // Each row of (p − t) still sums to zero (both sum to 1).
            for r in 0..<rows {
                #expect(abs(d[(r * classes)..<((r + 1) * classes)].reduce(0, +)) < 1e-6)
            }
            // The reference is PyTorch's form: (1 − ε)·(−log p_y) + ε·mean_k(−log p_k).
            let plain = Self.reference(logits, labels, classes: classes, scale: 1).loss
            let uniform = Self.smoothedReference(logits, labels, classes: classes, scale: 1, eps: 1).loss
            #expect(isClose(ref.loss, (1 - eps) * plain + eps * uniform, abs: 1e-9, rel: 1e-12))
        }
    }

    @Test func noSmoothingIsBitwiseThePlainLoss() {
        var rng = Xoshiro256(seed: 5)
        for classes in [2, 4, 10] {
            let logits = uniformFloats(9 * classes, -20, 20, rng: &rng)
            let labels = (0..<9).map { _ in Int32(rng.next(below: classes)) }
            let plain = Self.run(logits, labels, classes: classes, scale: 0.125)
            var d = [Float](repeating: .nan, count: logits.count)
            let zero = SoftmaxCrossEntropy.lossAndGradient(logits: logits, labels: labels, dlogits: &d, batch: 9,
                                                           classes: classes, scale: 0.125, labelSmoothing: 0)
            #expect(zero.bitPattern == plain.loss.bitPattern)
            #expect(d.map(\.bitPattern) == plain.grad.map(\.bitPattern))
            // Evaluation's loss is the plain one whatever training smooths.
            let eval = SoftmaxCrossEntropy.lossAndCorrect(logits: logits, labels: labels, batch: 9, classes: classes)
            #expect(isClose(eval.loss, plain.loss, abs: 1e-9, rel: 1e-9))
        }
    }

    @Test func lossAndCorrectCountsArgmax() {
        let logits: [Float] = [0.1, 2.0, -1.0,     // argmax 1
                               5.0, 4.9, 4.8,      // argmax 0
                               -3, -2, -1,         // argmax 2
                               1000, 1001, 999,    // argmax 1, large
                               2, 2, 1]            // tie: the first index wins (like numpy.argmax)
        let labels: [Int32] = [1, 2, 2, 1, 0]      // right, wrong, right, right, right (tie)
        let (loss, correct) = SoftmaxCrossEntropy.lossAndCorrect(logits: logits, labels: labels, batch: 5, classes: 3)
        #expect(correct == 4)
        let ref = Self.reference(logits, labels, classes: 3, scale: 1)
        #expect(isClose(loss, ref.loss, abs: 1e-5, rel: 1e-5), "loss \(loss) vs \(ref.loss)")
        // Same loss as the training path.
        let (trainLoss, _) = Self.run(logits, labels, classes: 3, scale: 1)
        #expect(isClose(loss, trainLoss, abs: 1e-9, rel: 1e-9))
        let tieOther = SoftmaxCrossEntropy.lossAndCorrect(logits: [2, 2, 1], labels: [1], batch: 1, classes: 3)
        #expect(tieOther.correct == 0)
        let none = SoftmaxCrossEntropy.lossAndCorrect(logits: [0, 1, 0, 1, 0, 0], labels: [0, 1], batch: 2, classes: 3)
        #expect(none.correct == 0)
    }
}
