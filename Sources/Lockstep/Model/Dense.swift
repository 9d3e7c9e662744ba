// Fully connected layer: y = x·Wᵀ + b, W stored [out, in] (as PyTorch does), b [out]. Without a
// bias (`bias = false`, for a layer followed by BatchNorm, whose β makes one redundant) y = x·Wᵀ.

public final class Dense: Layer {
    public let name: String
    public let inputWidth: Int
    public let outputWidth: Int
    /// Initialisation scale: He (for layers followed by ReLU) or Glorot (otherwise).
    public let initialization: Initialization
    /// Whether the layer has a bias tensor.
    public let hasBias: Bool
    private var weight: UnsafeMutablePointer<Float>!
    private var bias: UnsafeMutablePointer<Float>!
    private var weightGrad: UnsafeMutablePointer<Float>!
    private var biasGrad: UnsafeMutablePointer<Float>!

    public enum Initialization: Sendable { case he, glorot }

    public init(name: String, inputs: Int, outputs: Int, initialization: Initialization, bias: Bool = true) {
        self.name = name
        inputWidth = inputs
        outputWidth = outputs
        self.initialization = initialization
        hasBias = bias
    }

    public var parameterSpecs: [ParameterSpec] {
        let weight = ParameterSpec(name: "weight", shape: [outputWidth, inputWidth], isWeight: true)
        return hasBias ? [weight, ParameterSpec(name: "bias", shape: [outputWidth], isWeight: false)] : [weight]
    }

    public func bind(parameters: UnsafeMutablePointer<Float>, gradients: UnsafeMutablePointer<Float>) {
        weight = parameters
        bias = parameters + outputWidth * inputWidth
        weightGrad = gradients
        biasGrad = gradients + outputWidth * inputWidth
    }

    public func initialize(_ rng: inout Xoshiro256) {
        // Uniform(−limit, limit): He keeps ReLU activations' variance, Glorot a linear layer's.
        let limit: Double
        switch initialization {
        case .he: limit = (6.0 / Double(inputWidth)).squareRoot()
        case .glorot: limit = (6.0 / Double(inputWidth + outputWidth)).squareRoot()
        }
        for i in 0..<(outputWidth * inputWidth) {
            weight[i] = Float((rng.nextUnit() * 2 - 1) * limit)
        }
        if hasBias { bias.update(repeating: 0, count: outputWidth) }
    }

    public func forward(x: UnsafePointer<Float>, y: UnsafeMutablePointer<Float>, batch: Int, mode: LayerMode) {
        // y[b, :] = bias, then y += x[b×in] · Wᵀ[in×out] (without a bias, y = x · Wᵀ).
        if hasBias { for row in 0..<batch { (y + row * outputWidth).update(from: bias, count: outputWidth) } }
        Gemm.sgemm(transA: false, transB: true, m: batch, n: outputWidth, k: inputWidth,
                   alpha: 1, a: x, lda: inputWidth, b: weight, ldb: inputWidth,
                   beta: hasBias ? 1 : 0, c: y, ldc: outputWidth)
    }

    public func backward(x: UnsafePointer<Float>, y: UnsafePointer<Float>, dy: UnsafePointer<Float>,
                         dx: UnsafeMutablePointer<Float>?, batch: Int, accumulate: Bool) {
        // dW[out×in] (+)= dyᵀ[out×batch] · x[batch×in]
        Gemm.sgemm(transA: true, transB: false, m: outputWidth, n: inputWidth, k: batch,
                   alpha: 1, a: dy, lda: outputWidth, b: x, ldb: inputWidth,
                   beta: accumulate ? 1 : 0, c: weightGrad, ldc: inputWidth)
        // db[out] (+)= Σ_rows dy
        if hasBias {
            if !accumulate { biasGrad.update(repeating: 0, count: outputWidth) }
            for row in 0..<batch {
                let r = dy + row * outputWidth
                for j in 0..<outputWidth { biasGrad[j] += r[j] }
            }
        }
        // dx[batch×in] = dy[batch×out] · W[out×in]
        if let dx {
            Gemm.sgemm(transA: false, transB: false, m: batch, n: inputWidth, k: outputWidth,
                       alpha: 1, a: dy, lda: outputWidth, b: weight, ldb: inputWidth,
                       beta: 0, c: dx, ldc: inputWidth)
        }
    }
}

extension Dense {
    /// `{ type = "dense", units = N, activation = "relu" | "identity", bias = true }`. Flattening
    /// is implicit: an image sample is already one row of C·H·W floats.
    public struct Kind: LayerKind {
        public static let type = "dense"
        public var units: Int
        public var activation: LayerSpec.Activation
        public var bias: Bool

        public init(units: Int, activation: LayerSpec.Activation, bias: Bool = true) {
            self.units = units
            self.activation = activation
            self.bias = bias
        }

        public init(_ l: TOMLReader, isLast: Bool) throws {
            // The last layer produces logits, so its activation defaults to identity.
            self.init(units: try l.int("units", min: 1),
                      activation: try l.choice("activation", default: isLast ? .identity : LayerSpec.Activation.relu),
                      bias: try l.bool("bias", default: true))
        }

        public func resolvedKeys(quote: (String) -> String) -> String {
            // `bias` only when off, so the jobs written before the key render as they always did.
            "units = \(units), activation = \(quote(activation.rawValue))" + (bias ? "" : ", bias = false")
        }

        public func parameterCount(input: [Int]) -> Int? {
            guard let inputs = MemoryBudget.product(input), let weights = MemoryBudget.product([inputs, units]),
                  !weights.addingReportingOverflow(units).overflow else { return nil }
            return weights + (bias ? units : 0)
        }

        public func build(input: [Int], with builder: LayerBuilder) throws -> (layer: any Layer, output: [Int]) {
            let layer = Dense(name: builder.name("dense"), inputs: input.reduce(1, *), outputs: units,
                              initialization: activation == .relu ? .he : .glorot, bias: bias)
            return (layer, [units])
        }
    }
}
