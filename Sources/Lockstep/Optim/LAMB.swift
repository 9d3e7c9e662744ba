// LAMB (You et al.), per parameter tensor (docs/algorithms.md §3):
//   Adam moments and bias correction on g;  a = m̂/(√v̂ + ε) + λw;
//   trust = ‖w‖/‖a‖ (1 when either norm is 0);  w ← w − η·trust·a
// Biases are excluded from the trust ratio (trust 1) and from weight decay by default.

#if canImport(Glibc)
import Glibc
#endif

public struct LAMBSettings: Equatable, Sendable {
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
        let b1 = Float(settings.beta1), b2 = Float(settings.beta2), eps = Float(settings.epsilon)
        let (c1, c2) = Norms.biasCorrections(beta1: settings.beta1, beta2: settings.beta2, t: updates)
        let a = direction.pointer
        for (index, view) in views.enumerated() {
            let w = parameters + view.offset, g = gradients + view.offset
            let mm = m.pointer + view.offset, vv = v.pointer + view.offset
            let d: Float = view.spec.isWeight || settings.decayBiases ? Float(settings.weightDecay) : 0
            var aNormSquared = 0.0
            for i in 0..<view.count {
                let mi = b1 * mm[i] + (1 - b1) * g[i]
                let vi = b2 * vv[i] + (1 - b2) * g[i] * g[i]
                mm[i] = mi
                vv[i] = vi
                let ai = (mi * c1) / ((vi * c2).squareRoot() + eps) + d * w[i]
                a[i] = ai
                aNormSquared += Double(ai) * Double(ai)
            }
            let trust = view.spec.isWeight || settings.trustBiases ? Norms.ratio(Norms.l2(w, view.count), aNormSquared.squareRoot()) : 1
            trustRatios[index] = trust
            let step = lr * Float(trust)
            for i in 0..<view.count { w[i] -= step * a[i] }
        }
    }
}
