// Adam, AdamW, LARS and LAMB: several steps against hand-computed Float64 references (docs/algorithms.md §3).
import Testing
import Lockstep
#if canImport(Glibc)
import Glibc
#endif

@Suite struct AdaptiveOptimizerTests {
    /// dense 4 → 3 → 2: four tensors, weights and biases alternating.
    static func network() -> Network {
        Network(inputWidth: 4, layers: [LayerSpec(units: 3, activation: .relu), LayerSpec(units: 2, activation: .identity)])
    }

    /// Runs `optimizer` and `reference` side by side for four steps at changing rates and compares
    /// parameters after each (Float32 vs Float64 over a few O(1) steps: 2e-6 absolute + 2e-5 relative).
    static func compare(_ network: Network, _ optimizer: any Optimizer,
                        _ reference: (_ w: inout [Double], _ g: [Double], _ lr: Double, _ t: Int) -> Void) {
        var rng = Xoshiro256(seed: 21)
        let w0 = uniformFloats(network.parameterCount, -1, 1, rng: &rng)
        network.parameters.copy(from: w0)
        var w = w0.map(Double.init)
        for (t, lr) in [0.01, 0.02, 0.005, 0.01].enumerated() {
            let g = uniformFloats(network.parameterCount, -1, 1, rng: &rng)
            network.gradients.copy(from: g)
            optimizer.step(parameters: network.parameters.pointer, gradients: network.gradients.pointer, lr: Float(lr))
            reference(&w, g.map(Double.init), lr, t + 1)
            for (got, want) in zip(network.parameters.array, w) {
                #expect(isClose(Double(got), want, abs: 2e-6, rel: 2e-5), "step \(t + 1): \(got) vs \(want)")
            }
        }
        #expect(optimizer.updates == 4)
    }

    @Test(arguments: [false, true])
    func adamMatchesReference(decoupled: Bool) {
        let network = Self.network()
        var s = AdamSettings()
        s.beta1 = 0.8; s.beta2 = 0.95; s.epsilon = 1e-6; s.weightDecay = 0.1; s.decoupled = decoupled
        let adam = Adam(views: network.views, parameterCount: network.parameterCount, settings: s)
        #expect(adam.stateBuffers.map(\.name) == ["m", "v"])
        var reference = ReferenceAdam(s, views: network.views, count: network.parameterCount)
        Self.compare(network, adam) { w, g, lr, _ in reference.step(&w, g, lr: lr) }
        for (got, want) in zip(adam.stateBuffers[0].buffer.array, reference.m) { #expect(isClose(Double(got), want, abs: 1e-6, rel: 1e-5)) }
        for (got, want) in zip(adam.stateBuffers[1].buffer.array, reference.v) { #expect(isClose(Double(got), want, abs: 1e-6, rel: 1e-5)) }
    }

    @Test func adamFirstStepIsSignTimesRate() {
        // With bias correction m̂ = g and v̂ = g² at step 1, so every element moves by η·g/(|g| + ε) ≈ η·sign(g).
        let network = Self.network()
        let adam = Adam(views: network.views, parameterCount: network.parameterCount, settings: AdamSettings())
        network.parameters.fill(0)
        var rng = Xoshiro256(seed: 5)
        network.gradients.copy(from: uniformFloats(network.parameterCount, 0.1, 1, rng: &rng).map { rng.next(below: 2) == 0 ? $0 : -$0 })
        let g = network.gradients.array
        adam.step(parameters: network.parameters.pointer, gradients: network.gradients.pointer, lr: 0.01)
        for (w, gi) in zip(network.parameters.array, g) { #expect(isClose(Double(w), gi > 0 ? -0.01 : 0.01, abs: 1e-8, rel: 1e-5)) }
    }

    @Test(arguments: [false, true])
    func larsMatchesReference(trustBiases: Bool) {
        let network = Self.network()
        var s = LARSSettings()
        s.momentum = 0.9; s.trustCoefficient = 0.02; s.weightDecay = 0.01; s.trustBiases = trustBiases
        let lars = LARS(views: network.views, parameterCount: network.parameterCount, settings: s)
        #expect(lars.stateBuffers.map(\.name) == ["momentum"])
        var reference = ReferenceLARS(s, views: network.views, count: network.parameterCount)
        Self.compare(network, lars) { w, g, lr, _ in reference.step(&w, g, lr: lr) }
        #expect(lars.trustRatioNames == network.views.map(\.path))
        for (got, want) in zip(lars.trustRatios, reference.trust) { #expect(isClose(got, want, abs: 1e-9, rel: 1e-5)) }
        if !trustBiases { #expect(lars.trustRatios[1] == 1 && lars.trustRatios[3] == 1, "biases get trust 1 by default") }
    }

    @Test(arguments: [false, true])
    func lambMatchesReference(trustBiases: Bool) {
        let network = Self.network()
        var s = LAMBSettings()
        s.beta1 = 0.9; s.beta2 = 0.99; s.epsilon = 1e-6; s.weightDecay = 0.05; s.trustBiases = trustBiases
        let lamb = LAMB(views: network.views, parameterCount: network.parameterCount, settings: s)
        #expect(lamb.stateBuffers.map(\.name) == ["m", "v"])
        var reference = ReferenceLAMB(s, views: network.views, count: network.parameterCount)
        Self.compare(network, lamb) { w, g, lr, _ in reference.step(&w, g, lr: lr) }
        for (got, want) in zip(lamb.trustRatios, reference.trust) { #expect(isClose(got, want, abs: 1e-9, rel: 1e-5)) }
    }

    @Test func trustRatioIsOneWhenANormIsZero() {
        // docs/algorithms.md §3.3: trust is 1 when τ‖w‖ or ‖g‖ + λ‖w‖ is 0 (here: zero weights).
        let network = Self.network()
        network.parameters.fill(0)
        var rng = Xoshiro256(seed: 2)
        network.gradients.copy(from: uniformFloats(network.parameterCount, -1, 1, rng: &rng))
        var s = LARSSettings()
        s.momentum = 0
        let lars = LARS(views: network.views, parameterCount: network.parameterCount, settings: s)
        let g = network.gradients.array
        lars.step(parameters: network.parameters.pointer, gradients: network.gradients.pointer, lr: 0.1)
        #expect(lars.trustRatios.allSatisfy { $0 == 1 })
        for (w, gi) in zip(network.parameters.array, g) { #expect(isClose(Double(w), -0.1 * Double(gi), abs: 1e-7, rel: 1e-6)) }
        #expect(Norms.ratio(0, 3) == 1 && Norms.ratio(3, 0) == 1 && Norms.ratio(3, 2) == 1.5)
        let x: [Float] = [3, 4]
        #expect(Norms.l2(x, 2) == 5)
    }
}
