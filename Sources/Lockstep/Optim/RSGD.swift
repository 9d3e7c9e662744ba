// Reinforced SGD (Huang & Toyoizumi 2017; docs/algorithms.md §6): the accumulated past gradient is
// kept, at random, with a probability that grows with training time:
//   p(t) = min(1 − p0·γ^t, p_max);  ζ ~ Bernoulli(p(t));  h ← g + ζ ⊙ h;  w ← w − η·h
// (memory = "previous": h ← g + ζ ⊙ g_prev, the buffer holding the last gradient instead).
// One extra buffer (h, or g_prev). The draws come from the job's seeded generator, one stream per update,
// so every rank draws the same ζ and a resumed run draws what the uninterrupted one would have.
// The decay rule is the shared one (Optim/OptimizerKernels.swift).

#if canImport(Glibc)
import Glibc
#endif

public struct RSGDSettings: Equatable, Sendable, WeightDecaySettings {
    public enum Draw: String, Sendable, CaseIterable { case element, layer, global }
    public enum Clock: String, Sendable, CaseIterable { case step, epoch }
    public var p0 = 1.0
    public var gamma = 0.999
    /// Cap on the keep probability (1: none).
    public var pMax = 1.0
    /// One draw per element (default), per parameter tensor, or one for the whole model.
    public var draw = Draw.element
    /// t counts optimizer steps (default) or epochs.
    public var clock = Clock.step
    /// What a kept draw adds: the accumulated memory h (the paper's rule, default) or only the
    /// previous update's gradient, which bounds the step at 2·|g| whatever p is.
    public enum Memory: String, Sendable, CaseIterable { case accumulated, previous }
    public var memory = Memory.accumulated
    public var weightDecay = 0.0
    public var decayBiases = false
    public init() {}
}

public final class RSGD: Optimizer {
    private let views: [ParameterView]
    private let settings: RSGDSettings
    private let seed: UInt64
    private let stepsPerEpoch: Int
    private let memory: FloatBuffer
    public var updates = 0

    public init(views: [ParameterView], parameterCount: Int, settings: RSGDSettings, seed: UInt64, stepsPerEpoch: Int) {
        self.views = views
        self.settings = settings
        self.seed = seed
        self.stepsPerEpoch = max(stepsPerEpoch, 1)
        memory = FloatBuffer(count: parameterCount)
    }

    public var stateBuffers: [(name: String, buffer: FloatBuffer)] { [("memory", memory)] }

    /// The keep probability at update `t` (1-based), on the configured clock.
    public func keepProbability(update t: Int) -> Double {
        let time = settings.clock == .step ? t : (t - 1) / stepsPerEpoch + 1
        return min(1 - settings.p0 * pow(settings.gamma, Double(time)), settings.pMax)
    }

    /// The generator of update `t`'s draws: in element mode the model's flat element j takes
    /// draw j, in layer mode tensor i takes draw i, in global mode draw 0 decides for all.
    public static func generator(seed: UInt64, update t: Int) -> Xoshiro256 {
        Xoshiro256(seed: seed, stream: 0x5253_4744_0000_0000 &+ UInt64(t))
    }

    public func step(parameters: UnsafeMutablePointer<Float>, gradients: UnsafeMutablePointer<Float>, lr: Float) {
        updates += 1
        let p = keepProbability(update: updates)
        var rng = Self.generator(seed: seed, update: updates)
        // Draw u ~ U[0,1) and keep when u < p, comparing the top 53 bits as an integer.
        let threshold = p >= 1 ? UInt64.max : p <= 0 ? 0 : UInt64(p * 0x1.0p53)
        let previousOnly = settings.memory == .previous
        let globalKeep = settings.draw == .global && (rng.next() >> 11 < threshold || p >= 1)
        for view in views {
            let decay = Float(settings.weightDecay(for: view))
            let w = parameters + view.offset, g = gradients + view.offset, h = memory.pointer + view.offset
            switch settings.draw {
            case .element:
                for j in 0..<view.count {
                    let keep = rng.next() >> 11 < threshold || p >= 1
                    let gj = WeightDecay.add(g[j], weight: w[j], decay: decay)
                    let hj = gj + (keep ? h[j] : 0)
                    h[j] = previousOnly ? gj : hj
                    w[j] -= lr * hj
                }
            case .layer, .global:
                let keep: Bool
                if settings.draw == .layer { keep = rng.next() >> 11 < threshold || p >= 1 } else { keep = globalKeep }
                let k: Float = keep ? 1 : 0
                for j in 0..<view.count {
                    let gj = WeightDecay.add(g[j], weight: w[j], decay: decay)
                    let hj = gj + k * h[j]
                    h[j] = previousOnly ? gj : hj
                    w[j] -= lr * hj
                }
            }
        }
    }
}
