// The learning rate at each step (docs/algorithms.md §1): the scaling rule applied to the current
// global batch, warmup from the base rate (gradual or constant), then the main schedule.

#if canImport(Glibc)
import Glibc
#endif

public struct LearningRateSchedule: Equatable, Sendable {
    public enum Scaling: String, Sendable, CaseIterable { case none, linear, sqrt }
    public enum Warmup: String, Sendable, CaseIterable {
        /// Linear from η_base to the scaled η, a constant increment per step (Goyal et al.).
        case gradual
        /// Hold η_base for the warmup, then jump to the scaled η.
        case constant
    }
    public enum Decay: String, Sendable, CaseIterable { case constant, step, cosine, polynomial }

    /// η_base: the rate tuned for `baseBatch`.
    public var baseLR: Double
    public var scaling: Scaling = .none
    public var baseBatch: Int
    public var warmup: Warmup = .gradual
    public var warmupSteps = 0
    public var decay: Decay = .constant
    /// Step decay: multiply by `decayFactor` at the start of each of these epochs.
    public var decayEpochs: [Int] = []
    public var decayFactor = 0.1
    /// Polynomial decay: (1 − progress)^power.
    public var power = 2.0
    /// Floor of the cosine and polynomial decays.
    public var minLR = 0.0
    /// Total steps of the run (cosine and polynomial reach `minLR` there).
    public var totalSteps: Int
    /// Steps per epoch, to place step-decay epochs when the caller gives no epoch.
    public var stepsPerEpoch = 1

    public init(baseLR: Double, baseBatch: Int, totalSteps: Int) {
        self.baseLR = baseLR
        self.baseBatch = baseBatch
        self.totalSteps = totalSteps
    }

    /// The scaled rate for a global batch: η_base·B/B_base (linear) or η_base·√(B/B_base).
    public func scaledLR(batch: Int) -> Double {
        let ratio = Double(batch) / Double(baseBatch)
        switch scaling {
        case .none: return baseLR
        case .linear: return baseLR * ratio
        case .sqrt: return baseLR * ratio.squareRoot()
        }
    }

    /// The rate for 0-based `step` at global batch `batch`, with a constant batch (the epoch,
    /// for step decay, is `step / stepsPerEpoch`).
    public func lr(step: Int, batch: Int) -> Double {
        lr(step: step, epoch: step / max(stepsPerEpoch, 1), batch: batch)
    }

    /// The rate for 0-based `step`, in 0-based `epoch`, at global batch `batch`.
    public func lr(step: Int, epoch: Int, batch: Int) -> Double {
        let target = scaledLR(batch: batch)
        if step < warmupSteps {
            switch warmup {
            case .gradual: return baseLR + (target - baseLR) * Double(step) / Double(warmupSteps)
            case .constant: return baseLR
            }
        }
        let span = max(totalSteps - warmupSteps, 1)
        let progress = min(Double(step - warmupSteps) / Double(span), 1)
        switch decay {
        case .constant:
            return target
        case .step:
            let passed = decayEpochs.filter { $0 <= epoch }.count
            return target * pow(decayFactor, Double(passed))
        case .cosine:
            return minLR + (target - minLR) * 0.5 * (1 + cos(Double.pi * progress))
        case .polynomial:
            return minLR + (target - minLR) * pow(1 - progress, power)
        }
    }
}
