// Xoshiro256 (known answers, streams, bounded draws) and EpochOrder (permutations, rank windows).
import Testing
import Lockstep

@Suite struct RandomTests {
    @Test func knownAnswers() {
        // SplitMix64 from 0 gives these four words (Vigna's reference splitmix64.c); seed 0, stream 0
        // seeds the state with them, so the generator is the same on every platform.
        let seeded = Xoshiro256(seed: 0)
        #expect(seeded.stateWords == [0xE220_A839_7B1D_CDAF, 0x6E78_9E6A_A1B9_65F4, 0x06C4_5D18_8009_454F, 0xF88B_B8A8_724C_81EC])
        // xoshiro256** from state {1, 2, 3, 4} (reference xoshiro256starstar.c).
        var g = Xoshiro256(state: [1, 2, 3, 4])
        let expected: [UInt64] = [11520, 0, 1_509_978_240, 1_215_971_899_390_074_240, 1_216_172_134_540_287_360, 607_988_272_756_665_600]
        #expect((0..<6).map { _ in g.next() } == expected)
        // Seed/stream mixing and Lemire's bounded draw, pinned to values from an independent Python
        // reimplementation of Random.swift (so a change of data order across versions is noticed).
        var s = Xoshiro256(seed: 42, stream: 3)
        #expect((0..<3).map { _ in s.next() } == [4_393_367_743_702_550_806, 2_083_193_025_902_234_773, 1_613_447_729_919_889_217])
        var b = Xoshiro256(seed: 5)
        #expect((0..<10).map { _ in b.next(below: 10) } == [2, 6, 6, 8, 5, 7, 5, 8, 3, 3])
    }

    @Test func seedsAndStreams() {
        var a = Xoshiro256(seed: 42, stream: 3), b = Xoshiro256(seed: 42, stream: 3)
        var c = Xoshiro256(seed: 42, stream: 4), d = Xoshiro256(seed: 43, stream: 3)
        let sa = (0..<100).map { _ in a.next() }
        #expect(sa == (0..<100).map { _ in b.next() })
        let sc = (0..<100).map { _ in c.next() }, sd = (0..<100).map { _ in d.next() }
        #expect(sa != sc && sa != sd && sc != sd)
        // Different streams do not share a single position-shifted sequence either.
        #expect(Set(sa).intersection(sc).isEmpty)
        // The state can be saved (checkpoints) and restored to continue the same sequence.
        var saved = Xoshiro256(state: a.stateWords)
        #expect(saved == a)
        #expect((0..<10).map { _ in saved.next() } == (0..<10).map { _ in a.next() })
    }

    @Test func boundedDrawsInRangeAndUniform() {
        var g = Xoshiro256(seed: 9)
        for bound in [1, 2, 3, 7, 10, 1000, 1 << 40, Int.max] {
            for _ in 0..<2000 {
                let v = g.next(below: bound)
                #expect(v >= 0 && v < bound, "next(below: \(bound)) gave \(v)")
            }
        }
        // χ² over 10 buckets, 100 000 draws: 9 degrees of freedom, P(χ² > 40) ≈ 5e-6, so a fair
        // generator (deterministic here anyway) passes and a modulo-biased or stuck one does not.
        let buckets = 10, draws = 100_000
        var counts = [Int](repeating: 0, count: buckets)
        for _ in 0..<draws { counts[g.next(below: buckets)] += 1 }
        let expected = Double(draws) / Double(buckets)
        let chi2 = counts.reduce(0.0) { $0 + (Double($1) - expected) * (Double($1) - expected) / expected }
        #expect(chi2 < 40, "χ² = \(chi2), counts \(counts)")
        // A bound that is not a power of two near 2^63: the top half must be hit about half the time.
        let big = Int.max / 3 * 2
        var upper = 0
        for _ in 0..<10_000 where g.next(below: big) >= big / 2 { upper += 1 }
        #expect(abs(upper - 5000) < 300, "upper half hit \(upper) of 10000")
    }

    @Test func unitDrawsInHalfOpenInterval() {
        var g = Xoshiro256(seed: 10)
        var sum = 0.0
        for _ in 0..<100_000 {
            let u = g.nextUnit()
            #expect(u >= 0 && u < 1)
            sum += u
        }
        // Mean of 1e5 uniforms: sd ≈ 0.29/316 ≈ 9e-4; 0.005 is > 5 sd.
        #expect(abs(sum / 100_000 - 0.5) < 0.005)
    }
}

@Suite struct EpochOrderTests {
    @Test func permutationIsAPermutation() {
        for n in [0, 1, 2, 10, 1000] {
            var order = [Int32](repeating: -1, count: n)
            EpochOrder.permutation(seed: 1, epoch: 0, into: &order)
            #expect(order.sorted() == (0..<Int32(n)).map { $0 })
        }
    }

    @Test func knownPermutations() {
        // Fisher–Yates (i from n−1 down, j uniform in 0...i) over stream 0xDA7A_0000_0000 + epoch,
        // from the same independent Python reimplementation: the global data order is portable.
        var a = [Int32](repeating: 0, count: 10), b = [Int32](repeating: 0, count: 12)
        EpochOrder.permutation(seed: 1, epoch: 0, into: &a)
        EpochOrder.permutation(seed: 2024, epoch: 7, into: &b)
        #expect(a == [4, 5, 7, 0, 6, 2, 3, 1, 9, 8])
        #expect(b == [4, 11, 5, 6, 10, 0, 1, 7, 9, 8, 2, 3])
    }

    @Test func permutationsAreUniform() {
        // Over 2400 epochs of n = 4, each element lands in each position ~600 times. χ² over the
        // 16 cells (≤ 9 dof for a fair shuffle) stays far below 60; a biased shuffle such as Sattolo's
        // (no fixed points, so 4 empty cells) is far above it.
        var counts = [[Int]](repeating: [Int](repeating: 0, count: 4), count: 4)
        var order = [Int32](repeating: 0, count: 4)
        for epoch in 0..<2400 {
            EpochOrder.permutation(seed: 99, epoch: epoch, into: &order)
            for (position, element) in order.enumerated() { counts[Int(element)][position] += 1 }
        }
        let chi2 = counts.joined().reduce(0.0) { $0 + (Double($1) - 600) * (Double($1) - 600) / 600 }
        #expect(chi2 < 60, "χ² = \(chi2), counts \(counts)")
    }

    @Test func deterministicPerSeedAndEpoch() {
        func order(_ seed: UInt64, _ epoch: Int) -> [Int32] {
            var o = [Int32](repeating: 0, count: 500)
            EpochOrder.permutation(seed: seed, epoch: epoch, into: &o)
            return o
        }
        #expect(order(7, 3) == order(7, 3))
        // The result does not depend on what the buffer held before.
        var dirty = [Int32](repeating: 99, count: 500)
        EpochOrder.permutation(seed: 7, epoch: 3, into: &dirty)
        #expect(dirty == order(7, 3))
        #expect(order(7, 3) != order(7, 4))
        #expect(order(7, 3) != order(8, 3))
        #expect(order(7, 0) != (0..<500).map { Int32($0) }, "a shuffle, not the identity")
        // Epochs are not a rotation of one another: most positions differ.
        let a = order(7, 0), b = order(7, 1)
        #expect(zip(a, b).filter { $0 != $1 }.count > 450)
    }

    @Test func stepsPerEpochDropsTheTail() {
        #expect(EpochOrder.stepsPerEpoch(samples: 1000, globalBatch: 128) == 7)
        #expect(EpochOrder.stepsPerEpoch(samples: 1024, globalBatch: 128) == 8)
        #expect(EpochOrder.stepsPerEpoch(samples: 100, globalBatch: 128) == 0)
    }

    @Test(arguments: [1, 2, 3, 4])
    func rankWindowsTileTheGlobalWindow(ranks: Int) {
        for globalBatch in [12, 24, 36] {
            for step in 0..<5 {
                var covered: [Int] = []
                for rank in 0..<ranks {
                    let window = EpochOrder.localWindow(step: step, globalBatch: globalBatch, rank: rank, ranks: ranks)
                    #expect(window.count == globalBatch / ranks)
                    covered += Array(window)
                }
                // In rank order the windows are exactly the step's global window, no gaps, no overlap.
                #expect(covered == Array((step * globalBatch)..<((step + 1) * globalBatch)),
                        "p=\(ranks) B=\(globalBatch) step=\(step)")
            }
        }
    }
}
