// Float64 reference optimizers (docs/algorithms.md §1 and §3), written once for every test that
// checks the Float32 ones (SGDTests, AdaptiveOptimizerTests, GSNRTests' VR bases). Each takes the
// optimizer's own settings and the network's views, and steps w with a given gradient and rate.
import Lockstep
#if canImport(Glibc)
import Glibc
#endif

protocol ReferenceOptimizer {
    mutating func step(_ w: inout [Double], _ g: [Double], lr: Double)
    /// Per-tensor trust ratios of the last step (1 where none applies).
    var trust: [Double] { get }
}

func referenceNorm(_ x: ArraySlice<Double>) -> Double { x.reduce(0) { $0 + $1 * $1 }.squareRoot() }

/// λ on weights; on biases only when `biases` (decay_biases).
private func decay(_ view: ParameterView, _ lambda: Double, biases: Bool) -> Double {
    view.spec.isWeight || biases ? lambda : 0
}

/// g' = g + λw; u ← m·u + g' (NSHB: (1−m)·g'); w ← w − η·u (heavy ball), w − η·(g' + m·u) (Nesterov), w − η·g' (m = 0).
struct ReferenceSGD: ReferenceOptimizer {
    let settings: SGDSettings
    let views: [ParameterView]
    var u: [Double]
    var trust: [Double] { views.map { _ in 1 } }

    init(_ settings: SGDSettings, views: [ParameterView], count: Int) {
        (self.settings, self.views, u) = (settings, views, [Double](repeating: 0, count: count))
    }

    mutating func step(_ w: inout [Double], _ g: [Double], lr: Double) {
        let m = settings.momentum
        for view in views {
            let lambda = decay(view, settings.weightDecay, biases: settings.decayBiases)
            for i in view.offset..<(view.offset + view.count) {
                let gi = g[i] + lambda * w[i]
                if m == 0 {
                    w[i] -= lr * gi
                } else {
                    u[i] = m * u[i] + (settings.normalized ? 1 - m : 1) * gi
                    w[i] -= lr * (settings.nesterov ? gi + m * u[i] : u[i])
                }
            }
        }
    }
}

/// Adam: λw joins the gradient (and so the moments); AdamW: λw is applied directly.
/// m ← β1·m + (1−β1)·g; v ← β2·v + (1−β2)·g²; w ← w − η·(m̂/(√v̂ + ε) [+ λw]).
struct ReferenceAdam: ReferenceOptimizer {
    let settings: AdamSettings
    let views: [ParameterView]
    var m: [Double], v: [Double]
    var t = 0
    var trust: [Double] { views.map { _ in 1 } }

    init(_ settings: AdamSettings, views: [ParameterView], count: Int) {
        (self.settings, self.views) = (settings, views)
        m = [Double](repeating: 0, count: count)
        v = m
    }

    mutating func step(_ w: inout [Double], _ g: [Double], lr: Double) {
        t += 1
        let (b1, b2) = (settings.beta1, settings.beta2)
        for view in views {
            let lambda = decay(view, settings.weightDecay, biases: settings.decayBiases)
            for i in view.offset..<(view.offset + view.count) {
                let gi = g[i] + (settings.decoupled ? 0 : lambda * w[i])
                m[i] = b1 * m[i] + (1 - b1) * gi
                v[i] = b2 * v[i] + (1 - b2) * gi * gi
                let mh = m[i] / (1 - pow(b1, Double(t))), vh = v[i] / (1 - pow(b2, Double(t)))
                w[i] -= lr * (mh / (vh.squareRoot() + settings.epsilon) + (settings.decoupled ? lambda * w[i] : 0))
            }
        }
    }
}

/// trust = τ‖w‖/(‖g‖ + λ‖w‖) on weights (biases when trust_biases), 1 when a norm is 0;
/// u ← m·u + trust·(g + λw); w ← w − η·u.
struct ReferenceLARS: ReferenceOptimizer {
    let settings: LARSSettings
    let views: [ParameterView]
    var u: [Double]
    var trust: [Double]

    init(_ settings: LARSSettings, views: [ParameterView], count: Int) {
        (self.settings, self.views, u) = (settings, views, [Double](repeating: 0, count: count))
        trust = views.map { _ in 1 }
    }

    mutating func step(_ w: inout [Double], _ g: [Double], lr: Double) {
        for (k, view) in views.enumerated() {
            let r = view.offset..<(view.offset + view.count)
            let lambda = decay(view, settings.weightDecay, biases: settings.decayBiases)
            var tr = 1.0
            if view.spec.isWeight || settings.trustBiases {
                let wn = referenceNorm(w[r]), gn = referenceNorm(g[r])
                let numerator = settings.trustCoefficient * wn, denominator = gn + lambda * wn
                tr = numerator > 0 && denominator > 0 ? numerator / denominator : 1
            }
            trust[k] = tr
            for i in r {
                u[i] = settings.momentum * u[i] + tr * (g[i] + lambda * w[i])
                w[i] -= lr * u[i]
            }
        }
    }
}

/// a = m̂/(√v̂ + ε) + λw from Adam's moments of g; trust = ‖w‖/‖a‖ on weights (biases when
/// trust_biases), 1 when a norm is 0; w ← w − η·trust·a.
struct ReferenceLAMB: ReferenceOptimizer {
    let settings: LAMBSettings
    let views: [ParameterView]
    var m: [Double], v: [Double]
    var t = 0
    var trust: [Double]

    init(_ settings: LAMBSettings, views: [ParameterView], count: Int) {
        (self.settings, self.views) = (settings, views)
        m = [Double](repeating: 0, count: count)
        v = m
        trust = views.map { _ in 1 }
    }

    mutating func step(_ w: inout [Double], _ g: [Double], lr: Double) {
        t += 1
        let (b1, b2) = (settings.beta1, settings.beta2)
        for (k, view) in views.enumerated() {
            let r = view.offset..<(view.offset + view.count)
            let lambda = decay(view, settings.weightDecay, biases: settings.decayBiases)
            var a = [Double](repeating: 0, count: view.count)
            for i in r {
                m[i] = b1 * m[i] + (1 - b1) * g[i]
                v[i] = b2 * v[i] + (1 - b2) * g[i] * g[i]
                let mh = m[i] / (1 - pow(b1, Double(t))), vh = v[i] / (1 - pow(b2, Double(t)))
                a[i - view.offset] = mh / (vh.squareRoot() + settings.epsilon) + lambda * w[i]
            }
            let wn = referenceNorm(w[r]), an = referenceNorm(a[...])
            let tr = (view.spec.isWeight || settings.trustBiases) && wn > 0 && an > 0 ? wn / an : 1
            trust[k] = tr
            for i in r { w[i] -= lr * tr * a[i - view.offset] }
        }
    }
}
