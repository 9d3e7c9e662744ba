// GSNR-corrected updates (VRGD, Jiang et al. 2023; ALGORITHMS.md §2). The trainer folds each
// gradient group into [Σ_d g_d, Σ_d g_d²] before the one fused allreduce; this optimizer turns
// those moments into the per-element multiplier r (normalised to mean 1 per tensor, clipped to
// [γ, 1]) and hands r ⊙ ḡ (VR-Adam/VR-LAMB: p̂ ⊙ ḡ, with p the GSNR momentum) to the base optimizer.

public struct GSNRSettings: Equatable, Sendable {
    /// m: gradient groups per rank; k = ranks × m must be at least 2.
    public var groupsPerRank = 1
    /// γ: the lower clip of the multiplier (γ = 1 recovers the base optimizer).
    public var gamma = 0.1
    /// ε in r = ḡ²/(s² + ε), in squared-gradient units.
    public var epsilon = 1e-12
    /// β3 of the GSNR momentum (used with Adam, AdamW and LAMB bases).
    public var beta3 = 0.9
    public init() {}
}

/// Folds one group's gradient into the exchange buffer's moments: sum (+)= w, squares (+)= w².
/// The squares are taken before any reduction, as the variance estimate needs.
public enum GradientGroups {
    @inline(__always)
    public static func fold(_ work: UnsafePointer<Float>, sum: UnsafeMutablePointer<Float>,
                            squares: UnsafeMutablePointer<Float>, count: Int, first: Bool) {
        if first {
            for j in 0..<count {
                let w = work[j]
                sum[j] = w
                squares[j] = w * w
            }
        } else {
            for j in 0..<count {
                let w = work[j]
                sum[j] += w
                squares[j] += w * w
            }
        }
    }
}

/// A base optimizer with the GSNR multiplier applied to its gradient.
public final class VarianceReduced: Optimizer, TrustRatioReporting {
    public let base: any Optimizer
    private let views: [ParameterView]
    private let settings: GSNRSettings
    /// k, the total number of gradient groups.
    private let groups: Int
    /// Σ_d w_d² after the exchange (w_d = g_d / k, the group's share of the mean); the trainer owns it.
    private var squares: UnsafeMutablePointer<Float>?
    /// GSNR momentum p (nil for bases without it).
    private let momentum: FloatBuffer?

    /// Per tensor, at the last step: mean GSNR before normalisation, fraction clipped at γ and at 1.
    public private(set) var meanGSNR: [Double]
    public private(set) var clippedLow: [Double]
    public private(set) var clippedHigh: [Double]
    /// ‖ḡ‖ at the last step, before the multiplier (the pass that needs ḡ² computes it anyway).
    public private(set) var meanGradientNorm = 0.0

    public init(base: any Optimizer, views: [ParameterView], parameterCount: Int, groups: Int,
                settings: GSNRSettings, useMomentum: Bool) {
        precondition(groups >= 2, "validated by Job.validate")
        self.base = base
        self.views = views
        self.settings = settings
        self.groups = groups
        momentum = useMomentum ? FloatBuffer(count: parameterCount) : nil
        meanGSNR = [Double](repeating: 0, count: views.count)
        clippedLow = meanGSNR
        clippedHigh = meanGSNR
    }

    /// Points at the exchanged Σ w_d² (the trainer's buffer, sized once).
    public func bind(squares: UnsafeMutablePointer<Float>) { self.squares = squares }

    public var updates: Int {
        get { base.updates }
        set { base.updates = newValue }
    }

    public var stateBuffers: [(name: String, buffer: FloatBuffer)] {
        base.stateBuffers + (momentum.map { [("gsnr_momentum", $0)] } ?? [])
    }

    public var trustRatioNames: [String] { (base as? TrustRatioReporting)?.trustRatioNames ?? [] }
    public var trustRatios: [Double] { (base as? TrustRatioReporting)?.trustRatios ?? [] }

    public func step(parameters: UnsafeMutablePointer<Float>, gradients: UnsafeMutablePointer<Float>, lr: Float) {
        guard let squares else { preconditionFailure("VarianceReduced.bind(squares:) was not called") }
        let t = Double(base.updates + 1)
        let k = Float(groups), eps = Float(settings.epsilon), gamma = Float(settings.gamma)
        let beta3 = Float(settings.beta3)
        let correction = Float(1 / (1 - pow(settings.beta3, t)))
        var gradientNormSquared = 0.0
        for (index, view) in views.enumerated() {
            let g = gradients + view.offset, r = squares + view.offset
            // Pass 1: r = ḡ²/(s² + ε) with s² = (1/k)Σ g_d² − ḡ² = k·Σ w_d² − ḡ² (clamped at 0),
            // written over the squares it came from.
            var sum = 0.0
            for j in 0..<view.count {
                let mean = g[j]
                let meanSquared = mean * mean
                let variance = max(k * r[j] - meanSquared, 0)
                let ratio = meanSquared / (variance + eps)
                r[j] = ratio
                sum += Double(ratio)
                gradientNormSquared += Double(meanSquared)
            }
            let layerMean = sum / Double(view.count)
            meanGSNR[index] = layerMean
            // Pass 2: normalise to mean 1, clip to [γ, 1], scale ḡ. An all-zero ratio (ḡ = 0) has no
            // mean to normalise by; the multiplier is then 1 (the step is zero anyway).
            let inverse: Float = layerMean > 0 && layerMean.isFinite ? Float(1 / layerMean) : 0
            var low = 0, high = 0
            for j in 0..<view.count {
                var multiplier = inverse > 0 ? r[j] * inverse : 1
                if multiplier <= gamma { multiplier = gamma; low += 1 }
                if multiplier >= 1 { multiplier = 1; high += 1 }
                if let p = momentum?.pointer.advanced(by: view.offset) {
                    let pj = beta3 * p[j] + (1 - beta3) * multiplier
                    p[j] = pj
                    multiplier = pj * correction
                }
                g[j] *= multiplier
            }
            clippedLow[index] = Double(low) / Double(view.count)
            clippedHigh[index] = Double(high) / Double(view.count)
        }
        meanGradientNorm = gradientNormSquared.squareRoot()
        base.step(parameters: parameters, gradients: gradients, lr: lr)
    }
}

#if canImport(Glibc)
import Glibc
#endif
