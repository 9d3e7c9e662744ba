// GSNR-corrected updates (VRGD, Jiang et al. 2023; docs/algorithms.md §2). The trainer folds each
// gradient group into [Σ_d g_d, Σ_d g_d²] before the one fused allreduce; this optimizer turns
// those moments into the per-element multiplier r (normalised to mean 1 per tensor, clipped to
// [γ, 1]) and hands r ⊙ ḡ (VR-Adam/VR-LAMB: p̂ ⊙ ḡ, with p the GSNR momentum) to the base optimizer.

#if canImport(Glibc)
import Glibc
#endif

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

    /// Per tensor, at the last step: mean GSNR before normalisation.
    public private(set) var meanGSNR: [Double]
    /// Per tensor, 1/mean(r) of the last step (0 when the tensor's ratios were all 0).
    private var inverseMeans: [Float]
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
        inverseMeans = [Float](repeating: 0, count: views.count)
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

    public var trustRatioReport: [(name: String, ratio: Double)] { base.trustRatioReport }
    public var trustRatioNames: [String] { base.trustRatioReport.map(\.name) }
    public var trustRatios: [Double] { base.trustRatioReport.map(\.ratio) }

    public func step(parameters: UnsafeMutablePointer<Float>, gradients: UnsafeMutablePointer<Float>, lr: Float) {
        guard let squares else { preconditionFailure("VarianceReduced.bind(squares:) was not called") }
        let t = Double(base.updates + 1)
        let k = Float(groups), eps = Float(settings.epsilon), gamma = Float(settings.gamma)
        let beta3 = Float(settings.beta3)
        let correction = Float(1 / (1 - pow(settings.beta3, t)))
        var gradientNormSquared = 0.0
        let momentumBase = momentum?.pointer
        for (index, view) in views.enumerated() {
            let g = gradients + view.offset, r = squares + view.offset, n = view.count
            // Pass 1: r = ḡ²/(s² + ε) with s² = (1/k)Σ g_d² − ḡ² = k·Σ w_d² − ḡ² (clamped at 0),
            // written over the squares it came from. Eight lanes at a time (the loop is the
            // step's overhead over the base optimizer); partial sums go to Float64 every block.
            let (ratioSum, normSquared) = Self.ratios(g, r, n, k: k, eps: eps)
            gradientNormSquared += normSquared
            let layerMean = ratioSum / Double(n)
            meanGSNR[index] = layerMean
            // Pass 2: normalise to mean 1, clip to [γ, 1], scale ḡ. An all-zero ratio (ḡ = 0) has no
            // mean to normalise by; the multiplier is then 1 (the step is zero anyway).
            let inverse: Float = layerMean > 0 && layerMean.isFinite ? Float(1 / layerMean) : 0
            inverseMeans[index] = inverse
            Self.scale(g, r, n, inverse: inverse, gamma: gamma,
                       momentum: momentumBase?.advanced(by: view.offset), beta3: beta3, correction: correction)
        }
        meanGradientNorm = gradientNormSquared.squareRoot()
        base.step(parameters: parameters, gradients: gradients, lr: lr)
    }

    /// Per tensor, the fractions of the last step's multipliers clipped at γ and at 1. Computed on
    /// demand (when a step is logged) from the ratios the step left in the squares buffer, so the
    /// step itself carries no counting.
    public func clipFractions() -> (low: [Double], high: [Double]) {
        guard let squares else { return ([], []) }
        let gamma = Float(settings.gamma)
        var low: [Double] = [], high: [Double] = []
        for (index, view) in views.enumerated() {
            let r = squares + view.offset, inverse = inverseMeans[index]
            var lowCount = 0, highCount = 0
            for j in 0..<view.count {
                let m = inverse > 0 ? r[j] * inverse : 1
                if m <= gamma { lowCount += 1 }
                if max(m, gamma) >= 1 { highCount += 1 }
            }
            low.append(Double(lowCount) / Double(view.count))
            high.append(Double(highCount) / Double(view.count))
        }
        return (low, high)
    }
}

extension VarianceReduced {
    /// Pass 1 over one tensor: r[j] ← ḡ[j]²/(max(k·r[j] − ḡ[j]², 0) + ε). Returns (Σ r, Σ ḡ²).
    @inline(__always)
    static func ratios(_ g: UnsafeMutablePointer<Float>, _ r: UnsafeMutablePointer<Float>, _ n: Int,
                       k: Float, eps: Float) -> (Double, Double) {
        typealias V = SIMD8<Float>
        var ratioSum = 0.0, normSquared = 0.0
        var j = 0
        let kv = V(repeating: k), ev = V(repeating: eps), zero = V(repeating: 0)
        while j + 8 <= n {
            var rs = zero, gs = zero
            let blockEnd = min(n - (n - j) % 8, j + 1024)
            while j < blockEnd {
                let mean = UnsafeRawPointer(g + j).loadUnaligned(as: V.self)
                let meanSquared = mean * mean
                let squares = UnsafeRawPointer(r + j).loadUnaligned(as: V.self)
                let variance = pointwiseMax(kv * squares - meanSquared, zero)
                let ratio = meanSquared / (variance + ev)
                UnsafeMutableRawPointer(r + j).storeBytes(of: ratio, as: V.self)
                rs += ratio
                gs += meanSquared
                j += 8
            }
            ratioSum += Double(rs.sum())
            normSquared += Double(gs.sum())
        }
        while j < n {
            let meanSquared = g[j] * g[j]
            let ratio = meanSquared / (max(k * r[j] - meanSquared, 0) + eps)
            r[j] = ratio
            ratioSum += Double(ratio)
            normSquared += Double(meanSquared)
            j += 1
        }
        return (ratioSum, normSquared)
    }

    /// Pass 2 over one tensor: m = clip(r·inverse, γ, 1) (1 when `inverse` is 0); with GSNR
    /// momentum p ← β3·p + (1−β3)·m and m ← p·correction; then ḡ ← ḡ·m. Plain loops without
    /// reductions or masks, which the compiler vectorises.
    @inline(__always)
    static func scale(_ g: UnsafeMutablePointer<Float>, _ r: UnsafePointer<Float>, _ n: Int, inverse: Float, gamma: Float,
                      momentum p: UnsafeMutablePointer<Float>?, beta3: Float, correction: Float) {
        if inverse == 0 {
            // No ratios to normalise (ḡ = 0 throughout): the multiplier is 1.
            guard let p else { return }
            for j in 0..<n {
                let pj = beta3 * p[j] + (1 - beta3)
                p[j] = pj
                g[j] *= pj * correction
            }
            return
        }
        if let p {
            for j in 0..<n {
                let m = min(max(r[j] * inverse, gamma), 1)
                let pj = beta3 * p[j] + (1 - beta3) * m
                p[j] = pj
                g[j] *= pj * correction
            }
        } else {
            for j in 0..<n { g[j] *= min(max(r[j] * inverse, gamma), 1) }
        }
    }
}
