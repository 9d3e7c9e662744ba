// Batch normalisation (Ioffe & Szegedy), per channel of an image or per feature of a flat sample:
//
//   y = γ · (x − μ) / √(σ² + ε) + β      (then ReLU when `activation = "relu"`, fused: no extra pass)
//
// μ and σ² (biased) are the statistics of a group of samples while training, the running ones in
// evaluation. Which samples form a group is the `stats` key (docs/algorithms.md §8.9):
//
//   group    consecutive `group` samples of the global batch ("ghost" BatchNorm, Goyal et al.'s
//            n = 32). Every rank's share is a whole number of groups, so 1 or p ranks normalise
//            exactly the same groups: rank-count invariant.
//   global   the whole global batch (synchronised BatchNorm): per-channel sums travel in one
//            allreduce in forward and one in backward per layer and pass.
//   local    each rank's pass (what PyTorch DDP does): depends on the rank count.
//
// Running statistics move once per step, from every group of the global batch: each group adds
// [1, μ_g, unbiased σ²_g] to the layer's batch statistics, which ride in the step's one
// allreduce; `commitStatistics` then sets running ← (1 − m)·running + m·(mean over the groups),
// PyTorch's momentum convention. With one group per step that is exactly PyTorch's update.
//
// Backward, per group and channel over its n values (x̂ = (x − μ)/√(σ² + ε), d = dL/d(γx̂ + β)):
//   dβ += Σ d,  dγ += Σ d·x̂,  dx = γ/√(σ² + ε) · (d − Σd/n − x̂·Σ(d·x̂)/n).
// The group sums are in Float64, so a group's μ and σ² do not depend on how long it is.

#if canImport(Glibc)
import Glibc
#endif

public final class BatchNorm: Layer {
    /// Which samples share statistics while training.
    public enum Statistics: String, CaseIterable, Sendable { case group, global, local }

    public let name: String
    /// Channels (or features) normalised, and values per channel per sample (H·W; 1 for features).
    public let channels: Int
    public let plane: Int
    public let statistics: Statistics
    /// Samples per group with `statistics == .group`.
    public let group: Int
    public let eps: Float
    public let momentum: Float
    /// Whether a ReLU follows, fused into the pass.
    public let relu: Bool
    /// γ starts at 0 (the last BatchNorm of a residual block, so the block starts as its shortcut).
    public let zeroInit: Bool
    public var inputWidth: Int { channels * plane }
    public var outputWidth: Int { channels * plane }
    private let communicator: Communicator?

    private var gamma: UnsafeMutablePointer<Float>!
    private var beta: UnsafeMutablePointer<Float>!
    private var gammaGrad: UnsafeMutablePointer<Float>!
    private var betaGrad: UnsafeMutablePointer<Float>!
    private var runningMean: UnsafeMutablePointer<Float>!
    private var runningVar: UnsafeMutablePointer<Float>!
    /// [groups seen, Σ μ_g (C), Σ σ²_g unbiased (C)] of this rank's passes in the current step.
    private var batchStatistics: UnsafeMutablePointer<Float>!
    /// μ and 1/√(σ² + ε) of each group and channel of the last training forward, [group][channel].
    private var means: FloatBuffer?
    private var inverseDeviations: FloatBuffer?
    /// The cross-rank sums of `global` statistics: [count, Σ, Σ²] per channel in forward, [Σd, Σd·x̂] in backward.
    private let sums: UnsafeMutablePointer<Double>
    /// Whether the last forward was a training one (backward needs its group statistics).
    private var trainedForward = false

    public init(name: String, channels: Int, plane: Int, statistics: Statistics = .group, group: Int = 32,
                eps: Float = 1e-5, momentum: Float = 0.1, relu: Bool = false, zeroInit: Bool = false,
                communicator: Communicator? = nil) {
        precondition(channels >= 1 && plane >= 1 && group >= 1, "BatchNorm \(name): \(channels) channels of \(plane)")
        self.name = name
        self.channels = channels
        self.plane = plane
        self.statistics = statistics
        self.group = group
        self.eps = eps
        self.momentum = momentum
        self.relu = relu
        self.zeroInit = zeroInit
        self.communicator = communicator
        sums = .allocate(capacity: 3 * channels + 1)
    }

    deinit { sums.deallocate() }

    /// γ and β: not weights, so no weight decay or trust ratio by default (as biases).
    public var parameterSpecs: [ParameterSpec] {
        [ParameterSpec(name: "weight", shape: [channels], isWeight: false),
         ParameterSpec(name: "bias", shape: [channels], isWeight: false)]
    }

    public var stateSpecs: [StateSpec] {
        [StateSpec(name: "running_mean", shape: [channels]), StateSpec(name: "running_var", shape: [channels])]
    }

    public var statisticsCount: Int { 1 + 2 * channels }

    public func bind(parameters: UnsafeMutablePointer<Float>, gradients: UnsafeMutablePointer<Float>) {
        gamma = parameters
        beta = parameters + channels
        gammaGrad = gradients
        betaGrad = gradients + channels
    }

    public func bind(state: UnsafeMutablePointer<Float>) {
        runningMean = state
        runningVar = state + channels
    }

    public func bind(statistics: UnsafeMutablePointer<Float>) {
        batchStatistics = statistics
    }

    public func initialize(_ rng: inout Xoshiro256) {
        gamma.update(repeating: zeroInit ? 0 : 1, count: channels)
        beta.update(repeating: 0, count: channels)
        runningMean.update(repeating: 0, count: channels)
        runningVar.update(repeating: 1, count: channels)
    }

    /// Samples per group in a pass of `batch` rows.
    @inline(__always) private func groupSize(_ batch: Int) -> Int {
        statistics == .group ? group : max(batch, 1)
    }

    public func reserve(batch: Int) {
        let groups = (batch + groupSize(batch) - 1) / groupSize(batch)
        guard groups * channels > (means?.count ?? 0) else { return }
        means = FloatBuffer(count: groups * channels)
        inverseDeviations = FloatBuffer(count: groups * channels)
    }

    public func forward(x: UnsafePointer<Float>, y: UnsafeMutablePointer<Float>, batch: Int, mode: LayerMode) {
        trainedForward = mode == .train
        if mode == .eval {
            for c in 0..<channels {
                let inverse = 1 / (runningVar[c] + eps).squareRoot()
                normalize(x, y, batch: 0..<batch, channel: c, mean: runningMean[c], inverse: inverse)
            }
            return
        }
        guard let means, let inverseDeviations else { preconditionFailure("\(name): Network.reserve(batch:) was not called") }
        let size = groupSize(batch)
        var g = 0
        var start = 0
        while start < batch {
            let rows = start..<min(start + size, batch)
            if statistics == .global { globalMoments(x, rows: rows) }
            for c in 0..<channels {
                let (mean, variance, n) = statistics == .global ? globalMoment(c) : moments(x, rows: rows, channel: c)
                let inverse = Float(1 / (variance + Double(eps)).squareRoot())
                means.pointer[g * channels + c] = Float(mean)
                inverseDeviations.pointer[g * channels + c] = inverse
                normalize(x, y, batch: rows, channel: c, mean: Float(mean), inverse: inverse)
                // The group's contribution to the running statistics (unbiased variance, as PyTorch).
                batchStatistics[1 + c] += Float(mean)
                batchStatistics[1 + channels + c] += Float(n > 1 ? variance * n / (n - 1) : variance)
            }
            batchStatistics[0] += 1
            g += 1
            start = rows.upperBound
        }
    }

    /// μ and biased σ² of one channel over `rows`, two passes in Float64, and the values' count.
    private func moments(_ x: UnsafePointer<Float>, rows: Range<Int>, channel c: Int) -> (Double, Double, Double) {
        var sum = 0.0
        for b in rows {
            let v = x + b * inputWidth + c * plane
            for i in 0..<plane { sum += Double(v[i]) }
        }
        let n = Double(rows.count * plane)
        let mean = sum / n
        var squares = 0.0
        for b in rows {
            let v = x + b * inputWidth + c * plane
            for i in 0..<plane {
                let d = Double(v[i]) - mean
                squares += d * d
            }
        }
        return (mean, squares / n, n)
    }

    /// `global`: this rank's [count, Σx, Σx²] per channel summed over ranks into `sums`.
    private func globalMoments(_ x: UnsafePointer<Float>, rows: Range<Int>) {
        sums[0] = Double(rows.count * plane)
        for c in 0..<channels {
            var (s, q) = (0.0, 0.0)
            for b in rows {
                let v = x + b * inputWidth + c * plane
                for i in 0..<plane {
                    let d = Double(v[i])
                    s += d
                    q += d * d
                }
            }
            sums[1 + c] = s
            sums[1 + channels + c] = q
        }
        communicator?.allreduce(UnsafeMutableBufferPointer(start: sums, count: 1 + 2 * channels))
    }

    /// `global`: μ, biased σ² and the count of channel c from the summed moments.
    private func globalMoment(_ c: Int) -> (Double, Double, Double) {
        let n = sums[0]
        let mean = sums[1 + c] / n
        return (mean, max(sums[1 + channels + c] / n - mean * mean, 0), n)
    }

    /// y = γ·(x − mean)·inverse + β over channel c of `batch`'s rows (then ReLU when fused).
    @inline(__always)
    private func normalize(_ x: UnsafePointer<Float>, _ y: UnsafeMutablePointer<Float>, batch: Range<Int>, channel c: Int,
                           mean: Float, inverse: Float) {
        let scale = gamma[c] * inverse
        let shift = beta[c] - mean * scale
        for b in batch {
            let offset = b * inputWidth + c * plane
            let (v, w) = (x + offset, y + offset)
            if relu {
                for i in 0..<plane { w[i] = max(v[i] * scale + shift, 0) }
            } else {
                for i in 0..<plane { w[i] = v[i] * scale + shift }
            }
        }
    }

    public func commitStatistics(_ summed: UnsafePointer<Float>) {
        let groups = summed[0]
        guard groups > 0 else { return }
        for c in 0..<channels {
            runningMean[c] = (1 - momentum) * runningMean[c] + momentum * (summed[1 + c] / groups)
            runningVar[c] = (1 - momentum) * runningVar[c] + momentum * (summed[1 + channels + c] / groups)
        }
    }

    public func backward(x: UnsafePointer<Float>, y: UnsafePointer<Float>, dy: UnsafePointer<Float>,
                         dx: UnsafeMutablePointer<Float>?, batch: Int, accumulate: Bool) {
        precondition(trainedForward, "\(name): backward follows a training forward")
        guard let means, let inverseDeviations else { preconditionFailure("\(name): Network.reserve(batch:) was not called") }
        if !accumulate {
            gammaGrad.update(repeating: 0, count: channels)
            betaGrad.update(repeating: 0, count: channels)
        }
        let size = groupSize(batch)
        var g = 0
        var start = 0
        while start < batch {
            let rows = start..<min(start + size, batch)
            // Σd and Σd·x̂ per channel (over ranks too with `global`).
            for c in 0..<channels {
                let (mean, inverse) = (means.pointer[g * channels + c], inverseDeviations.pointer[g * channels + c])
                var (sd, sdx) = (0.0, 0.0)
                for b in rows {
                    let offset = b * inputWidth + c * plane
                    let (v, w, d) = (x + offset, y + offset, dy + offset)
                    for i in 0..<plane {
                        let grad = relu && w[i] <= 0 ? 0 : d[i]
                        sd += Double(grad)
                        sdx += Double(grad * ((v[i] - mean) * inverse))
                    }
                }
                betaGrad[c] += Float(sd)
                gammaGrad[c] += Float(sdx)
                sums[c] = sd
                sums[channels + c] = sdx
            }
            var n = Double(rows.count * plane)
            if statistics == .global {
                sums[2 * channels] = n
                communicator?.allreduce(UnsafeMutableBufferPointer(start: sums, count: 2 * channels + 1))
                n = sums[2 * channels]
            }
            if let dx {
                for c in 0..<channels {
                    let (mean, inverse) = (means.pointer[g * channels + c], inverseDeviations.pointer[g * channels + c])
                    let meanD = Float(sums[c] / n), meanDX = Float(sums[channels + c] / n)
                    let scale = gamma[c] * inverse
                    for b in rows {
                        let offset = b * inputWidth + c * plane
                        let (v, w, d, out) = (x + offset, y + offset, dy + offset, dx + offset)
                        for i in 0..<plane {
                            let grad = relu && w[i] <= 0 ? 0 : d[i]
                            out[i] = scale * (grad - meanD - (v[i] - mean) * inverse * meanDX)
                        }
                    }
                }
            }
            g += 1
            start = rows.upperBound
        }
    }
}

extension BatchNorm {
    /// `{ type = "batchnorm", stats = "group", group = 32, eps = 1e-5, momentum = 0.1,
    /// activation = "identity", zero_init = false }`, after a conv (per channel) or a dense
    /// layer (per feature).
    public struct Kind: LayerKind {
        public static let type = "batchnorm"
        public var statistics: Statistics
        public var group: Int
        public var eps: Double
        public var momentum: Double
        /// The `activation` key: a ReLU fused into the layer (so the network adds no layer after
        /// it, and the kind's `activation` stays identity).
        public var relu: Bool
        public var zeroInit: Bool

        public init(statistics: Statistics = .group, group: Int = 32, eps: Double = 1e-5, momentum: Double = 0.1,
                    relu: Bool = false, zeroInit: Bool = false) {
            self.statistics = statistics
            self.group = group
            self.eps = eps
            self.momentum = momentum
            self.relu = relu
            self.zeroInit = zeroInit
        }

        public init(_ l: TOMLReader, isLast: Bool) throws {
            let statistics = try l.choice("stats", default: Statistics.group)
            // `group` only means something with group statistics; elsewhere it is refused as unknown.
            let group = statistics == .group ? try l.int("group", default: 32, min: 1) : 32
            self.init(statistics: statistics, group: group, eps: try l.double("eps", default: 1e-5, min: 0),
                      momentum: try l.double("momentum", default: 0.1, min: 0, max: 1),
                      relu: try l.choice("activation", default: LayerSpec.Activation.identity) == .relu,
                      zeroInit: try l.bool("zero_init", default: false))
            guard eps > 0 else { throw LockstepError.usage("\(l.prefix).eps: must be positive (e.g. 1e-5)") }
        }

        public func resolvedKeys(quote: (String) -> String) -> String {
            let grouping = statistics == .group ? ", group = \(group)" : ""
            return "stats = \(quote(statistics.rawValue))\(grouping), eps = \(eps), momentum = \(momentum), activation = \(quote(relu ? "relu" : "identity")), zero_init = \(zeroInit)"
        }

        /// What is normalised on per-sample shape `input`: channels of a [C, H, W] or [H, W]
        /// image (one channel), each feature of a flat sample; and the values per channel.
        static func channels(of input: [Int]) -> (channels: Int, plane: Int) {
            switch input.count {
            case 3: return (input[0], input[1] * input[2])
            case 2: return (1, input[0] * input[1])
            default: return (input.reduce(1, *), 1)
            }
        }

        public func parameterCount(input: [Int]) -> Int? {
            // γ and β per channel.
            let (twice, overflow) = Self.channels(of: input).channels.multipliedReportingOverflow(by: 2)
            return overflow ? nil : twice
        }

        public var batchNorms: [(key: String, kind: BatchNorm.Kind)] { [(".group", self)] }

        public func build(input: [Int], with builder: LayerBuilder) throws -> (layer: any Layer, output: [Int]) {
            let (channels, plane) = Self.channels(of: input)
            let layer = try make(name: builder.name("bn"), channels: channels, plane: plane, key: builder.key, builder: builder)
            return (layer, input)
        }

        /// The layer for `channels` of `plane` values each (residual blocks build theirs here too).
        func make(name: String, channels: Int, plane: Int, key: String, builder: LayerBuilder) throws -> BatchNorm {
            // One value per channel in a group has no variance to normalise by (PyTorch refuses it too).
            if statistics == .group && group * plane < 2 {
                throw LockstepError.usage("\(key).group: a group of \(group) sample(s) has one value per feature, nothing to normalise: use group = 2 or more")
            }
            return BatchNorm(name: name, channels: channels, plane: plane, statistics: statistics, group: group,
                             eps: Float(eps), momentum: Float(momentum), relu: relu, zeroInit: zeroInit,
                             communicator: builder.communicator)
        }
    }
}
