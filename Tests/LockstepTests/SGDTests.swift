// SGD: plain, heavy ball, Nesterov, NSHB and weight decay, step by step against a hand-computed Float64 reference.
import Testing
import Lockstep

@Suite struct SGDTests {
    /// A dense 3 → 2 layer: views dense0/weight [2, 3] (isWeight) at 0 and dense0/bias [2] at 6.
    static func layout() -> Network { Network(inputWidth: 3, layers: [LayerSpec(units: 2, activation: .identity)]) }

    static func settings(momentum: Double = 0, nesterov: Bool = false, weightDecay: Double = 0, decayBiases: Bool = false,
                         normalized: Bool = false) -> SGDSettings {
        var s = SGDSettings()
        s.normalized = normalized
        s.momentum = momentum
        s.nesterov = nesterov
        s.weightDecay = weightDecay
        s.decayBiases = decayBiases
        return s
    }

    struct Case: CustomTestStringConvertible, Sendable {
        let label: String
        let settings: SGDSettings
        var testDescription: String { label }
    }

    static let cases: [Case] = [
        Case(label: "plain", settings: settings()),
        Case(label: "plain + weight decay", settings: settings(weightDecay: 0.05)),
        Case(label: "heavy ball", settings: settings(momentum: 0.9)),
        Case(label: "nesterov", settings: settings(momentum: 0.9, nesterov: true)),
        Case(label: "heavy ball + weight decay", settings: settings(momentum: 0.8, weightDecay: 0.05)),
        Case(label: "nesterov + decay on biases", settings: settings(momentum: 0.7, nesterov: true, weightDecay: 0.05, decayBiases: true)),
        Case(label: "normalized heavy ball (NSHB)", settings: settings(momentum: 0.9, normalized: true)),
        Case(label: "NSHB + weight decay", settings: settings(momentum: 0.8, weightDecay: 0.05, normalized: true)),
    ]

    @Test(arguments: cases)
    func stepsMatchReference(_ c: Case) throws {
        let network = Self.layout()
        #expect(network.views.map(\.spec.isWeight) == [true, false])
        var rng = Xoshiro256(seed: 4)
        let w0 = uniformFloats(network.parameterCount, -1, 1, rng: &rng)
        network.parameters.copy(from: w0)
        let sgd = SGD(views: network.views, parameterCount: network.parameterCount, settings: c.settings)
        var reference = ReferenceSGD(c.settings, views: network.views, count: network.parameterCount)
        var w = w0.map(Double.init)
        // The rate changes between steps: momentum stores u (no η), so no correction is expected.
        for lr in [0.1, 0.05, 0.4, 0.2] as [Double] {
            let g = uniformFloats(network.parameterCount, -1, 1, rng: &rng)
            network.gradients.copy(from: g)
            sgd.step(parameters: network.parameters.pointer, gradients: network.gradients.pointer, lr: Float(lr))
            reference.step(&w, g.map(Double.init), lr: lr)
            // Float32 arithmetic over four steps of O(1) values: 1e-6 absolute + 1e-5 relative.
            for (got, want) in zip(network.parameters.array, w) {
                #expect(isClose(Double(got), want, abs: 1e-6, rel: 1e-5), "w \(got) vs \(want) at lr \(lr)")
            }
            #expect(network.gradients.array == g, "the optimizer must not modify the gradients")
        }
        #expect(sgd.updates == 4)
        if c.settings.momentum > 0 {
            let state = try #require(sgd.stateBuffers.first)
            #expect(sgd.stateBuffers.count == 1 && state.name == "momentum")
            #expect(state.buffer.count == network.parameterCount)
            for (got, want) in zip(state.buffer.array, reference.u) {
                #expect(isClose(Double(got), want, abs: 1e-6, rel: 1e-5), "u \(got) vs \(want)")
            }
        } else {
            #expect(sgd.stateBuffers.isEmpty)
        }
    }

    @Test func momentumCarriesNoLearningRate() {
        // Two steps, g1 then g2 = 0, at η1 = 0.1 then η2 = 0.3: heavy ball moves w by η2·m·g1 in step 2.
        // A variant storing v = η·u without correction would move it by m·η1·g1 instead.
        let network = Self.layout()
        network.parameters.fill(0)
        let sgd = SGD(views: network.views, parameterCount: network.parameterCount, settings: Self.settings(momentum: 0.5))
        network.gradients.fill(1)
        sgd.step(parameters: network.parameters.pointer, gradients: network.gradients.pointer, lr: 0.1)
        #expect(network.parameters.array.allSatisfy { isClose(Double($0), -0.1, abs: 1e-7, rel: 0) })
        network.gradients.fill(0)
        sgd.step(parameters: network.parameters.pointer, gradients: network.gradients.pointer, lr: 0.3)
        // −0.1 − 0.3·0.5·1 = −0.25 (the wrong, η-carrying variant gives −0.15).
        #expect(network.parameters.array.allSatisfy { isClose(Double($0), -0.25, abs: 1e-6, rel: 0) })
        #expect(sgd.stateBuffers[0].buffer.array.allSatisfy { isClose(Double($0), 0.5, abs: 1e-7, rel: 0) })
    }

    @Test func weightDecaySkipsBiasesUnlessAsked() {
        for decayBiases in [false, true] {
            let network = Self.layout()
            network.parameters.fill(2)
            network.gradients.fill(0)
            let sgd = SGD(views: network.views, parameterCount: network.parameterCount,
                          settings: Self.settings(weightDecay: 0.1, decayBiases: decayBiases))
            sgd.step(parameters: network.parameters.pointer, gradients: network.gradients.pointer, lr: 0.5)
            let w = network.parameters.array
            // Weights: 2 − 0.5·0.1·2 = 1.9. Biases: unchanged unless decayBiases.
            #expect(w[0..<6].allSatisfy { isClose(Double($0), 1.9, abs: 1e-6, rel: 0) })
            #expect(w[6..<8].allSatisfy { decayBiases ? isClose(Double($0), 1.9, abs: 1e-6, rel: 0) : $0 == 2 })
        }
    }

    @Test func stateBuffersOnlyWithMomentum() {
        let network = Self.layout()
        #expect(SGD(views: network.views, parameterCount: network.parameterCount, settings: Self.settings()).stateBuffers.isEmpty)
        #expect(SGD(views: network.views, parameterCount: network.parameterCount, settings: Self.settings(weightDecay: 0.1)).stateBuffers.isEmpty)
        let withMomentum = SGD(views: network.views, parameterCount: network.parameterCount, settings: Self.settings(momentum: 0.9))
        #expect(withMomentum.stateBuffers.map(\.name) == ["momentum"])
        #expect(withMomentum.stateBuffers[0].buffer.array.allSatisfy { $0 == 0 })
    }
}
