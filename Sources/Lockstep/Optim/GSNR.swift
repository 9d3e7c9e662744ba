// GSNR-corrected updates (VRGD, Jiang et al. 2023; docs/algorithms.md §2). The trainer folds each
// gradient group, shifted by a reference identical on every rank (the previous step's ḡ/k), into
// [Σ_d (w_d − a), Σ_d (w_d − a)²] before the one fused allreduce; this wrapper turns those sums into
// ḡ, the across-group variance s² and the per-element multiplier c (r normalised to mean 1 per
// tensor, clipped to [γ, 1], optionally smoothed), and applies c to the gradient the base optimizer
// receives or to the step it takes. Without the multiplier (run.noise_scale alone) it only measures.

#if canImport(Glibc)
import Glibc
#endif

public struct GSNRSettings: Equatable, Sendable {
    /// Where the multiplier acts (`gsnr.apply`).
    public enum Apply: String, Sendable, CaseIterable {
        /// c ⊙ ḡ goes into the base optimizer.
        case gradient
        /// The base optimizer steps on ḡ and its step is multiplied by c.
        case update
    }

    /// m: gradient groups per rank; k = ranks × m must be at least 2.
    public var groupsPerRank = 1
    /// γ: the lower clip of the multiplier (γ = 1 recovers the base optimizer).
    public var gamma = 0.1
    /// `gsnr.eps`: an absolute ε in r = ḡ²/(s² + ε), in squared-gradient units; nil: relative.
    public var epsilon: Double? = nil
    /// `gsnr.eps_relative`: ε = this × mean(ḡ²) of each tensor at each step (used when `epsilon` is nil).
    public var epsilonRelative = 1e-8
    /// β3 of the GSNR momentum: the smoothing of the Adam, AdamW and LAMB bases when `smoothing` is unset.
    public var beta3 = 0.9
    /// `gsnr.smoothing`: the EMA coefficient of the multiplier for every base (0: none); nil: β3
    /// with the Adam family, none otherwise.
    public var smoothing: Double? = nil
    public var apply = Apply.gradient
    /// false: the statistics only (`run.noise_scale` without GSNR): ḡ goes to the base unchanged.
    /// Not a key: set by the job.
    public var multiplies = true
    public init() {}
}

/// A base optimizer with the GSNR multiplier applied to its gradient or to its step.
public final class VarianceReduced: Optimizer, TrustRatioReporting {
    public let base: any Optimizer
    private let views: [ParameterView]
    private let settings: GSNRSettings
    /// k, the total number of gradient groups.
    public let groups: Int
    /// Σ_d (w_d − a)² after the exchange (w_d = g_d / k, the group's share of the mean); the trainer owns it.
    private var squares: UnsafeMutablePointer<Float>?
    /// The shift a = ḡ/k of the previous step (0 before the first), which the fold subtracts from
    /// every group: state, checkpointed as `gsnr_shift`, so resume continues bitwise.
    public let shift: FloatBuffer
    /// The smoothed multiplier q (nil without smoothing), checkpointed as `gsnr_momentum`.
    private let momentum: FloatBuffer?
    private let beta: Double
    /// `apply = "update"`: the parameters the base optimizer stepped, then the step Δ itself.
    private let stepped: FloatBuffer?

    /// Per tensor, at the last step: mean GSNR before normalisation.
    public private(set) var meanGSNR: [Double]
    /// Per tensor, 1/mean(r) of the last step (0 when the tensor's ratios were all 0).
    private var inverseMeans: [Float]
    /// Per tensor, Σ ḡ² and Σ s² of the last step (Float64 sums of Float32 partial sums).
    public private(set) var meanSquares: [Double]
    public private(set) var variances: [Double]
    /// Per tensor, ‖Δ_VR‖/‖Δ_base‖ of the last step with `apply = "update"` (nil otherwise).
    private var updateRatios: [Double]
    /// ‖ḡ‖ at the last step, before the multiplier.
    public private(set) var meanGradientNorm = 0.0
    /// Whether the multiplier acts (false: statistics only).
    public var multiplies: Bool { settings.multiplies }

    public init(base: any Optimizer, views: [ParameterView], parameterCount: Int, groups: Int,
                settings: GSNRSettings, useMomentum: Bool) {
        precondition(groups >= 2, "validated by Job.validate")
        self.base = base
        self.views = views
        self.settings = settings
        self.groups = groups
        beta = settings.smoothing ?? settings.beta3
        momentum = useMomentum && settings.multiplies && beta > 0 ? FloatBuffer(count: parameterCount) : nil
        shift = FloatBuffer(count: parameterCount)
        stepped = settings.multiplies && settings.apply == .update ? FloatBuffer(count: parameterCount) : nil
        meanGSNR = [Double](repeating: 0, count: views.count)
        inverseMeans = [Float](repeating: 0, count: views.count)
        meanSquares = meanGSNR
        variances = meanGSNR
        updateRatios = meanGSNR
    }

    /// Points at the exchanged Σ (w_d − a)² (the trainer's buffer, sized once).
    public func bind(squares: UnsafeMutablePointer<Float>) { self.squares = squares }

    public var updates: Int {
        get { base.updates }
        set { base.updates = newValue }
    }

    public var stateBuffers: [(name: String, buffer: FloatBuffer)] {
        base.stateBuffers + (momentum.map { [("gsnr_momentum", $0)] } ?? []) + [("gsnr_shift", shift)]
    }

    public var trustRatioReport: [(name: String, ratio: Double)] { base.trustRatioReport }
    public var trustRatioNames: [String] { base.trustRatioReport.map(\.name) }
    public var trustRatios: [Double] { base.trustRatioReport.map(\.ratio) }

    public func step(parameters: UnsafeMutablePointer<Float>, gradients: UnsafeMutablePointer<Float>, lr: Float) {
        guard let squares else { preconditionFailure("VarianceReduced.bind(squares:) was not called") }
        let t = Double(base.updates + 1)
        let k = Float(groups), gamma = Float(settings.gamma), beta = Float(self.beta)
        let correction = Float(1 / (1 - pow(self.beta, t)))
        var gradientNormSquared = 0.0
        let q = momentum?.pointer
        for (index, view) in views.enumerated() {
            let g = gradients + view.offset, r = squares + view.offset, n = view.count
            // ḡ and s² from the shifted sums (no cancellation of ḡ² against Σ w_d²: §2.2).
            let (sumSquares, sumVariances) = GSNRKernels.moments(g, r, shift: shift.pointer + view.offset, n, k: k)
            meanSquares[index] = sumSquares
            variances[index] = sumVariances
            gradientNormSquared += sumSquares
            guard settings.multiplies else { continue }
            // ε absolute, or relative to this tensor's gradient scale (never 0: r = 0/0 where ḡ = s² = 0).
            let eps = settings.epsilon.map { Float($0) }
                ?? max(Float(settings.epsilonRelative * sumSquares / Double(n)), .leastNormalMagnitude)
            let layerMean = GSNRKernels.ratios(g, r, n, eps: eps) / Double(n)
            meanGSNR[index] = layerMean
            // An all-zero ratio (ḡ = 0) has no mean to normalise by; the multiplier is then 1.
            let inverse: Float = layerMean > 0 && layerMean.isFinite ? Float(1 / layerMean) : 0
            inverseMeans[index] = inverse
            if settings.apply == .gradient {
                GSNRKernels.scaleGradient(g, r, n, inverse: inverse, gamma: gamma, smoothed: q.map { $0 + view.offset },
                                          beta: beta, correction: correction)
            }
        }
        meanGradientNorm = gradientNormSquared.squareRoot()
        guard let stepped else {
            base.step(parameters: parameters, gradients: gradients, lr: lr)
            return
        }
        // apply = "update": the base steps a copy of the parameters on ḡ; its step is then scaled.
        stepped.pointer.update(from: parameters, count: stepped.count)
        base.step(parameters: stepped.pointer, gradients: gradients, lr: lr)
        for (index, view) in views.enumerated() {
            let (scaled, unscaled) = GSNRKernels.scaleStep(
                parameters + view.offset, stepped: stepped.pointer + view.offset, squares + view.offset, view.count,
                inverse: inverseMeans[index], gamma: gamma, smoothed: q.map { $0 + view.offset }, beta: beta, correction: correction)
            updateRatios[index] = unscaled > 0 ? (scaled / unscaled).squareRoot() : 1
        }
    }

    /// Per tensor, the last step's ‖VR step‖/‖base step‖: with `apply = "update"` measured on the
    /// steps themselves; with `"gradient"` it is ‖c ⊙ ḡ‖/‖ḡ‖, what the base received over what it
    /// would have (the step ratio for SGD; Adam, LARS and LAMB may undo it). 1 where ḡ = 0.
    /// Computed on demand (when a step is logged) from the gradient buffer the step left.
    public func stepRatios(gradients: UnsafePointer<Float>) -> [Double] {
        if stepped != nil { return updateRatios }
        return views.enumerated().map { index, view in
            let adapted = VectorKernels.dot(gradients + view.offset, gradients + view.offset, view.count)
            return meanSquares[index] > 0 ? (adapted / meanSquares[index]).squareRoot() : 1
        }
    }

    /// The last step's noise-scale statistics for global batch `batch` (docs/algorithms.md §2.6).
    public func noiseScale(batch: Int) -> NoiseScale {
        NoiseScale(varianceSum: variances.reduce(0, +), meanSquares: meanSquares.reduce(0, +), groups: groups, batch: batch)
    }

    /// Per tensor, the fractions of the last step's multipliers clipped at γ and at 1 (before any
    /// smoothing). Computed on demand from the ratios the step left in the squares buffer.
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
