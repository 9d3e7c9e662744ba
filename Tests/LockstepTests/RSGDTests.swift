// R-SGD (docs/algorithms.md §6): updates against a Float64 reference that replays the same draws;
// keep probability forced to 0 is plain SGD and forced to 1 the running sum; p(t) and its clocks.

import Lockstep
import Testing
#if canImport(Glibc)
import Glibc
#endif

struct RSGDTests {
    /// A 4 → 3 → 2 network's layout (weights and biases), with random parameters.
    static func network() -> Network {
        let network = Network(inputWidth: 4, layers: [LayerSpec(units: 3, activation: .relu), LayerSpec(units: 2, activation: .identity)])
        network.initialize(seed: 5)
        var rng = Xoshiro256(seed: 77)
        for i in 0..<network.parameterCount where i % 5 == 0 { network.parameters.pointer[i] = Float(rng.nextUnit() - 0.5) }
        return network
    }

    static func gradients(_ n: Int, step: Int) -> [Float] {
        var rng = Xoshiro256(seed: 1000 + UInt64(step))
        return (0..<n).map { _ in Float(rng.nextUnit() * 2 - 1) }
    }

    /// Float64 reference: replays update t's draws from `RSGD.generator` with the documented rule
    /// (keep when the top 53 bits of a draw, as an integer, fall below p·2^53).
    static func reference(_ network: Network, settings: RSGDSettings, seed: UInt64, steps: Int, lr: Double) -> [Double] {
        var w = (0..<network.parameterCount).map { Double(network.parameters.pointer[$0]) }
        var h = [Double](repeating: 0, count: w.count)
        for t in 1...steps {
            let g = gradients(w.count, step: t).map(Double.init)
            let p = min(1 - settings.p0 * pow(settings.gamma, Double(t)), settings.pMax)
            let threshold = p >= 1 ? UInt64.max : p <= 0 ? 0 : UInt64(p * 0x1.0p53)
            var rng = RSGD.generator(seed: seed, update: t)
            func draw() -> Bool { rng.next() >> 11 < threshold || p >= 1 }
            let global = settings.draw == .global ? draw() : false
            for view in network.views {
                let decay = view.spec.isWeight || settings.decayBiases ? settings.weightDecay : 0
                let layerKeep = settings.draw == .layer ? draw() : global
                for j in view.offset..<(view.offset + view.count) {
                    let keep = settings.draw == .element ? draw() : layerKeep
                    let gj = g[j] + decay * w[j], step = gj + (keep ? h[j] : 0)
                    h[j] = settings.memory == .previous ? gj : step
                    w[j] -= lr * step
                }
            }
        }
        return w
    }

    static func run(_ network: Network, _ optimizer: any Optimizer, steps: Int, lr: Float) {
        for t in 1...steps {
            var g = gradients(network.parameterCount, step: t)
            g.withUnsafeMutableBufferPointer {
                optimizer.step(parameters: network.parameters.pointer, gradients: $0.baseAddress!, lr: lr)
            }
        }
    }

    @Test(arguments: RSGDSettings.Draw.allCases, RSGDSettings.Memory.allCases)
    func updatesMatchAReferenceReplayingTheDraws(_ draw: RSGDSettings.Draw, _ memory: RSGDSettings.Memory) {
        var settings = RSGDSettings()
        settings.draw = draw
        settings.memory = memory
        settings.p0 = 0.8
        settings.gamma = 0.7          // p(t) = 0.44, 0.608, 0.7256, …: both outcomes occur
        settings.weightDecay = 0.01
        let network = Self.network()
        let want = Self.reference(network, settings: settings, seed: 9, steps: 6, lr: 0.05)
        let rsgd = RSGD(views: network.views, parameterCount: network.parameterCount, settings: settings, seed: 9, stepsPerEpoch: 1)
        Self.run(network, rsgd, steps: 6, lr: 0.05)
        #expect(rsgd.updates == 6)
        for j in 0..<network.parameterCount {
            // Float32 arithmetic against Float64 over 6 steps of size ≤ ~1: 1e-5 absolute.
            #expect(abs(Double(network.parameters.pointer[j]) - want[j]) <= 1e-5, "element \(j)")
        }
    }

    /// Different draws really happen: element mode keeps some memories and restarts others.
    @Test func elementDrawsDiffer() {
        var settings = RSGDSettings()
        settings.p0 = 1
        settings.gamma = 0.5          // p(1) = 0.5
        let network = Self.network()
        let rsgd = RSGD(views: network.views, parameterCount: network.parameterCount, settings: settings, seed: 3, stepsPerEpoch: 1)
        Self.run(network, rsgd, steps: 2, lr: 0.1)
        let g1 = Self.gradients(network.parameterCount, step: 1), g2 = Self.gradients(network.parameterCount, step: 2)
        let h = rsgd.stateBuffers[0].buffer.array
        let kept = (0..<h.count).filter { h[$0] == g2[$0] + g1[$0] }.count
        let restarted = (0..<h.count).filter { h[$0] == g2[$0] }.count
        #expect(kept + restarted == h.count)
        #expect(kept > 0 && restarted > 0, "kept \(kept), restarted \(restarted)")
    }

    /// Keep probability forced to 0 (p0 = 1, γ = 1): exactly plain SGD, bitwise.
    @Test func keepNeverIsPlainSGD() {
        var settings = RSGDSettings()
        settings.p0 = 1
        settings.gamma = 1
        settings.weightDecay = 0.01
        let a = Self.network(), b = Self.network()
        Self.run(a, RSGD(views: a.views, parameterCount: a.parameterCount, settings: settings, seed: 1, stepsPerEpoch: 1), steps: 5, lr: 0.1)
        var sgd = SGDSettings()
        sgd.weightDecay = 0.01
        Self.run(b, SGD(views: b.views, parameterCount: b.parameterCount, settings: sgd), steps: 5, lr: 0.1)
        #expect(a.parameters.array.map(\.bitPattern) == b.parameters.array.map(\.bitPattern))
    }

    /// Keep probability forced to 1 (p0 = 0): h is the plain running sum of the gradients.
    @Test(arguments: RSGDSettings.Draw.allCases)
    func keepAlwaysIsTheRunningSum(_ draw: RSGDSettings.Draw) {
        var settings = RSGDSettings()
        settings.p0 = 0
        settings.draw = draw
        let network = Self.network()
        var w = network.parameters.array
        var sum = [Float](repeating: 0, count: w.count)
        let rsgd = RSGD(views: network.views, parameterCount: network.parameterCount, settings: settings, seed: 1, stepsPerEpoch: 1)
        Self.run(network, rsgd, steps: 4, lr: 0.1)
        for t in 1...4 {
            let g = Self.gradients(w.count, step: t)
            for j in w.indices {
                sum[j] = g[j] + sum[j]
                w[j] -= 0.1 * sum[j]
            }
        }
        #expect(rsgd.stateBuffers[0].buffer.array == sum)
        #expect(network.parameters.array == w)
    }

    @Test func keepProbabilityFollowsItsFormulaAndClocks() {
        var settings = RSGDSettings()
        settings.p0 = 0.9
        settings.gamma = 0.99
        settings.pMax = 0.5
        let network = Self.network()
        let byStep = RSGD(views: network.views, parameterCount: network.parameterCount, settings: settings, seed: 1, stepsPerEpoch: 10)
        #expect(abs(byStep.keepProbability(update: 1) - (1 - 0.9 * 0.99)) < 1e-15)
        #expect(byStep.keepProbability(update: 1000) == 0.5)          // capped
        settings.clock = .epoch
        settings.pMax = 1
        let byEpoch = RSGD(views: network.views, parameterCount: network.parameterCount, settings: settings, seed: 1, stepsPerEpoch: 10)
        // Updates 1…10 are epoch 1, 11…20 epoch 2.
        #expect(byEpoch.keepProbability(update: 1) == byEpoch.keepProbability(update: 10))
        #expect(abs(byEpoch.keepProbability(update: 11) - (1 - 0.9 * 0.99 * 0.99)) < 1e-15)
    }

    /// memory = "previous" with every draw kept: each step is g_t + g_{t−1}, never a longer sum.
    @Test func previousMemoryAddsOnlyTheLastGradient() {
        var settings = RSGDSettings()
        settings.p0 = 0
        settings.memory = .previous
        let network = Self.network()
        var w = network.parameters.array
        let rsgd = RSGD(views: network.views, parameterCount: network.parameterCount, settings: settings, seed: 1, stepsPerEpoch: 1)
        Self.run(network, rsgd, steps: 4, lr: 0.1)
        var previous = [Float](repeating: 0, count: w.count)
        for t in 1...4 {
            let g = Self.gradients(w.count, step: t)
            for j in w.indices { w[j] -= 0.1 * (g[j] + previous[j]) }
            previous = g
        }
        #expect(rsgd.stateBuffers[0].buffer.array == previous)
        #expect(network.parameters.array == w)
    }

    /// The epoch clock counts steps of batch.global, which an increasing schedule changes.
    @Test func epochClockWithAnIncreasingBatchIsAUsageError() {
        let job = """
        [data]
        file = "d.h5"
        [model]
        layers = [{ units = 4 }, { units = 3 }]
        [batch]
        global = 8
        schedule = "increasing"
        growth = 2
        every_epochs = 1
        [optimizer]
        name = "rsgd"
        lr = 0.1
        clock = "epoch"
        """
        expectUsage(["optimizer.clock = \"epoch\"", "increasing", "optimizer.clock = \"step\""]) { _ = try Job.parse(job, source: "j.toml") }
        #expect(throws: Never.self) { _ = try Job.parse(job.replacingOccurrences(of: "clock = \"epoch\"", with: "clock = \"step\""), source: "j.toml") }
    }

    @Test func jobKeys() throws {
        let base = """
        [data]
        file = "d.h5"
        [model]
        layers = [{ units = 4 }, { units = 3 }]
        [batch]
        global = 8
        [optimizer]
        name = "rsgd"
        lr = 0.1

        """
        let job = try Job.parse(base + "p0 = 0.5\ngamma = 0.9\ndraw = \"layer\"\nclock = \"epoch\"\np_max = 0.95", source: "j.toml")
        #expect(job.optimizer.rsgd.p0 == 0.5 && job.optimizer.rsgd.gamma == 0.9 && job.optimizer.rsgd.pMax == 0.95)
        #expect(job.optimizer.rsgd.draw == .layer && job.optimizer.rsgd.clock == .epoch)
        #expect(try Job.parse(job.resolvedTOML, source: "x.toml") == job)
        #expect(throws: LockstepError.self) { try Job.parse(base + "momentum = 0.9", source: "j.toml") }
        #expect(throws: LockstepError.self) { try Job.parse(base + "draw = \"pixel\"", source: "j.toml") }
    }
}
