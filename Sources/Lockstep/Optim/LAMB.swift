// LAMB (You et al.), per parameter tensor (docs/algorithms.md §3):
//   Adam moments and bias correction on g;  a = m̂/(√v̂ + ε) + λw;
//   trust = ‖w‖/‖a‖ (1 when either norm is 0);  w ← w − η·trust·a
// Biases are excluded from the trust ratio (trust 1) and from weight decay by default.

// The moments, the decay rule and the ratio rule are the shared ones (Optim/OptimizerKernels.swift).

public struct LAMBSettings: Equatable, Sendable, WeightDecaySettings {
    public var beta1 = 0.9
    public var beta2 = 0.999
    public var epsilon = 1e-6
    public var weightDecay = 0.0
    /// Apply weight decay to biases too (off by default).
    public var decayBiases = false
    /// Give biases a trust ratio too (off by default: their trust is 1).
    public var trustBiases = false
    public init() {}
}

public final class LAMB: Optimizer, TrustRatioReporting {
    private let views: [ParameterView]
    private let settings: LAMBSettings
    private let m: FloatBuffer
    private let v: FloatBuffer
    /// The update direction a, kept between the two passes over a tensor (sized once).
    private let direction: FloatBuffer
    public var updates = 0
    public private(set) var trustRatios: [Double]

    public init(views: [ParameterView], parameterCount: Int, settings: LAMBSettings) {
        self.views = views
        self.settings = settings
        m = FloatBuffer(count: parameterCount)
        v = FloatBuffer(count: parameterCount)
        direction = FloatBuffer(count: views.map(\.count).max() ?? 0)
        trustRatios = [Double](repeating: 1, count: views.count)
    }

    public var stateBuffers: [(name: String, buffer: FloatBuffer)] { [("m", m), ("v", v)] }
    public var trustRatioNames: [String] { views.map(\.path) }

    public func step(parameters: UnsafeMutablePointer<Float>, gradients: UnsafeMutablePointer<Float>, lr: Float) {
        updates += 1
        let moments = AdamMoments(beta1: settings.beta1, beta2: settings.beta2, epsilon: settings.epsilon, update: updates)
        let a = direction.pointer
        for (index, view) in views.enumerated() {
            let w = parameters + view.offset, g = gradients + view.offset
            let mm = m.pointer + view.offset, vv = v.pointer + view.offset
            let d = Float(settings.weightDecay(for: view))
            var aNormSquared = 0.0
            for i in 0..<view.count {
                let ai = WeightDecay.add(moments.step(g[i], mm, vv, i), weight: w[i], decay: d)
                a[i] = ai
                aNormSquared += Double(ai) * Double(ai)
            }
            let trust = view.spec.isWeight || settings.trustBiases
                ? TrustRatio.ratio(VectorKernels.l2(w, view.count), aNormSquared.squareRoot()) : 1
            trustRatios[index] = trust
            let step = lr * Float(trust)
            for i in 0..<view.count { w[i] -= step * a[i] }
        }
    }
}
