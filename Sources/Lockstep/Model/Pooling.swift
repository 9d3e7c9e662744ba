// 2-D max and average pooling over NCHW samples: a k×k window moved by `stride`, no padding,
// each channel on its own (output [C, Hout, Wout], Hout = ⌊(H − k) / stride⌋ + 1). No parameters.
//
// There is no Flatten layer: a sample is always one row of floats and an image's row is already
// its C·H·W values in NCHW order, so a dense layer after a pool simply reads the row (the network
// keeps the shapes, see Network.outputShapes).

/// The window geometry both pools share.
public struct PoolWindow: Equatable, Sendable {
    public let input: ImageShape
    public let output: ImageShape
    public let kernel: Int
    public let stride: Int

    public init(input: ImageShape, kernel: Int, stride: Int) {
        let height = ImageShape.windows(size: input.height, kernel: kernel, stride: stride, padding: 0)
        let width = ImageShape.windows(size: input.width, kernel: kernel, stride: stride, padding: 0)
        precondition(kernel >= 1 && stride >= 1 && height >= 1 && width >= 1,
                     "a \(kernel)×\(kernel) pool with stride \(stride) does not fit \(input)")
        self.input = input
        output = ImageShape(channels: input.channels, height: height, width: width)
        self.kernel = kernel
        self.stride = stride
    }

    /// Offset, within its channel plane, of the top-left input pixel of output pixel (i, j).
    @inline(__always) func origin(_ i: Int, _ j: Int) -> Int { (i * stride) * input.width + j * stride }
}

/// y = the largest value of each window. Backward routes dy to that value's position (the first
/// one in row-major order on ties, as PyTorch does); the positions are remembered by `forward`.
public final class MaxPool2d: Layer {
    public let name: String
    public let window: PoolWindow
    public var inputWidth: Int { window.input.count }
    public var outputWidth: Int { window.output.count }
    public var parameterSpecs: [ParameterSpec] { [] }
    /// argmax[b, c, i, j]: the winner's offset within sample b's row; sized by `reserve`.
    private var argmax: UnsafeMutablePointer<Int32>?
    private var capacity = 0

    public init(name: String, input: ImageShape, kernel: Int, stride: Int) {
        self.name = name
        window = PoolWindow(input: input, kernel: kernel, stride: stride)
    }

    deinit { argmax?.deallocate() }

    public func bind(parameters: UnsafeMutablePointer<Float>, gradients: UnsafeMutablePointer<Float>) {}
    public func initialize(_ rng: inout Xoshiro256) {}

    public func reserve(batch: Int) {
        guard batch > capacity else { return }
        argmax?.deallocate()
        argmax = .allocate(capacity: batch * outputWidth)
        capacity = batch
    }

    public func forward(x: UnsafePointer<Float>, y: UnsafeMutablePointer<Float>, batch: Int, mode: LayerMode) {
        precondition(batch <= capacity, "\(name): Network.reserve(batch:) was not called for this batch size")
        let argmax = argmax!
        let (inp, out, k, s) = (window.input, window.output, window.kernel, window.stride)
        // A whole output row at a time, one window offset (ki, kj) after another in row-major
        // order: the inner loop runs along the row (cheap, no per-window set-up), and a strict >
        // keeps the first maximum of each window, as a window-by-window scan would.
        for b in 0..<batch {
            let xb = x + b * inputWidth
            for c in 0..<out.channels {
                for i in 0..<out.height {
                    let o = b * outputWidth + (c * out.height + i) * out.width
                    let (yr, ar) = (y + o, argmax + o)
                    let corner = c * inp.plane + i * s * inp.width   // offset of window (i, 0) in the sample
                    for j in 0..<out.width {
                        yr[j] = xb[corner + j * s]
                        ar[j] = Int32(corner + j * s)
                    }
                    for ki in 0..<k {
                        for kj in 0..<k where ki > 0 || kj > 0 {
                            let start = corner + ki * inp.width + kj
                            // Branch-free: which element wins is data, and a branch on it mispredicts
                            // often (LLVM turns a comparison-fed select back into one), so the argmax
                            // update is a mask taken from the sign of current − v: all ones exactly
                            // when v > current (x − x is +0, so a tie keeps the first).
                            for j in 0..<out.width {
                                let at = start &+ j &* s
                                let (v, current) = (xb[at], yr[j])
                                let mask = Int32(bitPattern: (current - v).bitPattern) >> 31
                                yr[j] = Swift.max(v, current)
                                ar[j] = (Int32(truncatingIfNeeded: at) & mask) | (ar[j] & ~mask)
                            }
                        }
                    }
                }
            }
        }
    }

    public func backward(x: UnsafePointer<Float>, y: UnsafePointer<Float>, dy: UnsafePointer<Float>,
                         dx: UnsafeMutablePointer<Float>?, batch: Int, accumulate: Bool) {
        guard let dx else { return }
        let argmax = argmax!
        dx.update(repeating: 0, count: batch * inputWidth)
        for b in 0..<batch {
            let dxb = dx + b * inputWidth
            // Overlapping windows (stride < kernel) can share a winner: add, not assign.
            for o in (b * outputWidth)..<((b + 1) * outputWidth) { dxb[Int(argmax[o])] += dy[o] }
        }
    }
}

/// y = the mean of each window; backward spreads dy / k² over the window.
public final class AvgPool2d: Layer {
    public let name: String
    public let window: PoolWindow
    public var inputWidth: Int { window.input.count }
    public var outputWidth: Int { window.output.count }
    public var parameterSpecs: [ParameterSpec] { [] }

    public init(name: String, input: ImageShape, kernel: Int, stride: Int) {
        self.name = name
        window = PoolWindow(input: input, kernel: kernel, stride: stride)
    }

    public func bind(parameters: UnsafeMutablePointer<Float>, gradients: UnsafeMutablePointer<Float>) {}
    public func initialize(_ rng: inout Xoshiro256) {}

    public func forward(x: UnsafePointer<Float>, y: UnsafeMutablePointer<Float>, batch: Int, mode: LayerMode) {
        let (inp, out, k, s) = (window.input, window.output, window.kernel, window.stride)
        let scale = 1 / Float(k * k)
        // Row-wise as MaxPool2d.forward.
        for b in 0..<batch {
            let xb = x + b * inputWidth
            for c in 0..<out.channels {
                for i in 0..<out.height {
                    let yr = y + b * outputWidth + (c * out.height + i) * out.width
                    let corner = c * inp.plane + i * s * inp.width
                    yr.update(repeating: 0, count: out.width)
                    for ki in 0..<k {
                        for kj in 0..<k {
                            let start = corner + ki * inp.width + kj
                            for j in 0..<out.width { yr[j] += xb[start + j * s] }
                        }
                    }
                    for j in 0..<out.width { yr[j] *= scale }
                }
            }
        }
    }

    public func backward(x: UnsafePointer<Float>, y: UnsafePointer<Float>, dy: UnsafePointer<Float>,
                         dx: UnsafeMutablePointer<Float>?, batch: Int, accumulate: Bool) {
        guard let dx else { return }
        let (inp, out, k) = (window.input, window.output, window.kernel)
        let scale = 1 / Float(k * k)
        dx.update(repeating: 0, count: batch * inputWidth)
        for b in 0..<batch {
            let dxb = dx + b * inputWidth
            var o = b * outputWidth
            for c in 0..<out.channels {
                let plane = c * inp.plane
                for i in 0..<out.height {
                    for j in 0..<out.width {
                        let share = dy[o] * scale
                        let corner = plane + window.origin(i, j)
                        for ki in 0..<k {
                            let row = corner + ki * inp.width
                            for kj in 0..<k { dxb[row + kj] += share }
                        }
                        o += 1
                    }
                }
            }
        }
    }
}

/// The keys both pools read: `kernel`, and `stride` (default: the kernel). No padding.
public struct PoolKeys: Equatable, Sendable {
    public var kernel: Int
    public var stride: Int

    init(_ l: TOMLReader) throws {
        kernel = try l.int("kernel", min: 1)
        stride = try l.int("stride", default: kernel, min: 1)
    }

    init(kernel: Int, stride: Int) {
        self.kernel = kernel
        self.stride = stride
    }

    var resolvedKeys: String { "kernel = \(kernel), stride = \(stride)" }

    func window(_ type: String, input: [Int], with builder: LayerBuilder) throws -> ImageShape {
        try builder.image(from: input, type: type, kernel: kernel, padding: 0)
    }
}

/// A pooling layer as its descriptor builds it: a window over an image and the kind's `type`.
public protocol PoolingLayer: Layer {
    static var kindType: String { get }
    var window: PoolWindow { get }
    init(name: String, input: ImageShape, kernel: Int, stride: Int)
}

extension MaxPool2d: PoolingLayer {
    public static let kindType = "maxpool"
    /// `{ type = "maxpool", kernel = k, stride = k }`.
    public typealias Kind = PoolKind<MaxPool2d>
}

extension AvgPool2d: PoolingLayer {
    public static let kindType = "avgpool"
    /// `{ type = "avgpool", kernel = k, stride = k }`.
    public typealias Kind = PoolKind<AvgPool2d>
}

/// The descriptor of a pooling kind: the same keys (`kernel`, `stride`) for every pool.
public struct PoolKind<Pool: PoolingLayer>: LayerKind, WindowKeys {
    public static var type: String { Pool.kindType }
    public static var isSpatial: Bool { true }
    public var keys: PoolKeys
    public var kernel: Int { keys.kernel }
    public var stride: Int { keys.stride }
    public var padding: Int { 0 }

    public init(kernel: Int, stride: Int) { keys = PoolKeys(kernel: kernel, stride: stride) }
    public init(_ l: TOMLReader, isLast: Bool) throws { keys = try PoolKeys(l) }
    public func resolvedKeys(quote: (String) -> String) -> String { keys.resolvedKeys }

    public func build(input: [Int], with builder: LayerBuilder) throws -> (layer: any Layer, output: [Int]) {
        let pool = Pool(name: builder.name(Self.type), input: try keys.window(Self.type, input: input, with: builder),
                        kernel: kernel, stride: stride)
        return (pool, pool.window.output.dimensions)
    }
}
