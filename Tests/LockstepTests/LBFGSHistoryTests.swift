// The L-BFGS two-loop recursion against a dense BFGS inverse-Hessian reference in Float64,
// the curvature guard, the history limit and clearing.

import Lockstep
import Testing

struct LBFGSHistoryTests {
    /// Dense BFGS: H ← (I − ρ s yᵀ) H (I − ρ y sᵀ) + ρ s sᵀ over the pairs, from H0 = γI with γ
    /// from the newest pair (the matrix the two-loop recursion applies implicitly).
    static func denseDirection(pairs: [([Double], [Double])], g: [Double]) -> [Double] {
        let n = g.count
        let (sl, yl) = pairs.last!
        let gamma = zip(sl, yl).map(*).reduce(0, +) / yl.map { $0 * $0 }.reduce(0, +)
        var h = (0..<n).map { i in (0..<n).map { j in i == j ? gamma : 0.0 } }
        for (s, y) in pairs {
            let rho = 1 / zip(s, y).map(*).reduce(0, +)
            // A = I − ρ s yᵀ; H ← A H Aᵀ + ρ s sᵀ
            let a = (0..<n).map { i in (0..<n).map { j in (i == j ? 1.0 : 0.0) - rho * s[i] * y[j] } }
            let ah = (0..<n).map { i in (0..<n).map { j in (0..<n).reduce(0.0) { $0 + a[i][$1] * h[$1][j] } } }
            h = (0..<n).map { i in (0..<n).map { j in (0..<n).reduce(0.0) { $0 + ah[i][$1] * a[j][$1] } + rho * s[i] * s[j] } }
        }
        return (0..<n).map { i in -(0..<n).reduce(0.0) { $0 + h[i][$1] * g[$1] } }
    }

    /// Pairs from a convex quadratic f(w) = ½ wᵀAw (y = A s, so sᵀy > 0 always).
    static func quadraticPairs(n: Int, pairs: Int, seed: UInt64) -> [([Double], [Double])] {
        var rng = Xoshiro256(seed: seed)
        let b = (0..<n).map { _ in (0..<n).map { _ in rng.nextUnit() - 0.5 } }
        // A = BᵀB + I: symmetric positive definite.
        let a = (0..<n).map { i in (0..<n).map { j in (0..<n).reduce(0.0) { $0 + b[$1][i] * b[$1][j] } + (i == j ? 1 : 0) } }
        return (0..<pairs).map { _ in
            let s = (0..<n).map { _ in Float(rng.nextUnit() - 0.5) }.map(Double.init)
            let y = (0..<n).map { i in Double(Float((0..<n).reduce(0.0) { $0 + a[i][$1] * s[$1] })) }
            return (s, y)
        }
    }

    @Test(arguments: [1, 3, 5])
    func twoLoopMatchesDenseBFGS(_ pairCount: Int) {
        let n = 7
        let pairs = Self.quadraticPairs(n: n, pairs: pairCount, seed: UInt64(pairCount))
        let history = LBFGSHistory(capacity: 10, count: n)
        for (s, y) in pairs {
            #expect(history.offer(s: s.map(Float.init), y: y.map(Float.init)))
        }
        var rng = Xoshiro256(seed: 99)
        let g = (0..<n).map { _ in Double(Float(rng.nextUnit() - 0.5)) }
        var d = [Float](repeating: 0, count: n)
        history.direction(gradient: g.map(Float.init), into: &d)
        let want = Self.denseDirection(pairs: pairs, g: g)
        let scale = want.map(abs).max()!
        // Float32 recursion vs Float64 dense algebra: 1e-4 relative to the largest component.
        for i in 0..<n { #expect(abs(Double(d[i]) - want[i]) <= 1e-4 * scale, "component \(i): \(d[i]) vs \(want[i])") }
        // A descent direction.
        #expect(zip(d, g).map { Double($0) * $1 }.reduce(0, +) < 0)
    }

    @Test func historyKeepsTheNewestPairsAndGuardsCurvature() {
        let n = 5
        let pairs = Self.quadraticPairs(n: n, pairs: 6, seed: 4)
        let limited = LBFGSHistory(capacity: 3, count: n)
        for (s, y) in pairs { limited.offer(s: s.map(Float.init), y: y.map(Float.init)) }
        #expect(limited.size == 3)
        let g = [0.3, -0.2, 0.1, 0.5, -0.4]
        var d = [Float](repeating: 0, count: n)
        limited.direction(gradient: g.map(Float.init), into: &d)
        let want = Self.denseDirection(pairs: Array(pairs.suffix(3)), g: g)
        let scale = want.map(abs).max()!
        for i in 0..<n { #expect(abs(Double(d[i]) - want[i]) <= 1e-4 * scale) }

        // Negative curvature (sᵀy < 0) is refused and changes nothing.
        let s: [Float] = [1, 0, 0, 0, 0], y: [Float] = [-1, 0, 0, 0, 0]
        #expect(!limited.offer(s: s, y: y))
        #expect(limited.size == 3)

        // Cleared: the direction is the negative gradient.
        limited.clear()
        limited.direction(gradient: g.map(Float.init), into: &d)
        #expect(d == g.map { -Float($0) })
    }
}
