// Minibatch L-BFGS (docs/algorithms.md §5, Silk et al.): up to `inner` quasi-Newton iterations on one
// batch, each with a line search (Armijo backtracking or strong Wolfe) on that same batch, and the
// curvature pair (s, y) taken on that batch too. The batch objective is a closure the caller
// provides (the trainer's: gather, forward, backward, allreduce), so every number that decides a
// branch here (losses, gᵀd, step sizes) is computed from allreduced data and is bitwise the same
// on every rank: all ranks take the same branches and make the same number of evaluations.
//
// Non-finite handling: a non-finite or non-descent direction clears the history and falls back to
// −g; a trial point with a non-finite loss counts as a failed trial (the step shrinks); a line
// search that fails along a quasi-Newton direction clears the history and retries along −g; if
// that fails too the parameters go back to where the batch started.

public struct LBFGSSettings: Equatable, Sendable {
    public enum LineSearch: String, Sendable, CaseIterable { case armijo, strongWolfe = "strong_wolfe" }
    /// Curvature pairs kept (m).
    public var history = 10
    /// Quasi-Newton iterations per batch.
    public var inner = 1
    public var lineSearch = LineSearch.armijo
    /// The curvature guard: keep (s, y) only if sᵀy > ε·‖s‖·‖y‖.
    public var curvatureEpsilon = 1e-10
    /// Objective evaluations (forward + backward + allreduce) one line search may use.
    public var maxEvaluations = 20
    /// Sufficient decrease (Armijo) and curvature (Wolfe) constants, the usual 1e-4 and 0.9.
    public var c1 = 1e-4
    public var c2 = 0.9
    /// Inner iterations stop early once max|g| is at most this.
    public var gradientTolerance = 1e-7
    public init() {}
}

public final class LBFGS: OptimizerState {
    /// f and ∇f at the current parameters; ∇f goes into the pointer (`count` + spare slots).
    public typealias Objective = (UnsafeMutablePointer<Float>) throws -> Double

    /// What the last `step` did, for metrics.jsonl.
    public struct Report: Sendable {
        public var evaluations = 0
        public var iterations = 0
        /// History clears (non-finite or non-descent direction, failed line search).
        public var restarts = 0
        /// The last accepted step size (0 if none was accepted).
        public var alpha = 0.0
        /// ‖g‖ at the start of the step, on the step's batch.
        public var gradientNorm = 0.0
    }

    public let settings: LBFGSSettings
    public let count: Int
    public let history: LBFGSHistory
    public var updates = 0
    public private(set) var report = Report()

    /// The gradient at the current iterate and at the trial point; swapped on acceptance.
    private var gradient: FloatBuffer
    private var trial: FloatBuffer
    private let direction: FloatBuffer
    private let start: FloatBuffer
    private let pairS: FloatBuffer
    private let pairY: FloatBuffer

    /// `spareSlots` extra floats in each gradient buffer travel with the gradient (the trainer's loss).
    public init(parameterCount: Int, settings: LBFGSSettings, spareSlots: Int = 0) {
        self.settings = settings
        count = parameterCount
        history = LBFGSHistory(capacity: settings.history, count: parameterCount)
        gradient = FloatBuffer(count: parameterCount + spareSlots)
        trial = FloatBuffer(count: parameterCount + spareSlots)
        direction = FloatBuffer(count: parameterCount)
        start = FloatBuffer(count: parameterCount)
        pairS = FloatBuffer(count: parameterCount)
        pairY = FloatBuffer(count: parameterCount)
    }

    public var stateBuffers: [(name: String, buffer: FloatBuffer)] { history.stateBuffers }
    public func stateRestored() { history.restored() }

    /// Up to `settings.inner` iterations on the batch `objective` evaluates, starting from step
    /// size `lr` (scaled by min(1, 1/‖g‖₁) while the history is empty). Returns the batch loss at
    /// the starting parameters; a non-finite one returns at once with nothing changed.
    @discardableResult
    public func step(parameters w: UnsafeMutablePointer<Float>, lr: Double, objective: Objective) rethrows -> Double {
        report = Report()
        var f = try evaluate(objective, into: gradient)
        let initialLoss = f
        report.gradientNorm = Norms.l2(gradient.pointer, count)
        guard f.isFinite else { return f }
        for _ in 0..<settings.inner {
            if maxAbs(gradient.pointer) <= settings.gradientTolerance { break }
            var gtd = chooseDirection()
            start.pointer.update(from: w, count: count)
            var found = try lineSearch(w, f0: f, gtd: gtd, alpha0: initialStep(lr), objective)
            if found == nil && history.size > 0 {
                // The quasi-Newton direction failed: forget the pairs and try the plain gradient.
                history.clear()
                report.restarts += 1
                gtd = steepestDescent()
                found = try lineSearch(w, f0: f, gtd: gtd, alpha0: initialStep(lr), objective)
            }
            guard let (alpha, fNew) = found else {
                w.update(from: start.pointer, count: count)
                break
            }
            report.iterations += 1
            report.alpha = alpha
            updates += 1
            // s = w_new − w and y = ∇f(w_new) − ∇f(w), both on this batch.
            var moved = false
            for j in 0..<count {
                pairS.pointer[j] = w[j] - start.pointer[j]
                pairY.pointer[j] = trial.pointer[j] - gradient.pointer[j]
                moved = moved || pairS.pointer[j] != 0
            }
            history.offer(s: pairS.pointer, y: pairY.pointer, epsilon: settings.curvatureEpsilon)
            swap(&gradient, &trial)
            f = fNew
            if !moved { break }
        }
        return initialLoss
    }

    /// d = −H·g into `direction`; falls back to −g (clearing the history) when that is not a
    /// finite descent direction. Returns gᵀd.
    private func chooseDirection() -> Double {
        history.direction(gradient: gradient.pointer, into: direction.pointer)
        let gtd = Norms.dot(gradient.pointer, direction.pointer, count)
        if gtd.isFinite && gtd < 0 { return gtd }
        if history.size > 0 {
            history.clear()
            report.restarts += 1
        }
        return steepestDescent()
    }

    private func steepestDescent() -> Double {
        for j in 0..<count { direction.pointer[j] = -gradient.pointer[j] }
        return Norms.dot(gradient.pointer, direction.pointer, count)
    }

    /// The first trial step: lr, scaled down by ‖g‖₁ while there is no curvature information
    /// (as PyTorch's L-BFGS does), so a first step on a steep loss is not absurdly long.
    private func initialStep(_ lr: Double) -> Double {
        guard history.size == 0 else { return lr }
        var l1 = 0.0
        for j in 0..<count { l1 += Double(abs(gradient.pointer[j])) }
        return lr * min(1, 1 / max(l1, 1e-30))
    }

    /// w = start + α·d, then f and ∇f there (into `trial`), and φ'(α) = ∇fᵀd.
    private func probe(_ w: UnsafeMutablePointer<Float>, _ alpha: Double, _ objective: Objective) rethrows -> (f: Double, slope: Double) {
        let a = Float(alpha)
        for j in 0..<count { w[j] = start.pointer[j] + a * direction.pointer[j] }
        let f = try evaluate(objective, into: trial)
        let slope = settings.lineSearch == .strongWolfe ? Norms.dot(trial.pointer, direction.pointer, count) : 0
        return (f, slope)
    }

    private func evaluate(_ objective: Objective, into buffer: FloatBuffer) rethrows -> Double {
        report.evaluations += 1
        return try objective(buffer.pointer)
    }

    /// Returns (α, f(α)) with `w` at start + α·d and `trial` holding ∇f there, or nil on failure.
    private func lineSearch(_ w: UnsafeMutablePointer<Float>, f0: Double, gtd: Double, alpha0: Double,
                            _ objective: Objective) rethrows -> (Double, Double)? {
        switch settings.lineSearch {
        case .armijo: return try armijo(w, f0: f0, gtd: gtd, alpha0: alpha0, objective)
        case .strongWolfe: return try strongWolfe(w, f0: f0, gtd: gtd, alpha0: alpha0, objective)
        }
    }

    /// Backtracking: halve α until f(α) ≤ f0 + c1·α·gᵀd.
    private func armijo(_ w: UnsafeMutablePointer<Float>, f0: Double, gtd: Double, alpha0: Double,
                        _ objective: Objective) rethrows -> (Double, Double)? {
        var alpha = alpha0
        for _ in 0..<settings.maxEvaluations {
            let (f, _) = try probe(w, alpha, objective)
            if f.isFinite && f <= f0 + settings.c1 * alpha * gtd { return (alpha, f) }
            alpha *= 0.5
        }
        return nil
    }

    private struct Point {
        var alpha: Double, f: Double, slope: Double
    }

    /// Strong Wolfe (Nocedal & Wright, Algorithms 3.5 and 3.6): bracket by doubling, then zoom
    /// with safeguarded cubic interpolation until f(α) ≤ f0 + c1·α·gᵀd and |φ'(α)| ≤ c2·|gᵀd|.
    private func strongWolfe(_ w: UnsafeMutablePointer<Float>, f0: Double, gtd: Double, alpha0: Double,
                             _ objective: Objective) rethrows -> (Double, Double)? {
        let origin = Point(alpha: 0, f: f0, slope: gtd)
        var previous = origin
        var alpha = alpha0
        var budget = settings.maxEvaluations
        var bracket: (lo: Point, hi: Point)?
        while budget > 0 {
            budget -= 1
            let (f, slope) = try probe(w, alpha, objective)
            let current = Point(alpha: alpha, f: f, slope: slope)
            if !f.isFinite || !slope.isFinite || f > f0 + settings.c1 * alpha * gtd || (previous.alpha > 0 && f >= previous.f) {
                bracket = (previous, current)
                break
            }
            if abs(slope) <= -settings.c2 * gtd { return (alpha, f) }
            if slope >= 0 {
                bracket = (current, previous)
                break
            }
            previous = current
            alpha *= 2
        }
        guard var (lo, hi) = bracket else {
            // Out of evaluations while still extending: the last point decreased f sufficiently.
            return try settle(w, at: previous, f0: f0, gtd: gtd, objective)
        }
        while budget > 0 {
            budget -= 1
            let alphaJ = Self.interpolate(lo, hi)
            let (f, slope) = try probe(w, alphaJ, objective)
            let point = Point(alpha: alphaJ, f: f, slope: slope)
            if !f.isFinite || !slope.isFinite || f > f0 + settings.c1 * alphaJ * gtd || f >= lo.f {
                hi = point
            } else {
                if abs(slope) <= -settings.c2 * gtd { return (alphaJ, f) }
                if slope * (hi.alpha - lo.alpha) >= 0 { hi = lo }
                lo = point
            }
        }
        // Out of evaluations: the low end of the bracket still decreased f sufficiently.
        return try settle(w, at: lo, f0: f0, gtd: gtd, objective)
    }

    /// Accepts an earlier trial point that met the sufficient-decrease condition (one more
    /// evaluation, to leave `w` and `trial` there); nil if there is none.
    private func settle(_ w: UnsafeMutablePointer<Float>, at point: Point, f0: Double, gtd: Double,
                        _ objective: Objective) rethrows -> (Double, Double)? {
        guard point.alpha > 0 else { return nil }
        let (f, _) = try probe(w, point.alpha, objective)
        return f.isFinite && f <= f0 + settings.c1 * point.alpha * gtd ? (point.alpha, f) : nil
    }

    /// The minimiser of the cubic through both ends' values and slopes, kept inside the middle
    /// 80 % of the interval; bisection when the cubic is unusable (an infinite end, no minimum).
    private static func interpolate(_ lo: Point, _ hi: Point) -> Double {
        let low = min(lo.alpha, hi.alpha), high = max(lo.alpha, hi.alpha)
        let width = high - low
        let d1 = lo.slope + hi.slope - 3 * (lo.f - hi.f) / (lo.alpha - hi.alpha)
        let radicand = d1 * d1 - lo.slope * hi.slope
        var alpha = (low + high) / 2
        if radicand.isFinite && radicand >= 0 {
            let d2 = (hi.alpha > lo.alpha ? 1.0 : -1.0) * radicand.squareRoot()
            let cubic = hi.alpha - (hi.alpha - lo.alpha) * (hi.slope + d2 - d1) / (hi.slope - lo.slope + 2 * d2)
            if cubic.isFinite { alpha = cubic }
        }
        return min(max(alpha, low + 0.1 * width), high - 0.1 * width)
    }

    private func maxAbs(_ x: UnsafePointer<Float>) -> Double {
        var m: Float = 0
        for j in 0..<count {
            if x[j].isNaN { return .infinity }
            m = max(m, abs(x[j]))
        }
        return Double(m)
    }
}
