// The per-tensor passes of the GSNR wrapper (docs/algorithms.md §2.2–§2.5), each a loop over one
// parameter tensor: moments from the shifted sums, the ratios r = ḡ²/(s² + ε), and the multiplier
// applied to the gradient or to the base optimizer's step. Public so tests can hold each pass
// against a Float64 reference; `VarianceReduced` is their only caller in the trainer.

public enum GSNRKernels {
    /// Pass 1: from the exchanged shifted sums S1 = Σ_d (w_d − a), S2 = Σ_d (w_d − a)² (a the shift,
    /// identical on every rank) writes ḡ = S1 + k·a over S1, s² = max(k·S2 − S1², 0) over S2, and the
    /// next step's shift a ← ḡ/k. Returns (Σ ḡ², Σ s²) in Float64 (Float32 partial sums of 256 elements).
    @inline(__always)
    public static func moments(_ g: UnsafeMutablePointer<Float>, _ s: UnsafeMutablePointer<Float>, shift a: UnsafeMutablePointer<Float>,
                               _ n: Int, k: Float) -> (meanSquares: Double, variances: Double) {
        var meanSquares = 0.0, variances = 0.0
        var j = 0
        while j < n {
            var gs: Float = 0, vs: Float = 0
            let blockEnd = min(n, j + 256)
            while j < blockEnd {
                let s1 = g[j]
                let mean = s1 + k * a[j]
                let variance = max(k * s[j] - s1 * s1, 0)
                g[j] = mean
                s[j] = variance
                a[j] = mean / k
                gs += mean * mean
                vs += variance
                j += 1
            }
            meanSquares += Double(gs)
            variances += Double(vs)
        }
        return (meanSquares, variances)
    }

    /// Pass 2: r[j] ← ḡ[j]²/(s²[j] + ε), written over s². Returns Σ r in Float64.
    @inline(__always)
    public static func ratios(_ g: UnsafePointer<Float>, _ r: UnsafeMutablePointer<Float>, _ n: Int, eps: Float) -> Double {
        typealias V = SIMD8<Float>
        var ratioSum = 0.0
        var j = 0
        let ev = V(repeating: eps)
        while j + 8 <= n {
            var rs = V(repeating: 0)
            let blockEnd = min(n - (n - j) % 8, j + 1024)
            while j < blockEnd {
                let mean = UnsafeRawPointer(g + j).loadUnaligned(as: V.self)
                let variance = UnsafeRawPointer(r + j).loadUnaligned(as: V.self)
                let ratio = mean * mean / (variance + ev)
                UnsafeMutableRawPointer(r + j).storeBytes(of: ratio, as: V.self)
                rs += ratio
                j += 8
            }
            ratioSum += Double(rs.sum())
        }
        while j < n {
            let ratio = g[j] * g[j] / (r[j] + eps)
            r[j] = ratio
            ratioSum += Double(ratio)
            j += 1
        }
        return ratioSum
    }

    /// The multiplier of element j: c = clip(r·inverse, γ, 1) (1 when `inverse` is 0: nothing to
    /// normalise by); smoothed, q ← β·q + (1−β)·c and c ← q·correction.
    @inline(__always)
    static func multiplier(_ r: Float, inverse: Float, gamma: Float, _ q: UnsafeMutablePointer<Float>?, _ j: Int,
                           beta: Float, correction: Float) -> Float {
        let c = inverse == 0 ? 1 : min(max(r * inverse, gamma), 1)
        guard let q else { return c }
        let qj = beta * q[j] + (1 - beta) * c
        q[j] = qj
        return qj * correction
    }

    /// Pass 3, `gsnr.apply = "gradient"`: ḡ ← c ⊙ ḡ (the base optimizer then steps on it).
    @inline(__always)
    public static func scaleGradient(_ g: UnsafeMutablePointer<Float>, _ r: UnsafePointer<Float>, _ n: Int, inverse: Float, gamma: Float,
                                     smoothed q: UnsafeMutablePointer<Float>?, beta: Float, correction: Float) {
        if q == nil && inverse == 0 { return }
        for j in 0..<n { g[j] *= multiplier(r[j], inverse: inverse, gamma: gamma, q, j, beta: beta, correction: correction) }
    }

    /// Pass 3, `gsnr.apply = "update"`: `stepped` holds the parameters after the base optimizer's
    /// step from `w`; Δ = stepped − w (exact where the two are within a factor 2 of each other), then
    /// w ← w + c ⊙ Δ and `stepped` ← Δ. Returns (Σ (c·Δ)², Σ Δ²) in Float64, for the step-norm ratio.
    @inline(__always)
    public static func scaleStep(_ w: UnsafeMutablePointer<Float>, stepped: UnsafeMutablePointer<Float>, _ r: UnsafePointer<Float>, _ n: Int,
                                 inverse: Float, gamma: Float, smoothed q: UnsafeMutablePointer<Float>?, beta: Float,
                                 correction: Float) -> (scaled: Double, base: Double) {
        var scaled = 0.0, base = 0.0
        for j in 0..<n {
            let c = multiplier(r[j], inverse: inverse, gamma: gamma, q, j, beta: beta, correction: correction)
            let delta = stepped[j] - w[j]
            let step = c * delta
            w[j] += step
            stepped[j] = delta
            scaled += Double(step) * Double(step)
            base += Double(delta) * Double(delta)
        }
        return (scaled, base)
    }
}

/// The gradient noise scale of McCandlish et al. (2018) from the across-group statistics of one
/// step (docs/algorithms.md §2.6).
public struct NoiseScale: Equatable, Sendable {
    /// tr(Σ̂): the per-sample gradient covariance's trace, B/(k−1)·Σ_j s_j².
    public var trace: Double
    /// |G|²̂ = |ḡ|² − tr(Σ̂)/B: the true gradient's squared norm, the noise's bias removed (may be ≤ 0).
    public var gradientSquared: Double
    /// B_simple = tr(Σ̂)/|G|²̂; nil when |G|²̂ ≤ 0 (the step's gradient is indistinguishable from noise).
    public var simple: Double? { gradientSquared > 0 ? trace / gradientSquared : nil }

    /// From Σ_j s_j² (population variances across the k groups), Σ_j ḡ_j², k and the global batch B.
    public init(varianceSum: Double, meanSquares: Double, groups k: Int, batch: Int) {
        trace = Double(batch) / Double(k - 1) * varianceSum
        gradientSquared = meanSquares - trace / Double(batch)
    }
}
