// LearningRateSchedule: scaling rules, gradual and constant warmup, cosine, step and polynomial decay, each against its formula.
import Testing
import Lockstep
#if canImport(Glibc)
import Glibc
#endif

@Suite struct LearningRateScheduleTests {
    static func schedule(_ scaling: LearningRateSchedule.Scaling = .none, warmup: Int = 0,
                         decay: LearningRateSchedule.Decay = .constant, minLR: Double = 0, total: Int = 100) -> LearningRateSchedule {
        var s = LearningRateSchedule(baseLR: 0.1, baseBatch: 256, totalSteps: total)
        s.scaling = scaling
        s.warmupSteps = warmup
        s.decay = decay
        s.minLR = minLR
        return s
    }

    @Test func constantIgnoresBatchWithoutScaling() {
        let s = Self.schedule()
        #expect(s.scaledLR(batch: 4096) == 0.1)
        for step in [0, 1, 50, 99, 100, 1000] {
            #expect(s.lr(step: step, batch: 256) == 0.1)
            #expect(s.lr(step: step, batch: 8192) == 0.1)
        }
    }

    @Test func linearAndSqrtScaling() {
        let linear = Self.schedule(.linear), sqrt = Self.schedule(.sqrt)
        // η = η_base·B/B_base and η_base·√(B/B_base); exact up to one rounding.
        for batch in [64, 256, 1024, 8192, 300] {
            let ratio = Double(batch) / 256
            #expect(isClose(linear.scaledLR(batch: batch), 0.1 * ratio, abs: 0, rel: 1e-15))
            #expect(isClose(sqrt.scaledLR(batch: batch), 0.1 * ratio.squareRoot(), abs: 0, rel: 1e-15))
            #expect(isClose(linear.lr(step: 7, batch: batch), 0.1 * ratio, abs: 0, rel: 1e-15))
        }
        #expect(isClose(linear.scaledLR(batch: 1024), 0.4, abs: 0, rel: 1e-15))
        #expect(isClose(sqrt.scaledLR(batch: 1024), 0.2, abs: 0, rel: 1e-15))
    }

    @Test func gradualWarmupFromBaseRate() {
        let s = Self.schedule(.linear, warmup: 5)
        let batch = 2048                                   // target 0.8
        #expect(s.lr(step: 0, batch: batch) == 0.1, "warmup starts at η_base, not 0")
        let increment = (0.8 - 0.1) / 5
        for step in 0..<5 {
            #expect(isClose(s.lr(step: step, batch: batch), 0.1 + increment * Double(step), abs: 1e-15, rel: 1e-14))
            #expect(isClose(s.lr(step: step + 1, batch: batch) - s.lr(step: step, batch: batch), increment, abs: 1e-14, rel: 0),
                    "constant increment per step")
        }
        #expect(isClose(s.lr(step: 5, batch: batch), 0.8, abs: 0, rel: 1e-15), "reaches the scaled rate at warmupSteps")
        #expect(isClose(s.lr(step: 500, batch: batch), 0.8, abs: 0, rel: 1e-15))
        // With no scaling the target is η_base, so warmup is flat.
        let flat = Self.schedule(.none, warmup: 5)
        for step in 0..<8 { #expect(flat.lr(step: step, batch: batch) == 0.1) }
    }

    @Test func cosineToFloor() {
        let s = Self.schedule(.linear, warmup: 10, decay: .cosine, minLR: 0.001, total: 110)
        let batch = 512                                    // target 0.2
        func formula(_ step: Int) -> Double {
            let progress = min(Double(step - 10) / 100, 1)
            return 0.001 + (0.2 - 0.001) * 0.5 * (1 + cos(Double.pi * progress))
        }
        #expect(isClose(s.lr(step: 10, batch: batch), 0.2, abs: 1e-15, rel: 1e-14))
        #expect(isClose(s.lr(step: 60, batch: batch), 0.001 + (0.2 - 0.001) / 2, abs: 1e-15, rel: 1e-12))
        #expect(isClose(s.lr(step: 110, batch: batch), 0.001, abs: 1e-15, rel: 1e-12))
        #expect(isClose(s.lr(step: 500, batch: batch), 0.001, abs: 1e-15, rel: 1e-12), "stays at the floor past totalSteps")
        var previous = Double.infinity
        for step in 10...120 {
            let lr = s.lr(step: step, batch: batch)
            #expect(isClose(lr, formula(step), abs: 1e-15, rel: 1e-12))
            #expect(lr <= previous, "cosine never rises")
            previous = lr
        }
        // Warmup before the cosine still starts from η_base.
        #expect(s.lr(step: 0, batch: batch) == 0.1)
    }

    @Test func constantWarmupHoldsThenJumps() {
        var s = Self.schedule(.linear, warmup: 4)
        s.warmup = .constant
        for step in 0..<4 { #expect(s.lr(step: step, batch: 1024) == 0.1, "holds η_base during warmup") }
        #expect(isClose(s.lr(step: 4, batch: 1024), 0.4, abs: 0, rel: 1e-15), "then jumps to the scaled rate")
    }

    @Test func stepDecayAtEpochs() {
        var s = Self.schedule(decay: .step, total: 1000)
        s.decayEpochs = [3, 6]
        s.decayFactor = 0.1
        s.stepsPerEpoch = 10
        // ×0.1 from the first step of epoch 3 (step 30) and again from epoch 6 (step 60).
        for (step, want) in [(0, 0.1), (29, 0.1), (30, 0.01), (59, 0.01), (60, 0.001), (999, 0.001)] {
            #expect(isClose(s.lr(step: step, batch: 256), want, abs: 1e-15, rel: 1e-12), "step \(step)")
        }
    }

    @Test func polynomialToFloor() {
        var s = Self.schedule(decay: .polynomial, minLR: 0.01, total: 50)
        s.power = 2
        for step in [0, 10, 25, 49, 50, 80] {
            let progress = min(Double(step) / 50, 1)
            let want = 0.01 + (0.1 - 0.01) * (1 - progress) * (1 - progress)
            #expect(isClose(s.lr(step: step, batch: 256), want, abs: 1e-15, rel: 1e-12), "step \(step)")
        }
        #expect(isClose(s.lr(step: 50, batch: 256), 0.01, abs: 1e-15, rel: 0))
    }
}
