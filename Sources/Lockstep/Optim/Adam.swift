// Adam and AdamW (Kingma & Ba; Loshchilov & Hutter; docs/algorithms.md §3):
//   m ← β1·m + (1−β1)·g;  v ← β2·v + (1−β2)·g²;  m̂ = m/(1−β1^t);  v̂ = v/(1−β2^t)
//   Adam:  g includes λ·w (L2, coupled);  w ← w − η·m̂/(√v̂ + ε)
//   AdamW: w ← w − η·(m̂/(√v̂ + ε) + λ·w)   (decoupled: the decay skips the moments)

// The moments and the decay rule are the shared ones (Optim/OptimizerKernels.swift).

public struct AdamSettings: Equatable, Sendable, WeightDecaySettings {
    public var beta1 = 0.9
    public var beta2 = 0.999
    public var epsilon = 1e-8
    public var weightDecay = 0.0
    /// AdamW: decay the weights directly instead of adding λ·w to the gradient.
    public var decoupled = false
    public var decayBiases = false
    public init() {}
}

public final class Adam: Optimizer {
    private let views: [ParameterView]
    private let settings: AdamSettings
    private let m: FloatBuffer
    private let v: FloatBuffer
    public var updates = 0

    public init(views: [ParameterView], parameterCount: Int, settings: AdamSettings) {
        self.views = views
        self.settings = settings
        m = FloatBuffer(count: parameterCount)
        v = FloatBuffer(count: parameterCount)
    }

    public var stateBuffers: [(name: String, buffer: FloatBuffer)] { [("m", m), ("v", v)] }

    public func step(parameters: UnsafeMutablePointer<Float>, gradients: UnsafeMutablePointer<Float>, lr: Float) {
        updates += 1
        // Bias corrections folded into two scalars per step.
        let moments = AdamMoments(beta1: settings.beta1, beta2: settings.beta2, epsilon: settings.epsilon, update: updates)
        for view in views {
            let decay = Float(settings.weightDecay(for: view))
            let coupled: Float = settings.decoupled ? 0 : decay
            let decoupled: Float = settings.decoupled ? decay : 0
            let w = parameters + view.offset, g = gradients + view.offset
            let mm = m.pointer + view.offset, vv = v.pointer + view.offset
            for i in 0..<view.count {
                let gi = WeightDecay.add(g[i], weight: w[i], decay: coupled)
                let direction = moments.step(gi, mm, vv, i)
                w[i] -= lr * WeightDecay.add(direction, weight: w[i], decay: decoupled)
            }
        }
    }
}
