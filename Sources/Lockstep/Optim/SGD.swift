// SGD with heavy-ball, Nesterov or normalized heavy-ball momentum, and weight decay added to the
// averaged gradient (docs/algorithms.md §1): u ← m·u + g;  w ← w − η·u  (Nesterov: w ← w − η·(g + m·u);
// NSHB: u ← β·u + (1−β)·g).
// u carries no η, so a learning-rate change needs no momentum correction. The decay rule and the
// momentum loops are the shared ones (Optim/OptimizerKernels.swift).

public struct SGDSettings: Equatable, Sendable, WeightDecaySettings {
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
            let decay = Float(settings.weightDecay(for: view))
            let w = parameters + view.offset
            let g = gradients + view.offset
            guard let u = momentum?.pointer.advanced(by: view.offset) else {
                Momentum.plain(w, g, view.count, lr: lr, decay: decay)
                continue
            }
            if settings.nesterov {
                Momentum.nesterov(w, g, u, view.count, lr: lr, momentum: m, gain: gain, decay: decay)
            } else {
                Momentum.heavyBall(w, g, u, view.count, lr: lr, momentum: m, gain: gain, decay: decay)
            }
        }
    }
}
