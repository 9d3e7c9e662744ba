// Global average pooling: each channel plane of an image becomes its mean, [C, H, W] → [C] (the
// head of every ResNet, PyTorch's AdaptiveAvgPool2d(1) followed by flatten). No parameters.

public final class GlobalAvgPool: Layer {
    public let name: String
    public let input: ImageShape
    public var inputWidth: Int { input.count }
    public var outputWidth: Int { input.channels }
    public var parameterSpecs: [ParameterSpec] { [] }

    public init(name: String, input: ImageShape) {
        self.name = name
        self.input = input
    }

    public func bind(parameters: UnsafeMutablePointer<Float>, gradients: UnsafeMutablePointer<Float>) {}
    public func initialize(_ rng: inout Xoshiro256) {}

    public func forward(x: UnsafePointer<Float>, y: UnsafeMutablePointer<Float>, batch: Int, mode: LayerMode) {
        let (planes, size) = (input.channels, input.plane)
        let inverse = 1 / Float(size)
        for b in 0..<batch {
            for c in 0..<planes {
                let v = x + (b * planes + c) * size
                var sum: Float = 0
                for i in 0..<size { sum += v[i] }
                y[b * planes + c] = sum * inverse
            }
        }
    }

    public func backward(x: UnsafePointer<Float>, y: UnsafePointer<Float>, dy: UnsafePointer<Float>,
                         dx: UnsafeMutablePointer<Float>?, batch: Int, accumulate: Bool) {
        guard let dx else { return }
        let (planes, size) = (input.channels, input.plane)
        let inverse = 1 / Float(size)
        for b in 0..<batch {
            for c in 0..<planes {
                (dx + (b * planes + c) * size).update(repeating: dy[b * planes + c] * inverse, count: size)
            }
        }
    }
}

extension GlobalAvgPool {
    /// `{ type = "globalavgpool" }`: no keys.
    public struct Kind: LayerKind {
        public static let type = "globalavgpool"
        public init() {}
        public init(_ l: TOMLReader, isLast: Bool) throws {}
        public func resolvedKeys(quote: (String) -> String) -> String { "" }

        public func build(input: [Int], with builder: LayerBuilder) throws -> (layer: any Layer, output: [Int]) {
            let image = try builder.image(from: input, type: Self.type, kernel: 1, padding: 0)
            return (GlobalAvgPool(name: builder.name("gap"), input: image), [image.channels])
        }
    }
}
