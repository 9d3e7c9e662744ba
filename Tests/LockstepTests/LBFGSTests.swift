// Minibatch L-BFGS's driver (`LBFGS`) on problems with a known Float64 optimum: a convex
// quadratic (solved exactly) and L2-regularised logistic regression (solved by Newton's method
// in Float64), with both line searches; plus its non-finite handling and checkpointed state.

import Foundation
import Lockstep
import Testing

struct LBFGSTests {
    /// Solves A x = b (A symmetric positive definite) by Gaussian elimination in Float64.
    static func solve(_ a: [[Double]], _ b: [Double]) -> [Double] {
        var m = a, x = b
        let n = b.count
        for k in 0..<n {
            for i in (k + 1)..<n {
                let f = m[i][k] / m[k][k]
                for j in k..<n { m[i][j] -= f * m[k][j] }
                x[i] -= f * x[k]
            }
        }
        for i in stride(from: n - 1, through: 0, by: -1) {
            x[i] = (x[i] - ((i + 1)..<n).reduce(0.0) { $0 + m[i][$1] * x[$1] }) / m[i][i]
        }
        return x
    }

    /// f(w) = ½ wᵀAw − bᵀw with A = BᵀB/n + 0.1·I (condition number in the tens).
    struct Quadratic {
        let a: [[Double]]
        let b: [Double]
        init(n: Int, seed: UInt64) {
            var rng = Xoshiro256(seed: seed)
            let m = (0..<n).map { _ in (0..<n).map { _ in rng.nextUnit() * 2 - 1 } }
            var a = [[Double]](repeating: [Double](repeating: 0, count: n), count: n)
            for i in 0..<n {
                for j in 0..<n {
                    var sum = 0.0
                    for k in 0..<n { sum += m[k][i] * m[k][j] }
                    a[i][j] = sum / Double(n) + (i == j ? 0.1 : 0)
                }
            }
            self.a = a
            b = (0..<n).map { _ in rng.nextUnit() * 2 - 1 }
        }
        func value(_ w: [Double]) -> Double {
            var f = 0.0
            for i in b.indices {
                var aw = 0.0
                for j in b.indices { aw += a[i][j] * w[j] }
                f += 0.5 * w[i] * aw - b[i] * w[i]
            }
            return f
        }
        /// The objective as L-BFGS sees it: Float32 parameters in, Float32 gradient out.
        func evaluate(_ w: UnsafePointer<Float>, _ g: UnsafeMutablePointer<Float>) -> Double {
            let n = b.count
            let x = (0..<n).map { Double(w[$0]) }
            for i in 0..<n { g[i] = Float((0..<n).reduce(0.0) { $0 + a[i][$1] * x[$1] } - b[i]) }
            return value(x)
        }
    }

    /// Mean logistic loss over ±1 labels plus (λ/2)‖w‖², on synthetic data with a bias column.
    struct Logistic {
        let x: [[Double]]
        let y: [Double]
        let lambda = 0.01
        init(samples: Int, features: Int, seed: UInt64) {
            var rng = Xoshiro256(seed: seed)
            let truth = (0..<features).map { _ in rng.nextUnit() * 4 - 2 }
            var rows: [[Double]] = [], labels: [Double] = []
            for _ in 0..<samples {
                let row = (0..<features).map { $0 == features - 1 ? 1.0 : rng.nextUnit() * 2 - 1 }
                let margin = zip(row, truth).map(*).reduce(0, +)
                // Noisy labels, so the data are not separable and the optimum is interior.
                labels.append(rng.nextUnit() < 1 / (1 + exp(-margin)) ? 1 : -1)
                rows.append(row)
            }
            x = rows
            y = labels
        }
        /// (f, ∇f, ∇²f) in Float64.
        func derivatives(_ w: [Double]) -> (Double, [Double], [[Double]]) {
            let n = Double(x.count), d = w.count
            var f = 0.5 * lambda * w.map { $0 * $0 }.reduce(0, +)
            var g = w.map { lambda * $0 }
            var h = (0..<d).map { i in (0..<d).map { j in i == j ? lambda : 0 } }
            for (row, label) in zip(x, y) {
                let z = label * zip(row, w).map(*).reduce(0, +)
                f += (z > 0 ? log1p(exp(-z)) : -z + log1p(exp(z))) / n
                let sigma = 1 / (1 + exp(z))          // σ(−z)
                for i in 0..<d {
                    g[i] -= label * sigma * row[i] / n
                    for j in 0..<d { h[i][j] += sigma * (1 - sigma) * row[i] * row[j] / n }
                }
            }
            return (f, g, h)
        }
        func newtonOptimum(features: Int) -> [Double] {
            var w = [Double](repeating: 0, count: features)
            for _ in 0..<50 {
                let (_, g, h) = derivatives(w)
                let step = LBFGSTests.solve(h, g)
                for i in 0..<features { w[i] -= step[i] }
            }
            return w
        }
        func evaluate(_ w: UnsafePointer<Float>, _ g: UnsafeMutablePointer<Float>) -> Double {
            let (f, grad, _) = derivatives((0..<x[0].count).map { Double(w[$0]) })
            for i in grad.indices { g[i] = Float(grad[i]) }
            return f
        }
    }

    static func settings(_ search: LBFGSSettings.LineSearch, inner: Int) -> LBFGSSettings {
        var s = LBFGSSettings()
        s.lineSearch = search
        s.inner = inner
        s.history = 5
        return s
    }

    static func relativeError(_ w: [Float], _ want: [Double]) -> Double {
        let diff = zip(w, want).map { (Double($0) - $1) * (Double($0) - $1) }.reduce(0, +).squareRoot()
        return diff / want.map { $0 * $0 }.reduce(0, +).squareRoot()
    }

    @Test(arguments: LBFGSSettings.LineSearch.allCases)
    func convergesToTheOptimumOfAConvexQuadratic(_ search: LBFGSSettings.LineSearch) {
        let n = 20
        let problem = Quadratic(n: n, seed: 3)
        let optimum = Self.solve(problem.a, problem.b)
        let lbfgs = LBFGS(parameterCount: n, settings: Self.settings(search, inner: 100))
        var w = [Float](repeating: 0, count: n)
        _ = w.withUnsafeMutableBufferPointer { wp in
            lbfgs.step(parameters: wp.baseAddress!, lr: 1) { g in problem.evaluate(wp.baseAddress!, g) }
        }
        // Float32 iterates of a problem with condition number ~40: 1e-4 relative to ‖w*‖.
        #expect(Self.relativeError(w, optimum) <= 1e-4, "\(search): \(Self.relativeError(w, optimum))")
        let fStar = problem.value(optimum)
        #expect(abs(problem.value(w.map(Double.init)) - fStar) <= 1e-6 * abs(fStar))
        // Quasi-Newton, not gradient descent: far fewer iterations than the 100 allowed.
        #expect(lbfgs.report.iterations < 60, "\(search): \(lbfgs.report.iterations) iterations")
        #expect(lbfgs.report.restarts == 0)
    }

    @Test(arguments: LBFGSSettings.LineSearch.allCases)
    func convergesToTheOptimumOfLogisticRegression(_ search: LBFGSSettings.LineSearch) {
        let features = 6
        let problem = Logistic(samples: 300, features: features, seed: 11)
        let optimum = problem.newtonOptimum(features: features)
        // Newton converged: its gradient is zero in Float64.
        #expect(problem.derivatives(optimum).1.map(abs).max()! < 1e-12)
        let lbfgs = LBFGS(parameterCount: features, settings: Self.settings(search, inner: 200))
        var w = [Float](repeating: 0, count: features)
        // Several batches' worth of steps on the same (full) batch, the history carried over.
        for _ in 0..<3 {
            _ = w.withUnsafeMutableBufferPointer { wp in
                lbfgs.step(parameters: wp.baseAddress!, lr: 1) { g in problem.evaluate(wp.baseAddress!, g) }
            }
        }
        #expect(Self.relativeError(w, optimum) <= 1e-4, "\(search): \(Self.relativeError(w, optimum))")
        let fStar = problem.derivatives(optimum).0
        #expect(problem.derivatives(w.map(Double.init)).0 - fStar <= 1e-7 * fStar)
    }

    /// A loss that is NaN off a small ball: the first trial steps land outside it and must be
    /// refused, and the search still converges inside.
    @Test(arguments: LBFGSSettings.LineSearch.allCases)
    func nonFiniteTrialPointsAreRefused(_ search: LBFGSSettings.LineSearch) {
        let n = 4
        let target: [Float] = [0.5, -0.25, 0.125, 0.3]
        let lbfgs = LBFGS(parameterCount: n, settings: Self.settings(search, inner: 40))
        var w = [Float](repeating: 0, count: n)
        _ = w.withUnsafeMutableBufferPointer { wp in
            // lr = 50: the first trial is far outside the ball of radius 1.
            lbfgs.step(parameters: wp.baseAddress!, lr: 50) { g in
                let p = wp.baseAddress!
                var f = 0.0
                for i in 0..<n {
                    let d = Double(p[i] - target[i])
                    f += 0.5 * d * d * Double(i + 1)
                    g[i] = Float(d * Double(i + 1))
                }
                return (0..<n).map { Double(p[$0] * p[$0]) }.reduce(0, +) > 1 ? .nan : f
            }
        }
        for i in 0..<n { #expect(abs(w[i] - target[i]) <= 1e-5, "\(search) component \(i): \(w[i])") }
        #expect(lbfgs.report.evaluations > lbfgs.report.iterations + 1, "some trials were refused")
    }

    /// After one good iteration the loss becomes NaN everywhere but at the current point: the
    /// quasi-Newton search fails, the history is cleared (a restart), the plain-gradient search
    /// fails too, and the parameters go back to where that iteration started.
    @Test func aFailedSearchRestartsAndRestoresTheParameters() {
        let n = 3
        let lbfgs = LBFGS(parameterCount: n, settings: Self.settings(.armijo, inner: 5))
        var w: [Float] = [1, 2, 3]
        var evaluations = 0
        var afterFirst: [Float] = []
        _ = w.withUnsafeMutableBufferPointer { wp in
            lbfgs.step(parameters: wp.baseAddress!, lr: 1) { g in
                let p = wp.baseAddress!
                evaluations += 1
                for i in 0..<n { g[i] = p[i] }
                let f = (0..<n).map { 0.5 * Double(p[$0] * p[$0]) }.reduce(0, +)
                if evaluations == 2 { afterFirst = Array(UnsafeBufferPointer(start: p, count: n)) }
                return evaluations <= 2 ? f : .nan
            }
        }
        #expect(lbfgs.report.iterations == 1)
        #expect(lbfgs.report.restarts == 1)
        #expect(lbfgs.history.size == 0)
        #expect(w == afterFirst, "back at the last accepted point")
        // 2 evaluations, then two failed searches of max_evals each.
        #expect(lbfgs.report.evaluations == 2 + 2 * LBFGSSettings().maxEvaluations)
    }

    /// A non-finite loss at the start changes nothing and is reported to the caller.
    @Test func aNonFiniteStartingLossIsReturnedUntouched() {
        let lbfgs = LBFGS(parameterCount: 2, settings: LBFGSSettings())
        var w: [Float] = [1, 2]
        let f = w.withUnsafeMutableBufferPointer { wp in
            lbfgs.step(parameters: wp.baseAddress!, lr: 1) { g in g[0] = 1; g[1] = 1; return .infinity }
        }
        #expect(f == .infinity && w == [1, 2] && lbfgs.report.evaluations == 1)
    }

    /// The history's slots are the whole state: copied into a fresh driver and restored, they
    /// give bitwise the same direction, also after the ring has wrapped.
    @Test func checkpointedHistoryRestoresTheSameDirection() {
        let n = 5
        let pairs = LBFGSHistoryTests.quadraticPairs(n: n, pairs: 7, seed: 2)
        let original = LBFGS(parameterCount: n, settings: Self.settings(.armijo, inner: 1))
        for (s, y) in pairs { original.history.offer(s: s.map(Float.init), y: y.map(Float.init)) }
        #expect(original.history.size == 5)
        let copy = LBFGS(parameterCount: n, settings: Self.settings(.armijo, inner: 1))
        #expect(copy.stateBuffers.map(\.name) == original.stateBuffers.map(\.name))
        for (mine, theirs) in zip(copy.stateBuffers, original.stateBuffers) {
            mine.buffer.copy(from: Array(theirs.buffer.buffer))
        }
        copy.stateRestored()
        #expect(copy.history.size == 5)
        // Slot 0 holds the oldest kept pair: the third offered.
        #expect(Array(copy.stateBuffers[0].buffer.buffer) == pairs[2].0.map(Float.init))
        let g: [Float] = [0.1, -0.2, 0.3, 0.05, -0.4]
        var a = [Float](repeating: 0, count: n), b = a
        original.history.direction(gradient: g, into: &a)
        copy.history.direction(gradient: g, into: &b)
        #expect(a == b)
    }
}
