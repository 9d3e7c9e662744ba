// LARS (You et al.), per parameter tensor (docs/algorithms.md §3):
//   trust = τ·‖w‖ / (‖g‖ + λ‖w‖)  (1 when either norm is 0);  u ← m·u + trust·(g + λw);  w ← w − η·u
// Biases are excluded from the trust ratio (trust 1) and from weight decay by default.

public struct LARSSettings: Equatable, Sendable {
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
            let decay = view.spec.isWeight || settings.decayBiases ? settings.weightDecay : 0
            var trust = 1.0
            if view.spec.isWeight || settings.trustBiases {
                let wNorm = Norms.l2(w, view.count), gNorm = Norms.l2(g, view.count)
                trust = Norms.ratio(settings.trustCoefficient * wNorm, gNorm + decay * wNorm)
            }
            trustRatios[index] = trust
            let t = Float(trust), d = Float(decay)
            for i in 0..<view.count {
                let ui = m * u[i] + t * (g[i] + d * w[i])
                u[i] = ui
                w[i] -= lr * ui
            }
        }
    }
}
