// Composite and stateful layers behind the Layer protocol: a test-only Sequential container and a
// test-only running-mean layer prove the tree naming ("block0/dense0/weight"), the flat layout,
// forward and backward bitwise equal to the flat network, the state buffer, the train/eval mode,
// and checkpoint round trips of parameters and state.
import Testing
import Lockstep

/// Runs its children in order (what a residual block does, without the skip). Holds the
/// activations between its children and their gradients, sized by `reserve`.
final class Sequential: Layer {
    let name: String
    let children: [any Layer]
    var inputWidth: Int { children[0].inputWidth }
    var outputWidth: Int { children[children.count - 1].outputWidth }
    var parameterSpecs: [ParameterSpec] { [] }
    private var between: [FloatBuffer] = []
    private var gradient: [FloatBuffer] = []

    init(name: String, _ children: [any Layer]) {
        self.name = name
        self.children = children
    }

    func bind(parameters: UnsafeMutablePointer<Float>, gradients: UnsafeMutablePointer<Float>) {}
    func initialize(_ rng: inout Xoshiro256) {}

    func reserve(batch: Int) {
        between = children.dropLast().map { FloatBuffer(count: batch * $0.outputWidth) }
        gradient = children.dropLast().map { FloatBuffer(count: batch * $0.outputWidth) }
    }

    func forward(x: UnsafePointer<Float>, y: UnsafeMutablePointer<Float>, batch: Int, mode: LayerMode) {
        var input = x
        for (i, child) in children.enumerated() {
            let output = i == children.count - 1 ? y : between[i].pointer
            child.forward(x: input, y: output, batch: batch, mode: mode)
            input = UnsafePointer(output)
        }
    }

    func backward(x: UnsafePointer<Float>, y: UnsafePointer<Float>, dy: UnsafePointer<Float>,
                  dx: UnsafeMutablePointer<Float>?, batch: Int, accumulate: Bool) {
        var upstream = dy
        for i in stride(from: children.count - 1, through: 0, by: -1) {
            let input = i == 0 ? x : UnsafePointer(between[i - 1].pointer)
            let output = i == children.count - 1 ? y : UnsafePointer(between[i].pointer)
            let down = i == 0 ? dx : gradient[i - 1].pointer
            children[i].backward(x: input, y: output, dy: upstream, dx: down, batch: batch, accumulate: accumulate)
            if let down { upstream = UnsafePointer(down) }
        }
    }
}

/// y = x while training (and running_mean ← ½ running_mean + ½ batch mean); y = x − running_mean
/// in evaluation. State, no parameters: what BatchNorm's running statistics look like.
final class RunningMean: Layer {
    let name: String
    let inputWidth: Int
    var outputWidth: Int { inputWidth }
    var parameterSpecs: [ParameterSpec] { [] }
    var stateSpecs: [StateSpec] { [StateSpec(name: "running_mean", shape: [inputWidth])] }
    private var mean: UnsafeMutablePointer<Float>!

    init(name: String, width: Int) {
        self.name = name
        inputWidth = width
    }

    func bind(parameters: UnsafeMutablePointer<Float>, gradients: UnsafeMutablePointer<Float>) {}
    func bind(state: UnsafeMutablePointer<Float>) { mean = state }
    func initialize(_ rng: inout Xoshiro256) { mean.update(repeating: 0, count: inputWidth) }

    func forward(x: UnsafePointer<Float>, y: UnsafeMutablePointer<Float>, batch: Int, mode: LayerMode) {
        for j in 0..<inputWidth {
            var sum: Float = 0
            for b in 0..<batch {
                let v = x[b * inputWidth + j]
                y[b * inputWidth + j] = mode == .train ? v : v - mean[j]
                sum += v
            }
            if mode == .train { mean[j] = 0.5 * mean[j] + 0.5 * sum / Float(batch) }
        }
    }

    func backward(x: UnsafePointer<Float>, y: UnsafePointer<Float>, dy: UnsafePointer<Float>,
                  dx: UnsafeMutablePointer<Float>?, batch: Int, accumulate: Bool) {
        dx?.update(from: dy, count: batch * inputWidth)
    }
}

extension FileTests {
    @Suite struct CompositeLayerTests {
        /// dense(5, relu) → dense(3) → dense(2), flat as a job builds it.
        static func flat() -> Network {
            Network(inputWidth: 4, layers: [LayerSpec(units: 5, activation: .relu), LayerSpec(units: 3, activation: .identity),
                                            LayerSpec(units: 2, activation: .identity)])
        }

        /// The same layers with the first three inside a composite "block0".
        static func composite() -> Network {
            let block = Sequential(name: "block0", [Dense(name: "dense0", inputs: 4, outputs: 5, initialization: .he),
                                                     ReLU(name: "relu0", width: 5),
                                                     Dense(name: "dense1", inputs: 5, outputs: 3, initialization: .glorot)])
            return Network(inputShape: [4], layers: [block, Dense(name: "dense0", inputs: 3, outputs: 2, initialization: .glorot)])
        }

        /// block0 = [dense0 (4 → 3), stat0 (running mean)], then dense0 (3 → 2).
        static func stateful() -> Network {
            let block = Sequential(name: "block0", [Dense(name: "dense0", inputs: 4, outputs: 3, initialization: .glorot),
                                                     RunningMean(name: "stat0", width: 3)])
            return Network(inputShape: [4], layers: [block, Dense(name: "dense0", inputs: 3, outputs: 2, initialization: .glorot)])
        }

        @Test func childrenAreNamedUnderTheirParentAndLaidOutLikeTheFlatNetwork() {
            let flat = Self.flat(), tree = Self.composite()
            #expect(tree.views.map(\.path) == ["block0/dense0/weight", "block0/dense0/bias", "block0/dense1/weight",
                                               "block0/dense1/bias", "dense0/weight", "dense0/bias"])
            #expect(tree.views.map(\.offset) == flat.views.map(\.offset))
            #expect(tree.views.map(\.spec) == flat.views.map(\.spec))
            #expect(tree.views.map(\.topLayer) == [0, 0, 0, 0, 1, 1])
            #expect(flat.views.map(\.topLayer) == [0, 0, 2, 2, 3, 3])
            #expect(tree.parameterCount == flat.parameterCount)
            #expect(tree.layers.count == 2 && tree.classes == 2)
            #expect(tree.stateCount == 0 && tree.stateViews.isEmpty && flat.stateCount == 0)
        }

        @Test func forwardAndBackwardAreBitwiseTheFlatNetworks() {
            let flat = Self.flat(), tree = Self.composite()
            flat.initialize(seed: 5)
            tree.parameters.copy(from: flat.parameters.array)
            let rows = 6
            var rng = Xoshiro256(seed: 6)
            let x = uniformFloats(rows * 4, -1, 1, rng: &rng)
            let dlogits = uniformFloats(rows * 2, -1, 1, rng: &rng)
            for network in [flat, tree] { network.reserve(batch: rows) }
            for accumulate in [false, true] {
                var logits: [[UInt32]] = [], gradients: [[UInt32]] = []
                for network in [flat, tree] {
                    x.withUnsafeBufferPointer { input in
                        let out = network.forward(input.baseAddress!, batch: rows)
                        logits.append((0..<(rows * 2)).map { out[$0].bitPattern })
                        dlogits.withUnsafeBufferPointer {
                            network.backward(input.baseAddress!, dlogits: $0.baseAddress!, batch: rows, accumulate: accumulate)
                        }
                    }
                    gradients.append(network.gradients.array.map(\.bitPattern))
                }
                #expect(logits[0] == logits[1])
                #expect(gradients[0] == gradients[1])
                #expect(gradients[1].contains { $0 != 0 })
            }
        }

        @Test func initializationDrawsChildrenFromTheirTopLevelStream() {
            // One stream per top-level layer: block0's children draw from stream 0 in order, and the
            // top-level dense0 after it gets stream 1, whatever the block holds.
            let tree = Self.composite(), other = Self.composite()
            tree.initialize(seed: 9)
            other.initialize(seed: 9)
            #expect(tree.parameters.array.map(\.bitPattern) == other.parameters.array.map(\.bitPattern))
            let single = Network(inputShape: [3], layers: [Dense(name: "a", inputs: 3, outputs: 3, initialization: .he),
                                                           Dense(name: "dense0", inputs: 3, outputs: 2, initialization: .glorot)])
            single.initialize(seed: 9)
            let last = tree.views[4], lastSingle = single.views[2]
            #expect(Array(tree.parameters.slice(last.offset, last.count)).map(\.bitPattern)
                    == Array(single.parameters.slice(lastSingle.offset, lastSingle.count)).map(\.bitPattern))
        }

        @Test func stateIsLaidOutNamedAndModeAware() {
            let network = Self.stateful()
            network.initialize(seed: 3)
            #expect(network.stateViews.map(\.path) == ["block0/stat0/running_mean"])
            #expect(network.stateCount == 3 && network.state.array == [0, 0, 0])
            #expect(network.views.map(\.path) == ["block0/dense0/weight", "block0/dense0/bias", "dense0/weight", "dense0/bias"])
            let rows = 4
            network.reserve(batch: rows)
            var rng = Xoshiro256(seed: 4)
            let x = uniformFloats(rows * 4, -1, 1, rng: &rng)
            let before = network.parameterChecksum
            let evalBefore = x.withUnsafeBufferPointer { Array(UnsafeBufferPointer(start: network.forward($0.baseAddress!, batch: rows, mode: .eval), count: rows * 2)) }
            #expect(network.state.array == [0, 0, 0], "evaluation leaves the state alone")
            let train = x.withUnsafeBufferPointer { Array(UnsafeBufferPointer(start: network.forward($0.baseAddress!, batch: rows), count: rows * 2)) }
            #expect(train == evalBefore, "with a zero running mean both modes agree")
            #expect(network.state.array.contains { $0 != 0 }, "a training forward updates the state")
            #expect(network.parameterChecksum != before, "the checksum the ranks compare covers the state")
            let evalAfter = x.withUnsafeBufferPointer { Array(UnsafeBufferPointer(start: network.forward($0.baseAddress!, batch: rows, mode: .eval), count: rows * 2)) }
            #expect(evalAfter != train, "evaluation uses the running mean")
        }

        @Test func checksumOfAStatelessNetworkIsItsParameters() {
            let network = Self.composite()
            network.initialize(seed: 1)
            var h = FNV1a64()
            h.add(UnsafeBufferPointer(network.parameters.buffer))
            #expect(network.parameterChecksum == h.value)
        }

        /// A stateful composite network after a training forward and one momentum step.
        static func trained() -> (Network, SGD) {
            let network = Self.stateful()
            network.initialize(seed: 21)
            network.reserve(batch: 2)
            var rng = Xoshiro256(seed: 22)
            let x = uniformFloats(2 * 4, -1, 1, rng: &rng)
            x.withUnsafeBufferPointer { _ = network.forward($0.baseAddress!, batch: 2) }
            var settings = SGDSettings()
            settings.momentum = 0.9
            let sgd = SGD(views: network.views, parameterCount: network.parameterCount, settings: settings)
            network.gradients.copy(from: uniformFloats(network.parameterCount, -1, 1, rng: &rng))
            sgd.step(parameters: network.parameters.pointer, gradients: network.gradients.pointer, lr: 0.1)
            return (network, sgd)
        }

        @Test func checkpointsRoundTripParametersAndState() throws {
            let dir = try TemporaryDirectory()
            let (network, sgd) = Self.trained()
            #expect(network.state.array.contains { $0 != 0 })
            let path = dir.file(Checkpoint.fileName(step: 42))
            try CheckpointTests.write(network, sgd, to: path)
            let contents = try Checkpoint.read(path, network: network)
            #expect(contents.parameters.map(\.bitPattern) == network.parameters.array.map(\.bitPattern))
            #expect(contents.layerState.map(\.bitPattern) == network.state.array.map(\.bitPattern))
            #expect(contents.state["momentum"]?.map(\.bitPattern) == sgd.stateBuffers[0].buffer.array.map(\.bitPattern))

            // State sits next to the parameters under the same naming; the optimizer never sees it.
            let file = try HDF5File.open(path)
            #expect(try file.info("/model/block0/dense0/weight").shape == [3, 4])
            #expect(try file.info("/model/block0/stat0/running_mean").shape == [3])
            #expect(try file.info("/optimizer/momentum/block0/dense0/bias").shape == [3])
            #expect(!file.exists("/optimizer/momentum/block0/stat0/running_mean"))

            // Into a fresh network of the same architecture: everything comes back bitwise.
            let fresh = Self.stateful()
            let restored = try Checkpoint.read(path, network: fresh)
            fresh.parameters.copy(from: restored.parameters)
            fresh.state.copy(from: restored.layerState)
            #expect(fresh.parameterChecksum == network.parameterChecksum)

            // Another architecture cannot read it as its own.
            expectUsage(["/model/block0/dense0/weight", "different model"]) {
                try Checkpoint.read(path, network: Self.composite())
            }
        }

        @Test func flippedStateBitIsCaughtByChecksum() throws {
            let dir = try TemporaryDirectory()
            let (network, sgd) = Self.trained()
            let path = dir.file("c.h5")
            try CheckpointTests.write(network, sgd, to: path)
            var bytes = try readBytes(path)
            let needle = network.state.array.flatMap { v in withUnsafeBytes(of: v.bitPattern.littleEndian) { Array($0) } }
            let at = try #require((0...(bytes.count - needle.count)).first { bytes[$0..<($0 + needle.count)].elementsEqual(needle) })
            bytes[at] ^= 1
            try writeBytes(bytes, to: path)
            expectUsage([path, "checksum"]) { try Checkpoint.read(path, network: network) }
        }
    }
}
