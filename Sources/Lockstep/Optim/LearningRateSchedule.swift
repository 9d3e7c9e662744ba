// The learning rate at each step (ALGORITHMS.md §1): scaling rule applied to the current global
// batch, gradual warmup from the base rate, then the main schedule.

public struct LearningRateSchedule: Equatable, Sendable {
    public enum Scaling: String, Sendable, CaseIterable { case none, linear, sqrt }
    public enum Decay: String, Sendable, CaseIterable { case constant, cosine }

    /// η_base: the rate tuned for `baseBatch`.
    public var baseLR: Double
    public var scaling: Scaling = .none
    public var baseBatch: Int
    /// Steps of gradual warmup: linear from η_base to the scaled η, a constant increment per step.
    public var warmupSteps = 0
    public var decay: Decay = .constant
    /// Floor of the cosine decay.
    public var minLR = 0.0
    /// Total steps of the run (the cosine reaches `minLR` there).
    public var totalSteps: Int

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

    /// The rate for 0-based `step` at global batch `batch`.
    public func lr(step: Int, batch: Int) -> Double {
        let target = scaledLR(batch: batch)
        if step < warmupSteps {
            return baseLR + (target - baseLR) * Double(step) / Double(warmupSteps)
        }
        switch decay {
        case .constant:
            return target
        case .cosine:
            let span = max(totalSteps - warmupSteps, 1)
            let progress = min(Double(step - warmupSteps) / Double(span), 1)
            return minLR + (target - minLR) * 0.5 * (1 + cos(Double.pi * progress))
        }
    }
}

#if canImport(Glibc)
import Glibc
#endif
