// What the job file says about one layer ([model] layers): its kind's descriptor (LayerKind),
// which knows its keys and how to build it. Shape errors are usage errors naming the job key
// (`model.layers.N.<key>`), because a job is the only way a user builds a network.

public struct LayerSpec: Equatable, Sendable {
    public enum Activation: String, Sendable, CaseIterable { case relu, identity }

    /// The entry in its kind's own terms (Dense.Kind, Conv2d.Kind, ...).
    public let kind: any LayerKind

    public init(_ kind: some LayerKind) {
        self.kind = kind
    }

    public static func == (a: LayerSpec, b: LayerSpec) -> Bool {
        func same<K: LayerKind>(_ a: K, _ b: any LayerKind) -> Bool { (b as? K) == a }
        return same(a.kind, b.kind)
    }

    /// The types a job can name, in `LayerKinds.all` order.
    public static var types: [String] { LayerKinds.all.map { $0.type } }

    /// "dense", "conv2d", "maxpool", "avgpool", ...
    public var type: String { Swift.type(of: kind).type }
    /// Applied after the layer (pools: always identity).
    public var activation: Activation { kind.activation }
    /// Whether the layer slides a window over an image (and so needs an image input).
    public var isSpatial: Bool { Swift.type(of: kind).isSpatial }

    // The built-in kinds' keys, read through the spec (0 where the kind has no such key).

    /// dense: the output width (the last layer's is the number of classes).
    public var units: Int { (kind as? Dense.Kind)?.units ?? 0 }
    /// conv2d: output channels.
    public var channels: Int { (kind as? Conv2d.Kind)?.channels ?? 0 }
    /// conv2d and pools: the square window's side.
    public var kernel: Int { (kind as? any WindowKeys)?.kernel ?? 0 }
    /// conv2d and pools: the window's step.
    public var stride: Int { (kind as? any WindowKeys)?.stride ?? 0 }
    /// conv2d: zero padding on every side.
    public var padding: Int { (kind as? any WindowKeys)?.padding ?? 0 }

    /// A dense layer (the only `type` this initializer makes).
    public init(type: String = "dense", units: Int, activation: Activation) {
        precondition(type == "dense", "LayerSpec(units:) makes dense layers; use .conv2d, .maxPool or .avgPool")
        self.init(Dense.Kind(units: units, activation: activation))
    }

    public static func conv2d(channels: Int, kernel: Int, stride: Int = 1, padding: Int = 0,
                              activation: Activation = .relu) -> LayerSpec {
        LayerSpec(Conv2d.Kind(channels: channels, kernel: kernel, stride: stride, padding: padding, activation: activation))
    }

    /// A max pool; `stride` defaults to the kernel (non-overlapping windows, as PyTorch).
    public static func maxPool(kernel: Int, stride: Int? = nil) -> LayerSpec {
        LayerSpec(MaxPool2d.Kind(kernel: kernel, stride: stride ?? kernel))
    }

    /// An average pool; `stride` defaults to the kernel.
    public static func avgPool(kernel: Int, stride: Int? = nil) -> LayerSpec {
        LayerSpec(AvgPool2d.Kind(kernel: kernel, stride: stride ?? kernel))
    }
}

/// The window keys of the sliding-window kinds (conv2d and the pools).
public protocol WindowKeys {
    var kernel: Int { get }
    var stride: Int { get }
    var padding: Int { get }
}

extension LayerBuilder {
    /// The image a spatial layer of `type` reads, from the per-sample shape before it: [H, W] is
    /// one channel, [C, H, W] is as is. Anything else, or a window that does not fit the (padded)
    /// image even once, is a usage error naming the key to change.
    public func image(from shape: [Int], type: String, kernel: Int, padding: Int) throws -> ImageShape {
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
