// GSNR statistics (docs/algorithms.md §2.2, §2.6): the shifted moments against a Float64 two-pass variance
// over s²/ḡ² from 1 to 1e-8 and k = 2…64, ε relative to the gradient scale, the statistics-only wrapper of
// run.noise_scale, the gradient noise scale against Float64, and the new [gsnr]/[run] keys.
import Testing
import Lockstep
#if canImport(Glibc)
import Glibc
#endif

@Suite struct GSNRStatisticsTests {
    static let u = 0x1p-24

    /// Per-group shares w_d = g_d/k (Float32) of n elements: g_d = μ + σ·z_d with σ² = ratio·μ², |μ| in
    /// [1e-3, 1), random sign. `standardized`: z has mean 0 and population variance 1 exactly (in
    /// Float64, before the Float32 rounding), so s² is ratio·μ² up to that rounding; otherwise z is
    /// uniform with variance 1 (a step's groups drawn afresh).
    static func groups(k: Int, n: Int, ratio: Double, mu: [Double], standardized: Bool, rng: inout Xoshiro256) -> [[Float]] {
        var out = [[Float]](repeating: [Float](repeating: 0, count: n), count: k)
        for j in 0..<n {
            var z = (0..<k).map { _ in (rng.nextUnit() * 2 - 1) * 3.0.squareRoot() }
            if standardized {
                let mean = z.reduce(0, +) / Double(k)
                z = z.map { $0 - mean }
                let sd = (z.reduce(0) { $0 + $1 * $1 } / Double(k)).squareRoot()
                z = z.map { $0 / sd }
            }
            let sigma = ratio.squareRoot() * abs(mu[j])
            for d in 0..<k { out[d][j] = Float((mu[j] + sigma * z[d]) / Double(k)) }
        }
        return out
    }

    static func fold(_ works: [[Float]], shift: FloatBuffer, sum: FloatBuffer, squares: FloatBuffer) {
        for (d, work) in works.enumerated() {
            work.withUnsafeBufferPointer {
                GradientGroups.fold($0.baseAddress!, shift: shift.pointer, sum: sum.pointer, squares: squares.pointer,
                                    count: work.count, first: d == 0)
            }
        }
    }

    struct Measured { var maxRelative = 0.0, maxKappa = 0.0, maxMeanRelative = 0.0, boundViolations = 0 }

    /// One step after a previous one: the previous step's groups (same μ, fresh draws) set the shift
    /// a = ḡ_prev/k through the same kernel; this step's shifted fold and moments are then held to the
    /// Float64 two-pass mean and variance of its Float32 shares. `shifted: false` keeps a = 0 (the plain
    /// scheme, s² = k·Σw² − ḡ²) for contrast.
    static func measure(k: Int, ratio: Double, shifted: Bool, seed: UInt64) -> Measured {
        let n = 256
        var rng = Xoshiro256(seed: seed, stream: UInt64(k))
        let mu = (0..<n).map { _ in (rng.next(below: 2) == 0 ? 1.0 : -1.0) * pow(10, -3 * rng.nextUnit()) }
        let shift = FloatBuffer(count: n), sum = FloatBuffer(count: n), squares = FloatBuffer(count: n)
        if shifted {
            let previous = groups(k: k, n: n, ratio: ratio, mu: mu, standardized: false, rng: &rng)
            fold(previous, shift: shift, sum: sum, squares: squares)
            _ = GSNRKernels.moments(sum.pointer, squares.pointer, shift: shift.pointer, n, k: Float(k))
        }
        let a = shift.array.map(Double.init)
        let works = groups(k: k, n: n, ratio: ratio, mu: mu, standardized: true, rng: &rng)
        fold(works, shift: shift, sum: sum, squares: squares)
        _ = GSNRKernels.moments(sum.pointer, squares.pointer, shift: shift.pointer, n, k: Float(k))
        let mean32 = sum.array, variance32 = squares.array
        var m = Measured()
        let kd = Double(k)
        for j in 0..<n {
            // Float64 two-pass over the Float32 inputs: g_d = k·w_d, mean, then Σ(g_d − mean)²/k.
            let g: [Double] = works.map { kd * Double($0[j]) }
            let mean: Double = g.reduce(0, +) / kd
            let variance: Double = g.reduce(0.0) { $0 + ($1 - mean) * ($1 - mean) } / kd
            // The a-priori bound (§2.2): with y_d = w_d − a, S1 = Σ y_d, δ1 = k·u·Σ|y_d|,
            //   |s²₃₂ − s²| ≤ (k+4)·u·k·Σy_d² + (2|S1| + δ1)·δ1·(1+u) + 2u·(|S1| + δ1)²,
            // where k·Σy_d² = s² + (ḡ − k·a)²: relative to s², (k+4)·u·κ with κ = 1 + (ḡ − c)²/s².
            let y: [Double] = works.map { Double($0[j]) - a[j] }
            let d1: Double = kd * u * y.reduce(0.0) { $0 + abs($1) }
            let S1: Double = y.reduce(0, +)
            let kSquares: Double = kd * y.reduce(0.0) { $0 + $1 * $1 }
            let sumPart: Double = (2 * abs(S1) + d1) * d1 * (1 + u)
            let squarePart: Double = 2 * u * (abs(S1) + d1) * (abs(S1) + d1)
            let bound: Double = (kd + 4) * u * kSquares + sumPart + squarePart
            let err: Double = abs(Double(variance32[j]) - variance)
            if err > bound { m.boundViolations += 1 }
            m.maxRelative = max(m.maxRelative, err / variance)
            m.maxKappa = max(m.maxKappa, kSquares / variance)
            // ḡ = S1 + k·a: off by ≤ δ1 + 2u·(k|a| + |ḡ|) (the plain scheme: (k−1)·u·Σ|w_d|).
            let meanBound: Double = d1 + 2 * u * (kd * abs(a[j]) + abs(mean))
            let meanErr: Double = abs(Double(mean32[j]) - mean)
            if meanErr > meanBound { m.boundViolations += 1 }
            m.maxMeanRelative = max(m.maxMeanRelative, meanErr / abs(mean))
        }
        return m
    }

    static let ratios = [1, 1e-2, 1e-4, 1e-6, 1e-8]
    static let groupCounts = [2, 3, 4, 8, 16, 32, 64]

    /// The bound asserted: every element within the a-priori bound above, and over the whole grid the
    /// relative error of s² at most 2e-5 (κ ≤ 4 here: (k+4)·u·κ ≤ 1.6e-5 at k = 64) and of ḡ at most
    /// 4e-7 (a few ulp). The plain scheme loses s² entirely at s²/ḡ² = 1e-8 (relative error > 1e-2),
    /// which is what the shift removes.
    @Test(arguments: groupCounts)
    func shiftedVarianceMatchesFloat64TwoPass(groups k: Int) {
        var worst = Measured()
        for ratio in Self.ratios {
            let m = Self.measure(k: k, ratio: ratio, shifted: true, seed: 17)
            #expect(m.boundViolations == 0, "k = \(k), s²/ḡ² = \(ratio): \(m.boundViolations) elements outside the bound")
            worst.maxRelative = max(worst.maxRelative, m.maxRelative)
            worst.maxKappa = max(worst.maxKappa, m.maxKappa)
            worst.maxMeanRelative = max(worst.maxMeanRelative, m.maxMeanRelative)
        }
        #expect(worst.maxKappa <= 4.01, "κ = 1 + (ḡ − c)²/s² of this construction: \(worst.maxKappa)")
        #expect(worst.maxRelative <= 2e-5, "k = \(k): s² relative error \(worst.maxRelative)")
        #expect(worst.maxMeanRelative <= 4e-7, "k = \(k): ḡ relative error \(worst.maxMeanRelative)")
        print("GSNR variance k = \(k): max relative error of s² \(worst.maxRelative), of ḡ \(worst.maxMeanRelative), max κ \(worst.maxKappa)")
        // The plain scheme (a = 0) at the smallest ratio, for contrast.
        let plain = Self.measure(k: k, ratio: 1e-8, shifted: false, seed: 17)
        #expect(plain.boundViolations == 0, "the bound holds for a = 0 too")
        #expect(plain.maxRelative > 1e-2, "k = \(k): the unshifted s² should be lost at s²/ḡ² = 1e-8 (error \(plain.maxRelative))")
        print("GSNR variance k = \(k), unshifted, s²/ḡ² = 1e-8: max relative error of s² \(plain.maxRelative)")
    }

    // MARK: - ε relative to the gradient scale

    static func wrapper(_ network: Network, groups k: Int, epsilon: Double?, multiplies: Bool = true) -> VarianceReduced {
        var s = GSNRSettings()
        s.groupsPerRank = k
        s.epsilon = epsilon
        s.multiplies = multiplies
        return VarianceReduced(base: GSNRTests.Variant.sgd.base(network), views: network.views, parameterCount: network.parameterCount,
                               groups: k, settings: s, useMomentum: false)
    }

    /// With ε = 1e-8·mean(ḡ²) per tensor, scaling every group's gradient by 2^±20 (exact in Float32) scales ḡ
    /// and the adapted gradient by the same power and leaves the multipliers bitwise unchanged; an absolute ε
    /// does not. Identical groups (s² = 0) give r = ḡ²/ε_T exactly.
    @Test func relativeEpsilonFollowsTheGradientScale() {
        let k = 2
        let network = GSNRTests.network()
        let p = network.parameterCount
        var rng = Xoshiro256(seed: 21)
        let first = uniformFloats(p, -0.1, 0.1, rng: &rng), second = uniformFloats(p, -0.1, 0.1, rng: &rng)
        func adapted(scale: Float, epsilon: Double?) -> (g: [Float], mean: [Double]) {
            let reduced = Self.wrapper(network, groups: k, epsilon: epsilon)
            let sum = FloatBuffer(count: p), squares = FloatBuffer(count: p)
            Self.fold([first.map { $0 * scale }, second.map { $0 * scale }], shift: reduced.shift, sum: sum, squares: squares)
            reduced.bind(squares: squares.pointer)
            let before = network.parameters.array
            reduced.step(parameters: network.parameters.pointer, gradients: sum.pointer, lr: 0)
            #expect(network.parameters.array == before, "lr 0 leaves the weights")
            return (sum.array, reduced.meanGSNR)
        }
        let unit = adapted(scale: 1, epsilon: nil)
        for scale in [Float(0x1p20), 0x1p-20] {
            let scaled = adapted(scale: scale, epsilon: nil)
            #expect(scaled.g == unit.g.map { $0 * scale }, "relative ε: the multiplier does not see the scale")
            #expect(scaled.mean == unit.mean)
        }
        // Absolute ε = 1e-12 at a gradient scale of 2^-20 (ḡ² ~ 1e-14): ε dominates and the multipliers change.
        let absolute = adapted(scale: 0x1p-20, epsilon: 1e-12)
        #expect(absolute.g != unit.g.map { $0 * 0x1p-20 })

        // Identical groups: s² = 0, r = ḡ²/ε_T with ε_T = Float(1e-8 · Σḡ²/n) per tensor.
        let reduced = Self.wrapper(network, groups: k, epsilon: nil)
        let sum = FloatBuffer(count: p), squares = FloatBuffer(count: p)
        Self.fold([first, first], shift: reduced.shift, sum: sum, squares: squares)
        reduced.bind(squares: squares.pointer)
        let mean = sum.array
        reduced.step(parameters: network.parameters.pointer, gradients: sum.pointer, lr: 0)
        for (l, view) in network.views.enumerated() {
            let range = view.offset..<(view.offset + view.count)
            let meanSquares = mean[range].reduce(0) { $0 + Double($1) * Double($1) } / Double(view.count)
            let eps = Float(1e-8 * meanSquares)
            let want = mean[range].reduce(0) { $0 + Double($1 * $1 / eps) } / Double(view.count)
            #expect(isClose(reduced.meanGSNR[l], want, abs: 0, rel: 1e-5), "\(view.path): \(reduced.meanGSNR[l]) vs \(want)")
            // ≈ 1e8 · (mean of ḡ²/mean ḡ²) = 1e8: bounded, whatever the gradient's units.
            #expect(reduced.meanGSNR[l] > 0.9e8 && reduced.meanGSNR[l] < 1.1e8)
        }
    }

    // MARK: - Statistics only (run.noise_scale without GSNR) and the noise scale

    /// The statistics-only wrapper hands the base ḡ = S1 + k·a unchanged: bitwise the base's step on it,
    /// over several steps (the shift moving with ḡ).
    @Test func statisticsOnlyLeavesTheUpdateAlone() {
        let k = 4
        let network = GSNRTests.network(), bare = GSNRTests.network()
        let p = network.parameterCount
        let reduced = Self.wrapper(network, groups: k, epsilon: nil, multiplies: false)
        #expect(reduced.stateBuffers.map(\.name) == ["gsnr_shift"], "the SGD base without momentum has no state; no gsnr_momentum")
        let sum = FloatBuffer(count: p), squares = FloatBuffer(count: p), plain = FloatBuffer(count: p)
        reduced.bind(squares: squares.pointer)
        var rng = Xoshiro256(seed: GSNRTests.seed, stream: 11)
        for _ in 0..<3 {
            let (x, labels) = GSNRTests.batch(&rng)
            _ = GSNRTests.foldGroups(network, x: x, labels: labels, groups: k, sum: sum, squares: squares, shift: reduced.shift)
            let mean = zip(sum.array, reduced.shift.array).map { $0 + Float(k) * $1 }
            plain.copy(from: mean)
            reduced.step(parameters: network.parameters.pointer, gradients: sum.pointer, lr: 0.5)
            GSNRTests.Variant.sgd.base(bare).step(parameters: bare.parameters.pointer, gradients: plain.pointer, lr: 0.5)
            #expect(sum.array == mean, "ḡ goes to the base unchanged")
            #expect(network.parameters.array == bare.parameters.array)
            bare.parameters.copy(from: network.parameters.array)
        }
    }

    /// B_simple from the wrapper against Float64 from the same groups: tr(Σ̂) = B/(k−1)·Σ_j s_j² (s_j² the
    /// two-pass population variance over the k groups), |G|²̂ = Σ_j ḡ_j² − tr(Σ̂)/B; and, from per-sample
    /// gradients of known covariance, the estimate recovers tr(Σ) and B_simple = tr(Σ)/|G|² (statistically).
    @Test(arguments: [2, 4, 8])
    func noiseScaleMatchesFloat64(groups k: Int) {
        let b = 16, n = 2000, batch = k * b
        var rng = Xoshiro256(seed: 31, stream: UInt64(k))
        // Per-sample gradients g_i = μ + σ·z_i (z uniform, variance 1): tr(Σ) = Σ σ_j², |G|² = Σ μ_j².
        let mu = (0..<n).map { _ in rng.nextUnit() * 0.02 - 0.01 }
        let sigma = (0..<n).map { _ in 0.05 + 0.1 * rng.nextUnit() }
        var works = [[Float]](repeating: [Float](repeating: 0, count: n), count: k)
        for d in 0..<k {
            for j in 0..<n {
                var groupSum = 0.0
                for _ in 0..<b { groupSum += mu[j] + sigma[j] * (rng.nextUnit() * 2 - 1) * 3.0.squareRoot() }
                // The group's share of the global mean: (1/B)·Σ_{i ∈ group} g_i.
                works[d][j] = Float(groupSum / Double(batch))
            }
        }
        let network = GSNRTests.network()
        // A flat set of n parameters: one view is enough for the statistics; use the kernels directly.
        let shift = FloatBuffer(count: n), sum = FloatBuffer(count: n), squares = FloatBuffer(count: n)
        Self.fold(works, shift: shift, sum: sum, squares: squares)
        let (meanSquares, variances) = GSNRKernels.moments(sum.pointer, squares.pointer, shift: shift.pointer, n, k: Float(k))
        let got = NoiseScale(varianceSum: variances, meanSquares: meanSquares, groups: k, batch: batch)
        // Float64 two-pass from the same Float32 shares.
        var varianceSum = 0.0, squareSum = 0.0
        for j in 0..<n {
            let g = works.map { Double(k) * Double($0[j]) }
            let m = g.reduce(0, +) / Double(k)
            varianceSum += g.reduce(0) { $0 + ($1 - m) * ($1 - m) } / Double(k)
            squareSum += m * m
        }
        let trace = Double(batch) / Double(k - 1) * varianceSum
        let gradientSquared = squareSum - trace / Double(batch)
        #expect(isClose(got.trace, trace, abs: 0, rel: 1e-4), "tr(Σ̂) \(got.trace) vs \(trace)")
        #expect(isClose(got.gradientSquared, gradientSquared, abs: 1e-5 * squareSum, rel: 1e-5), "|G|² \(got.gradientSquared) vs \(gradientSquared)")
        if let simple = got.simple, gradientSquared > 0 {
            #expect(isClose(simple, trace / gradientSquared, abs: 0, rel: 1e-4))
        }
        // The definitions: tr(Σ̂) estimates Σ σ_j² (unbiased; 2000 elements: relative spread ~ √(2/((k−1)·n))).
        let trueTrace = sigma.reduce(0) { $0 + $1 * $1 }
        #expect(isClose(got.trace, trueTrace, abs: 0, rel: 0.1), "k = \(k): tr(Σ̂) \(got.trace) vs tr(Σ) \(trueTrace)")
        let trueGradient = mu.reduce(0) { $0 + $1 * $1 }
        print("noise scale k = \(k): tr(Σ̂) \(got.trace) (true \(trueTrace)), |G|²̂ \(got.gradientSquared) (true \(trueGradient)), B_simple \(got.simple ?? .nan) (true \(trueTrace / trueGradient))")
        _ = network
        // ≤ 0 has no B_simple.
        #expect(NoiseScale(varianceSum: 1, meanSquares: 0.1, groups: 2, batch: 8).simple == nil)
    }

    // MARK: - Keys

    @Test func newKeysParseAndRender() throws {
        let job = try GSNRTests.gsnrJob("enabled = true\ngroups_per_rank = 4\neps_relative = 1e-6\nsmoothing = 0.5\napply = \"update\"")
        #expect(job.gsnr?.epsilon == nil && job.gsnr?.epsilonRelative == 1e-6)
        #expect(job.gsnr?.smoothing == 0.5 && job.gsnr?.apply == .update)
        #expect(job.gsnrSmoothing == 0.5 && job.gsnrMomentum, "smoothing applies to the SGD base too")
        #expect(try GSNRTests.gsnrJob("enabled = true\nsmoothing = 0", overrides: ["optimizer.name=adam"]).gsnrMomentum == false)
        #expect(try GSNRTests.gsnrJob("enabled = true", overrides: ["optimizer.name=adam"]).gsnrSmoothing == 0.9)
        #expect(try GSNRTests.gsnrJob("enabled = true\neps = 1e-10").gsnr?.epsilon == 1e-10)
        for lines in ["enabled = true\ngroups_per_rank = 4\neps_relative = 1e-6\nsmoothing = 0.5\napply = \"update\"",
                      "enabled = true\neps = 1e-10\nbeta3 = 0.8",
                      "enabled = false\ngroups_per_rank = 2"] {
            for overrides in [[], ["run.noise_scale=true"]] {
                let job = try GSNRTests.gsnrJob(lines, overrides: overrides)
                let again = try Job.parse(job.resolvedTOML, source: "x.toml")
                #expect(again == job, "resolvedTOML:\n\(job.resolvedTOML)")
                #expect(again.resolvedTOML == job.resolvedTOML)
            }
        }
        // run.noise_scale without GSNR: the groups of [gsnr], statistics only.
        let noise = try GSNRTests.gsnrJob("enabled = false\ngroups_per_rank = 2\ngamma = 0.5", overrides: ["run.noise_scale=true"])
        #expect(noise.gsnr == nil && noise.run.noiseScale)
        #expect(noise.gradientGroups?.groupsPerRank == 2 && noise.gradientGroups?.multiplies == false)
        #expect(try JobConfigTests.parse().run.noiseScale == false && JobConfigTests.parse().gradientGroups == nil)
        #expect(noise.resolvedTOML.contains("noise_scale = true"))
        expectUsage(["at least 2 gradient groups", "run.noise_scale"]) {
            try GSNRTests.gsnrJob("groups_per_rank = 1", overrides: ["run.noise_scale=true"]).validate(worldSize: 1, trainSamples: 1000)
        }
        #expect(throws: Never.self) { try noise.validate(worldSize: 1, trainSamples: 1000) }
    }

    @Test func newKeysErrors() {
        expectUsage(["gsnr.apply", "gradient", "update"]) { try GSNRTests.gsnrJob("enabled = true\napply = \"step\"") }
        expectUsage(["gsnr.smoothing"]) { try GSNRTests.gsnrJob("enabled = true\nsmoothing = 1") }
        expectUsage(["gsnr.smoothing", "at least 0"]) { try GSNRTests.gsnrJob("enabled = true\nsmoothing = -0.1") }
        expectUsage(["gsnr", "smoothing", "beta3", "not both"]) { try GSNRTests.gsnrJob("enabled = true\nsmoothing = 0.5\nbeta3 = 0.9") }
        expectUsage(["gsnr", "eps", "eps_relative", "not both"]) { try GSNRTests.gsnrJob("enabled = true\neps = 1e-12\neps_relative = 1e-8") }
        expectUsage(["gsnr.eps_relative", "greater than 0"]) { try GSNRTests.gsnrJob("enabled = true\neps_relative = 0") }
        expectUsage(["gsnr.eps_relative", "at least 0"]) { try GSNRTests.gsnrJob("enabled = true\neps_relative = -1") }
        expectUsage(["run.noise_scale", "true or false"]) { try JobConfigTests.parse(overrides: ["run.noise_scale=1"]) }
        expectUsage(["run.noise_scale", "lbfgs"]) { try JobConfigTests.parse(overrides: ["run.noise_scale=true", "optimizer.name=lbfgs"]) }
    }

    /// The run's first line warns below 8 groups (k = 2, 3 stay allowed), not at 8 or without GSNR.
    @Test func fewGroupsWarning() throws {
        let two = try GSNRTests.gsnrJob("enabled = true\ngroups_per_rank = 2")
        #expect(two.gsnrGroupsWarning(worldSize: 1)?.contains("only 2 gradient groups") == true)
        #expect(two.gsnrGroupsWarning(worldSize: 3)?.contains("only 6") == true)
        #expect(two.gsnrGroupsWarning(worldSize: 4) == nil)
        #expect(try GSNRTests.gsnrJob("groups_per_rank = 2", overrides: ["run.noise_scale=true"]).gsnrGroupsWarning(worldSize: 1) == nil)
    }
}
