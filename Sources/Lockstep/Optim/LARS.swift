// LARS (You et al.), per parameter tensor (docs/algorithms.md §3):
//   trust = τ·‖w‖ / (‖g‖ + λ‖w‖)  (1 when either norm is 0);  u ← m·u + trust·(g + λw);  w ← w − η·u
// Biases are excluded from the trust ratio (trust 1) and from weight decay by default. The decay
// rule, the momentum loop (heavy ball with gain T) and the ratio rule are the shared ones
// (Optim/OptimizerKernels.swift).

public struct LARSSettings: Equatable, Sendable, WeightDecaySettings {
    public var momentum = 0.9
    /// τ, the trust coefficient.
    public var trustCoefficient = 0.001
    public var weightDecay = 0.0
    /// Apply weight decay to biases too (off by default).
    public var decayBiases = false
    /// Give biases a trust ratio too (off by default: their trust is 1).
    public var trustBiases = false
    public init() {}
}

public final class LARS: Optimizer, TrustRatioReporting {
    private let views: [ParameterView]
    private let settings: LARSSettings
    private let momentum: FloatBuffer
    public var updates = 0
    public private(set) var trustRatios: [Double]

    public init(views: [ParameterView], parameterCount: Int, settings: LARSSettings) {
        self.views = views
        self.settings = settings
        momentum = FloatBuffer(count: parameterCount)
        trustRatios = [Double](repeating: 1, count: views.count)
    }

    public var stateBuffers: [(name: String, buffer: FloatBuffer)] { [("momentum", momentum)] }
    public var trustRatioNames: [String] { views.map(\.path) }

    public func step(parameters: UnsafeMutablePointer<Float>, gradients: UnsafeMutablePointer<Float>, lr: Float) {
        updates += 1
        let m = Float(settings.momentum)
        for (index, view) in views.enumerated() {
            let w = parameters + view.offset, g = gradients + view.offset, u = momentum.pointer + view.offset
            let decay = settings.weightDecay(for: view)
            var trust = 1.0
            if view.spec.isWeight || settings.trustBiases {
                let wNorm = VectorKernels.l2(w, view.count), gNorm = VectorKernels.l2(g, view.count)
                trust = TrustRatio.ratio(settings.trustCoefficient * wNorm, gNorm + decay * wNorm)
            }
            trustRatios[index] = trust
            Momentum.heavyBall(w, g, u, view.count, lr: lr, momentum: m, gain: Float(trust), decay: Float(decay))
        }
    }
}
