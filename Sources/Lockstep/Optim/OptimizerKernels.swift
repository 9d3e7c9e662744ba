// The update rules the first-order optimizers share, each written once: the weight-decay rule
// (docs/algorithms.md §1.2; SGD, NSHB, Adam, AdamW, LARS, LAMB, R-SGD), the momentum update
// (§1.6, §3.3; the SGD family and LARS), Adam's moments with their bias corrections (§3.1, §3.4;
// Adam, AdamW, LAMB) and the trust-ratio rule (§3.3, §3.4). They are `@inline(__always)` per
// element or per tensor, so an optimizer's loop compiles to the same operations, in the same
// order, that it would have written out: products and sums stay unfused, nothing allocates.

#if canImport(Glibc)
import Glibc
#endif

/// The weight-decay keys every first-order optimizer's settings carry (docs/algorithms.md §1.2).
public protocol WeightDecaySettings {
    /// λ.
    var weightDecay: Double { get set }
    /// Apply the decay to biases too (off by default, as Goyal et al. do).
    var decayBiases: Bool { get set }
}

extension WeightDecaySettings {
    /// λ_T of one tensor: λ for weights, and for biases only with `decayBiases`.
    @inline(__always)
    public func weightDecay(for view: ParameterView) -> Double {
        view.spec.isWeight || decayBiases ? weightDecay : 0
    }
}

public enum WeightDecay {
    /// x + λ_T·w: the decay added to a gradient (coupled), or to an update direction (AdamW, LAMB).
    @inline(__always)
    public static func add(_ x: Float, weight w: Float, decay: Float) -> Float { x + decay * w }
}

/// The momentum update u ← m·u + gain·g and the three steps built on it (docs/algorithms.md §1.6,
/// §3.3). gain is 1 for heavy ball and Nesterov, 1 − β for NSHB, the trust ratio T for LARS.
public enum Momentum {
    /// w ← w − η·(g + λ_T·w), no momentum buffer.
    @inline(__always)
    public static func plain(_ w: UnsafeMutablePointer<Float>, _ g: UnsafePointer<Float>, _ n: Int, lr: Float, decay: Float) {
        for i in 0..<n { w[i] -= lr * WeightDecay.add(g[i], weight: w[i], decay: decay) }
    }

    /// u ← m·u + gain·(g + λ_T·w);  w ← w − η·u.
    @inline(__always)
    public static func heavyBall(_ w: UnsafeMutablePointer<Float>, _ g: UnsafePointer<Float>, _ u: UnsafeMutablePointer<Float>,
                                 _ n: Int, lr: Float, momentum m: Float, gain: Float, decay: Float) {
        for i in 0..<n {
            let ui = update(u, i, momentum: m, gain: gain, WeightDecay.add(g[i], weight: w[i], decay: decay))
            w[i] -= lr * ui
        }
    }

    /// g̃ = g + λ_T·w;  u ← m·u + gain·g̃;  w ← w − η·(g̃ + m·u), with the updated u.
    @inline(__always)
    public static func nesterov(_ w: UnsafeMutablePointer<Float>, _ g: UnsafePointer<Float>, _ u: UnsafeMutablePointer<Float>,
                                _ n: Int, lr: Float, momentum m: Float, gain: Float, decay: Float) {
        for i in 0..<n {
            let gi = WeightDecay.add(g[i], weight: w[i], decay: decay)
            let ui = update(u, i, momentum: m, gain: gain, gi)
            w[i] -= lr * (gi + m * ui)
        }
    }

    /// u[i] ← m·u[i] + gain·g; returns the new u[i].
    @inline(__always)
    static func update(_ u: UnsafeMutablePointer<Float>, _ i: Int, momentum m: Float, gain: Float, _ g: Float) -> Float {
        let ui = m * u[i] + gain * g
        u[i] = ui
        return ui
    }
}

/// Adam's moment update for one step (docs/algorithms.md §3.1, §3.4): the Float32 constants and
/// the bias corrections of update t, computed once per step.
public struct AdamMoments {
    let beta1: Float, beta2: Float, epsilon: Float
    /// 1/(1−β1^t) and 1/(1−β2^t), computed in Float64 and rounded to Float32.
    let correction1: Float, correction2: Float

    @inline(__always)
    public init(beta1: Double, beta2: Double, epsilon: Double, update t: Int) {
        self.beta1 = Float(beta1)
        self.beta2 = Float(beta2)
        self.epsilon = Float(epsilon)
        (correction1, correction2) = Self.biasCorrections(beta1: beta1, beta2: beta2, t: t)
    }

    /// Adam's bias corrections 1/(1−β1^t) and 1/(1−β2^t) for update t (1-based).
    @inline(__always)
    public static func biasCorrections(beta1: Double, beta2: Double, t: Int) -> (Float, Float) {
        (Float(1 / (1 - pow(beta1, Double(t)))), Float(1 / (1 - pow(beta2, Double(t)))))
    }

    /// m[i] ← β1·m[i] + (1−β1)·g;  v[i] ← β2·v[i] + (1−β2)·g²;  returns m̂/(√v̂ + ε).
    @inline(__always)
    public func step(_ g: Float, _ m: UnsafeMutablePointer<Float>, _ v: UnsafeMutablePointer<Float>, _ i: Int) -> Float {
        let mi = beta1 * m[i] + (1 - beta1) * g
        let vi = beta2 * v[i] + (1 - beta2) * g * g
        m[i] = mi
        v[i] = vi
        return (mi * correction1) / ((vi * correction2).squareRoot() + epsilon)
    }
}

public enum TrustRatio {
    /// The layer-wise trust ratio numerator/denominator rule: 1 when either norm is 0.
    @inline(__always)
    public static func ratio(_ numerator: Double, _ denominator: Double) -> Double {
        numerator > 0 && denominator > 0 ? numerator / denominator : 1
    }
}

extension Norms {
    /// Adam's bias corrections (`AdamMoments.biasCorrections`), by their older name.
    @inline(__always)
    public static func biasCorrections(beta1: Double, beta2: Double, t: Int) -> (Float, Float) {
        AdamMoments.biasCorrections(beta1: beta1, beta2: beta2, t: t)
    }

    /// The trust-ratio rule (`TrustRatio.ratio`), by its older name.
    @inline(__always)
    public static func ratio(_ numerator: Double, _ denominator: Double) -> Double { TrustRatio.ratio(numerator, denominator) }
}
