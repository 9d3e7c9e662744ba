// Inverted dropout: while training, each value is kept with probability 1 − rate and scaled by
// 1/(1 − rate), or zeroed; in evaluation y = x. The mask of a value depends only on the job seed,
// the step, the sample's position in the step's global batch, the layer and the value's index
// (PassContext), never on the rank or the rank count: 1 or p ranks drop the same values
// (docs/algorithms.md §8.10). The draw is a counter-based hash (SplitMix64's finaliser), so no
// generator state needs checkpointing and resume is bitwise by construction.

public final class Dropout: Layer {
    public let name: String
    public let inputWidth: Int
    public var outputWidth: Int { inputWidth }
    public var parameterSpecs: [ParameterSpec] { [] }
    public let rate: Double
    /// Distinguishes the network's dropout layers in the masks' key.
    public let layerKey: UInt64
    private let pass: PassContext
    /// Whether each value of the last training forward was kept; sized by `reserve`.
    private var kept: UnsafeMutablePointer<Bool>?
    private var capacity = 0
    /// A value is kept when its 64-bit draw is at least this (rate · 2⁶⁴).
    private let threshold: UInt64

    public init(name: String, width: Int, rate: Double, layerKey: UInt64, pass: PassContext) {
        precondition(rate >= 0 && rate < 1, "Dropout \(name): rate \(rate) is outside [0, 1)")
        self.name = name
        inputWidth = width
        self.rate = rate
        self.layerKey = layerKey
        self.pass = pass
        threshold = rate == 0 ? 0 : UInt64(rate * 0x1p64)
    }

    deinit { kept?.deallocate() }

    public func bind(parameters: UnsafeMutablePointer<Float>, gradients: UnsafeMutablePointer<Float>) {}
    public func initialize(_ rng: inout Xoshiro256) {}

    public func reserve(batch: Int) {
        guard batch > capacity else { return }
        kept?.deallocate()
        kept = .allocate(capacity: batch * inputWidth)
        capacity = batch
    }

    /// SplitMix64's finaliser: a well-mixed 64-bit value of `z`.
    @inline(__always) static func mix(_ z: UInt64) -> UInt64 {
        var z = z
        z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
        z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
        return z ^ (z >> 31)
    }

    /// The key of one sample's mask: (seed, step, position in the global batch, layer).
    @inline(__always) func sampleKey(step: Int, sample: Int) -> UInt64 {
        Self.mix(Self.mix(Self.mix(pass.seed ^ 0x44F1_0000_0000_0000 &+ layerKey) ^ UInt64(step)) ^ UInt64(sample))
    }

    public func forward(x: UnsafePointer<Float>, y: UnsafeMutablePointer<Float>, batch: Int, mode: LayerMode) {
        guard mode == .train, rate > 0 else {
            if UnsafePointer(y) != x { y.update(from: x, count: batch * inputWidth) }
            return
        }
        guard let kept else { preconditionFailure("\(name): Network.reserve(batch:) was not called") }
        let scale = Float(1 / (1 - rate))
        for b in 0..<batch {
            let key = sampleKey(step: pass.step, sample: pass.firstSample + b)
            let (v, w, k) = (x + b * inputWidth, y + b * inputWidth, kept + b * inputWidth)
            for i in 0..<inputWidth {
                let keep = Self.mix(key &+ UInt64(i) &* 0x9E37_79B9_7F4A_7C15) >= threshold
                k[i] = keep
                w[i] = keep ? v[i] * scale : 0
            }
        }
    }

    public func backward(x: UnsafePointer<Float>, y: UnsafePointer<Float>, dy: UnsafePointer<Float>,
                         dx: UnsafeMutablePointer<Float>?, batch: Int, accumulate: Bool) {
        guard let dx else { return }
        guard rate > 0, let kept else { dx.update(from: dy, count: batch * inputWidth); return }
        let scale = Float(1 / (1 - rate))
        for i in 0..<(batch * inputWidth) { dx[i] = kept[i] ? dy[i] * scale : 0 }
    }
}

extension Dropout {
    /// `{ type = "dropout", rate = 0.5 }`.
    public struct Kind: LayerKind {
        public static let type = "dropout"
        public var rate: Double

        public init(rate: Double) {
            self.rate = rate
        }

        public init(_ l: TOMLReader, isLast: Bool) throws {
            let rate = try l.double("rate", min: 0)
            guard rate < 1 else {
                throw LockstepError.usage("\(l.prefix).rate: \(rate) drops every value: use a rate in [0, 1), e.g. 0.5")
            }
            self.init(rate: rate)
        }

        public func resolvedKeys(quote: (String) -> String) -> String { "rate = \(rate)" }

        public func build(input: [Int], with builder: LayerBuilder) throws -> (layer: any Layer, output: [Int]) {
            // The layer's key: which top-level entry it is in, and its name there.
            var h = FNV1a64()
            let name = builder.name("dropout")
            Array("\(builder.topLevelIndex)/\(name)".utf8).withUnsafeBytes { h.add($0) }
            let layer = Dropout(name: name, width: input.reduce(1, *), rate: rate, layerKey: h.value, pass: builder.pass)
            return (layer, input)
        }
    }
}
