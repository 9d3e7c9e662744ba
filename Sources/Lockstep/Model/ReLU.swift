// Rectified linear unit, elementwise: y = max(x, 0). No parameters.

public final class ReLU: Layer {
    public let name: String
    public let inputWidth: Int
    public var outputWidth: Int { inputWidth }
    public var parameterSpecs: [ParameterSpec] { [] }

    public init(name: String, width: Int) {
        self.name = name
        inputWidth = width
    }

    public func bind(parameters: UnsafeMutablePointer<Float>, gradients: UnsafeMutablePointer<Float>) {}
    public func initialize(_ rng: inout Xoshiro256) {}

    public func forward(x: UnsafePointer<Float>, y: UnsafeMutablePointer<Float>, batch: Int, mode: LayerMode) {
        for i in 0..<(batch * inputWidth) { y[i] = max(x[i], 0) }
    }

    public func backward(x: UnsafePointer<Float>, y: UnsafePointer<Float>, dy: UnsafePointer<Float>,
                         dx: UnsafeMutablePointer<Float>?, batch: Int, accumulate: Bool) {
        guard let dx else { return }
        // The subgradient at 0 is taken as 0 (as PyTorch does).
        for i in 0..<(batch * inputWidth) { dx[i] = y[i] > 0 ? dy[i] : 0 }
    }
}
