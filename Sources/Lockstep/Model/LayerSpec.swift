// What the job file says about one layer ([model] layers), and the per-sample shape it turns its
// input into. Shape errors are usage errors naming the job key (`model.layers.N.<key>`), because a
// job is the only way a user builds a network.

public struct LayerSpec: Equatable, Sendable {
    public enum Activation: String, Sendable, CaseIterable { case relu, identity }
    /// "dense", "conv2d", "maxpool" or "avgpool".
    public var type: String
    /// dense: the output width (the last layer's is the number of classes); 0 otherwise.
    public var units: Int
    /// conv2d: output channels; 0 otherwise.
    public var channels: Int
    /// conv2d and pools: the square window's side; 0 for dense.
    public var kernel: Int
    /// conv2d and pools: the window's step; 0 for dense.
    public var stride: Int
    /// conv2d: zero padding on every side; 0 otherwise.
    public var padding: Int
    /// Applied after the layer (pools: always identity).
    public var activation: Activation

    public static let types = ["dense", "conv2d", "maxpool", "avgpool"]

    /// A dense layer (the only `type` this initializer makes).
    public init(type: String = "dense", units: Int, activation: Activation) {
        precondition(type == "dense", "LayerSpec(units:) makes dense layers; use .conv2d, .maxPool or .avgPool")
        self.init(type: type, units: units, channels: 0, kernel: 0, stride: 0, padding: 0, activation: activation)
    }

    private init(type: String, units: Int, channels: Int, kernel: Int, stride: Int, padding: Int, activation: Activation) {
        self.type = type
        self.units = units
        self.channels = channels
        self.kernel = kernel
        self.stride = stride
        self.padding = padding
        self.activation = activation
    }

    public static func conv2d(channels: Int, kernel: Int, stride: Int = 1, padding: Int = 0,
                              activation: Activation = .relu) -> LayerSpec {
        LayerSpec(type: "conv2d", units: 0, channels: channels, kernel: kernel, stride: stride, padding: padding,
                  activation: activation)
    }

    /// A max pool; `stride` defaults to the kernel (non-overlapping windows, as PyTorch).
    public static func maxPool(kernel: Int, stride: Int? = nil) -> LayerSpec {
        LayerSpec(type: "maxpool", units: 0, channels: 0, kernel: kernel, stride: stride ?? kernel, padding: 0,
                  activation: .identity)
    }

    /// An average pool; `stride` defaults to the kernel.
    public static func avgPool(kernel: Int, stride: Int? = nil) -> LayerSpec {
        LayerSpec(type: "avgpool", units: 0, channels: 0, kernel: kernel, stride: stride ?? kernel, padding: 0,
                  activation: .identity)
    }

    /// Whether the layer slides a window over an image (and so needs an image input).
    public var isSpatial: Bool { type != "dense" }

    /// The image a spatial layer at `model.layers.index` reads, from the per-sample shape before
    /// it: [H, W] is one channel, [C, H, W] is as is. Anything else, or a window that does not fit
    /// the (padded) image even once, is a usage error naming the key to change.
    func image(from shape: [Int], index: Int, after previous: String) throws -> ImageShape {
        let key = "model.layers.\(index)"
        let image: ImageShape
        switch shape.count {
        case 2: image = ImageShape(channels: 1, height: shape[0], width: shape[1])
        case 3: image = ImageShape(channels: shape[0], height: shape[1], width: shape[2])
        default:
            throw LockstepError.usage("\(key).type: \"\(type)\" needs an image input ([H, W] or [C, H, W]) but \(previous) has shape \(shape): use image data or put the \(type) layer before any dense layer")
        }
        let (twice, o1) = padding.multipliedReportingOverflow(by: 2)
        let (side, o2) = min(image.height, image.width).addingReportingOverflow(twice)
        guard !o1 && !o2 else {
            throw LockstepError.usage("\(key).padding: \(padding) is larger than any image: use at most \(kernel / 2) and a kernel that fits \(previous) (shape \(shape))")
        }
        guard kernel <= side else {
            let padded = padding > 0 ? " with padding \(padding)" : ""
            throw LockstepError.usage("\(key).kernel: \(kernel) is larger than its \(image.height)×\(image.width) input\(padded) (\(previous) has shape \(shape)): use a kernel of at most \(side)\(type == "conv2d" ? " or more padding" : "")")
        }
        return image
    }
}
