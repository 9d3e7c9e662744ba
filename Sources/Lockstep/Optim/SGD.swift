// SGD with heavy-ball, Nesterov or normalized heavy-ball momentum, and weight decay added to the
// averaged gradient (docs/algorithms.md §1): u ← m·u + g;  w ← w − η·u  (Nesterov: w ← w − η·(g + m·u);
// NSHB: u ← β·u + (1−β)·g).
// u carries no η, so a learning-rate change needs no momentum correction.

public struct SGDSettings: Equatable, Sendable {
    public var momentum: Double = 0
    public var nesterov = false
    /// λ: added to the averaged gradient (λ·w) after the exchange, on weights only by default.
    public var weightDecay: Double = 0
    /// Apply weight decay to biases too (off by default, as Goyal et al. do).
    public var decayBiases = false
    /// Normalized heavy ball (NSHB): u ← β·u + (1−β)·g.
    public var normalized = false
    public init() {}
}

public final class SGD: Optimizer {
    private let views: [ParameterView]
    private let settings: SGDSettings
    private let momentum: FloatBuffer?

    public init(views: [ParameterView], parameterCount: Int, settings: SGDSettings) {
        self.views = views
        self.settings = settings
        momentum = settings.momentum > 0 ? FloatBuffer(count: parameterCount) : nil
    }

    public var stateBuffers: [(name: String, buffer: FloatBuffer)] {
        momentum.map { [("momentum", $0)] } ?? []
    }

    public var updates = 0

    public func step(parameters: UnsafeMutablePointer<Float>, gradients: UnsafeMutablePointer<Float>, lr: Float) {
        updates += 1
        let m = Float(settings.momentum)
        // NSHB averages instead of summing: u ← β·u + (1−β)·g.
        let gain: Float = settings.normalized ? 1 - m : 1
        for view in views {
            let decay: Float = (view.spec.isWeight || settings.decayBiases) ? Float(settings.weightDecay) : 0
            let w = parameters + view.offset
            let g = gradients + view.offset
            guard let u = momentum?.pointer.advanced(by: view.offset) else {
                for i in 0..<view.count { w[i] -= lr * (g[i] + decay * w[i]) }
                continue
            }
            if settings.nesterov {
                for i in 0..<view.count {
                    let gi = g[i] + decay * w[i]
                    let ui = m * u[i] + gain * gi
                    u[i] = ui
                    w[i] -= lr * (gi + m * ui)
                }
            } else {
                for i in 0..<view.count {
                    let ui = m * u[i] + gain * (g[i] + decay * w[i])
                    u[i] = ui
                    w[i] -= lr * ui
                }
            }
        }
    }
}
