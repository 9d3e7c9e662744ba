// Evaluation and the full-gradient pass are not augmented, and evaluation's loss is not smoothed:
// trainers built like `lockstep train` builds them, from the same initialisation with and without
// [augment] / [loss], evaluate bitwise alike, while their training steps differ. Here because
// this target already builds real Trainers on the MPI singleton; nested in StepAllocationTests
// so that it never issues collectives while that suite does.

import Foundation
import Lockstep
import Testing

extension StepAllocationTests {
    @Suite struct AugmentedTrainerTests {
        static let base = "[optimizer]\nlr = 0.05\nmomentum = 0.9\n"

        @Test func evaluationSeesTheSplitAsItIsAndThePlainLoss() throws {
            let plain = try StepAllocationTests.trainer(Self.base)
            let augmented = try StepAllocationTests.trainer(Self.base + "[augment]\ncrop_padding = 1\nflip = true\n")
            let smoothed = try StepAllocationTests.trainer(Self.base + "[loss]\nlabel_smoothing = 0.3\n")
            #expect(augmented.configuration.augmentation == Augmentation(cropPadding: 1, flip: true))
            #expect(smoothed.configuration.labelSmoothing == 0.3)
            let file = try HDF5File.open(StepAllocationTests.dataPath)
            let test = try Dataset(file: file, xPath: "/test/x", yPath: "/test/y", classes: 4, name: "test")

            // The same parameters (seed 1): the same test and train evaluations, bit for bit.
            for split in [test, plain.train] {
                let a = plain.evaluate(split), b = augmented.evaluate(split), c = smoothed.evaluate(split)
                #expect(a.accuracy == b.accuracy && a.loss.bitPattern == b.loss.bitPattern, "\(split.name): \(a) vs augmented \(b)")
                #expect(a.accuracy == c.accuracy && a.loss.bitPattern == c.loss.bitPattern, "\(split.name): \(a) vs smoothed \(c)")
            }
            // The full-gradient measurement reads the split unaugmented; it measures the training
            // objective, so with label smoothing it is the smoothed one's.
            let fa = plain.fullGradient(), fb = augmented.fullGradient(), fc = smoothed.fullGradient()
            #expect(fa.norm.bitPattern == fb.norm.bitPattern && fa.loss.bitPattern == fb.loss.bitPattern)
            #expect(fa.loss != fc.loss && fa.norm != fc.norm)

            // Training sees the augmented samples and the smoothed loss: the first step's losses differ.
            let (la, lb, lc) = (try plain.step().loss, try augmented.step().loss, try smoothed.step().loss)
            #expect(la != lb && la != lc, "\(la) \(lb) \(lc)")
            // After steps, the parameters moved differently.
            for _ in 0..<5 { _ = try plain.step(); _ = try augmented.step() }
            let pa = Array(UnsafeBufferPointer(start: plain.network.parameters.pointer, count: plain.network.parameterCount))
            let pb = Array(UnsafeBufferPointer(start: augmented.network.parameters.pointer, count: augmented.network.parameterCount))
            #expect(pa != pb)
        }
    }
}
