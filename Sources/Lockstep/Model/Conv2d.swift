// 2-D convolution (cross-correlation, as PyTorch's Conv2d) over NCHW samples with zero padding,
// computed as GEMMs over an im2col matrix of a chunk of n samples side by side (column b·P + p):
//
//   col[K, n·P]      K = Cin·k·k (one row per weight of a filter), P = Hout·Wout (output pixels per sample)
//   Y'[Cout, n·P]    = W[Cout, K] · col;  y[b][c][p] = Y'[c][b·P + p] + bias[c]   (scattered to NCHW)
//   dW[Cout, K]     += dY'[Cout, n·P] · colᵀ                                      (dY' gathered from dy)
//   dcol[K, n·P]     = Wᵀ[K, Cout] · dY';  dx_b = col2im(dcol's columns of b)      (overlapping windows add up)
//
// W is stored [Cout, Cin, k, k] (PyTorch's layout), which is the [Cout, K] matrix above with K
// ordered (c, ki, kj), the order im2col writes its rows in. A chunk of one sample needs no
// scatter or gather: y_b and dy_b are Y' and dY' themselves.
//
// How many samples a chunk holds: as many as keep col within `columnBudget` (512 KB by default),
// at least one; and one alone when K < 32. Measured at batch 64 with one OpenBLAS thread on this
// project's 2-core EPYC (1 MB L2 per core; loaded by other work; medians of 25 and of 35
// interleaved rounds), forward + backward of the conv layers of jobs/fashion-resnet.toml, and in
// brackets jobs/fashion-cnn.toml: one sample at a time 134 and 145 ms (13.1 and 14.3 ms); 512 KB
// chunks 4 and 2 % faster (2 % slower, 2 % faster), within the noise; 8 MB chunks 17–35 %
// (21–24 %) slower; the whole batch in one GEMM each way 45–55 % (13–18 %) slower. A column
// matrix larger than L2 goes out to memory between im2col and the GEMM (and between the dcol
// GEMM and col2im), and OpenBLAS already runs one sample's GEMM (n = P ≥ 49 columns) at about
// 75 GFLOP/s, so bigger GEMMs buy nothing. Below K = 32 a GEMM does too little per
// output (K multiply-adds) to pay for the scatter and gather: the K = 9 first layers ran 15–90 %
// slower in chunks, K = 16 no faster. Backward rebuilds the column matrix instead of keeping
// forward's (B times the memory). The buffers are one ConvWorkspace shared by the network's conv
// layers (they run one at a time), so they take the largest layer's chunk, not one per layer.
//
// Without a bias (`bias = false`: a conv followed by BatchNorm, whose β makes one redundant, as
// in every ResNet) the layer has only its weight tensor.

public final class Conv2d: Layer {
    public let name: String
    public let input: ImageShape
    public let output: ImageShape
    public let kernel: Int
    public let stride: Int
    public let padding: Int
    /// He (followed by ReLU) or Glorot, with fan_in = Cin·k·k and fan_out = Cout·k·k.
    public let initialization: Dense.Initialization
    /// Whether the layer has a bias tensor.
    public let hasBias: Bool
    public var inputWidth: Int { input.count }
    public var outputWidth: Int { output.count }

    private var weight: UnsafeMutablePointer<Float>!
    private var bias: UnsafeMutablePointer<Float>!
    private var weightGrad: UnsafeMutablePointer<Float>!
    private var biasGrad: UnsafeMutablePointer<Float>!

    /// The column matrices, shared with the other conv layers the same builder made; sized by `reserve`.
    public let workspace: ConvWorkspace
    /// Floats one chunk's column matrix may take (the default, 2¹⁷, is 512 KB, half a core's L2 here);
    /// a chunk is at least one sample. Set it before `reserve`; 0 makes every chunk one sample.
    public var columnBudget = Conv2d.defaultColumnBudget
    public static let defaultColumnBudget = 1 << 17
    /// Layers with fewer rows per column (K) than this run one sample at a time whatever the
    /// budget: their GEMM is K multiply-adds per output, too few to pay for staging the output.
    public static let minimumChunkedPatch = 32
    /// Samples per chunk (one GEMM each way), from `reserve`; 0 before it.
    public private(set) var chunk = 0
    private var reservedBatch = 0

    /// Rows of the column matrix (weights per filter).
    private var patch: Int { input.channels * kernel * kernel }
    /// Columns of the column matrix per sample (output pixels per channel).
    private var pixels: Int { output.plane }

    /// The shapes must fit (checked with a usage error where the network is built from a job).
    public init(name: String, input: ImageShape, channels: Int, kernel: Int, stride: Int = 1, padding: Int = 0,
                initialization: Dense.Initialization, bias: Bool = true, progress: BackwardProgress = BackwardProgress(),
                workspace: ConvWorkspace = ConvWorkspace()) {
        self.progress = progress
        self.workspace = workspace
        hasBias = bias
        let height = ImageShape.windows(size: input.height, kernel: kernel, stride: stride, padding: padding)
        let width = ImageShape.windows(size: input.width, kernel: kernel, stride: stride, padding: padding)
        precondition(channels >= 1 && kernel >= 1 && stride >= 1 && padding >= 0 && height >= 1 && width >= 1,
                     "Conv2d \(name): \(kernel)×\(kernel) kernel, stride \(stride), padding \(padding) does not fit \(input)")
        self.name = name
        self.input = input
        self.output = ImageShape(channels: channels, height: height, width: width)
        self.kernel = kernel
        self.stride = stride
        self.padding = padding
        self.initialization = initialization
    }

    public var parameterSpecs: [ParameterSpec] {
        let weight = ParameterSpec(name: "weight", shape: [output.channels, input.channels, kernel, kernel], isWeight: true)
        return hasBias ? [weight, ParameterSpec(name: "bias", shape: [output.channels], isWeight: false)] : [weight]
    }

    public func bind(parameters: UnsafeMutablePointer<Float>, gradients: UnsafeMutablePointer<Float>) {
        let weights = output.channels * patch
        weight = parameters
        bias = parameters + weights
        weightGrad = gradients
        biasGrad = gradients + weights
    }

    public func initialize(_ rng: inout Xoshiro256) {
        // Uniform(−limit, limit), as Dense: each output sees Cin·k·k inputs.
        let fanIn = Double(patch), fanOut = Double(output.channels * kernel * kernel)
        let limit: Double
        switch initialization {
        case .he: limit = (6.0 / fanIn).squareRoot()
        case .glorot: limit = (6.0 / (fanIn + fanOut)).squareRoot()
        }
        for i in 0..<(output.channels * patch) {
            weight[i] = Float((rng.nextUnit() * 2 - 1) * limit)
        }
        if hasBias { bias.update(repeating: 0, count: output.channels) }
    }

    public func reserve(batch: Int) {
        reservedBatch = max(reservedBatch, batch, 1)
        chunk = patch < Self.minimumChunkedPatch ? 1 : max(1, min(reservedBatch, columnBudget / (patch * pixels)))
        workspace.reserve(columns: patch * chunk * pixels, staging: chunk > 1 ? output.channels * chunk * pixels : 0)
    }

    public func forward(x: UnsafePointer<Float>, y: UnsafeMutablePointer<Float>, batch: Int, mode: LayerMode) {
        precondition(chunk > 0, "\(name): Network.reserve(batch:) was not called")
        let (cout, k, p) = (output.channels, patch, pixels)
        let col = workspace.columns.pointer, stage = workspace.staging.pointer
        var first = 0
        while first < batch {
            let n = min(chunk, batch - first), width = n * p
            for b in 0..<n { im2col(x + (first + b) * inputWidth, col + b * p, rowStride: width) }
            if n == 1 {
                // One sample: y_b[Cout, P] is Y' itself. y_b[c, :] = bias[c], then y_b += W · col
                // (without a bias, y_b = W · col).
                let yb = y + first * outputWidth
                if hasBias { for c in 0..<cout { (yb + c * p).update(repeating: bias[c], count: p) } }
                Gemm.sgemm(transA: false, transB: false, m: cout, n: p, k: k,
                           alpha: 1, a: weight, lda: k, b: col, ldb: p, beta: hasBias ? 1 : 0, c: yb, ldc: p)
            } else {
                // Y'[Cout, n·P] = W · col, then y[b][c][:] = Y'[c][b·P ..< (b+1)·P] + bias[c].
                // (OpenBLAS's small-kernel malloc is avoided inside Gemm.sgemm, for any β.)
                Gemm.sgemm(transA: false, transB: false, m: cout, n: width, k: k,
                           alpha: 1, a: weight, lda: k, b: col, ldb: width, beta: 0, c: stage, ldc: width)
                for b in 0..<n {
                    let yb = y + (first + b) * outputWidth
                    for c in 0..<cout {
                        let src = stage + c * width + b * p, dst = yb + c * p
                        let shift: Float = hasBias ? bias[c] : 0
                        for i in 0..<p { dst[i] = src[i] + shift }
                    }
                }
            }
            first += n
        }
    }

    /// Reported after each sample's im2col and col2im and after each chunk's GEMMs (the
    /// network's, see BackwardProgress).
    public let progress: BackwardProgress

    public func backward(x: UnsafePointer<Float>, y: UnsafePointer<Float>, dy: UnsafePointer<Float>,
                         dx: UnsafeMutablePointer<Float>?, batch: Int, accumulate: Bool) {
        precondition(chunk > 0, "\(name): Network.reserve(batch:) was not called")
        let (cout, k, p) = (output.channels, patch, pixels)
        let col = workspace.columns.pointer, stage = workspace.staging.pointer
        if !accumulate {
            weightGrad.update(repeating: 0, count: cout * k)
            if hasBias { biasGrad.update(repeating: 0, count: cout) }
        }
        var first = 0
        while first < batch {
            let n = min(chunk, batch - first), width = n * p
            // dY'[Cout, n·P]: the chunk's dy with its samples side by side in each channel's row
            // (one sample's dy_b is that already).
            let dyc: UnsafePointer<Float>
            if n == 1 {
                dyc = dy + first * outputWidth
            } else {
                for b in 0..<n {
                    let dyb = dy + (first + b) * outputWidth
                    for c in 0..<cout { (stage + c * width + b * p).update(from: dyb + c * p, count: p) }
                }
                dyc = UnsafePointer(stage)
            }
            // db[c] += Σ dY'[c, :]
            for c in 0..<cout where hasBias {
                let row = dyc + c * width
                var sum: Float = 0
                for i in 0..<width { sum += row[i] }
                biasGrad[c] += sum
            }
            // dW[Cout×K] += dY'[Cout×nP] · colᵀ[nP×K]
            for b in 0..<n {
                im2col(x + (first + b) * inputWidth, col + b * p, rowStride: width)
                progress.report()
            }
            Gemm.sgemm(transA: false, transB: true, m: cout, n: k, k: width,
                       alpha: 1, a: dyc, lda: width, b: col, ldb: width, beta: 1, c: weightGrad, ldc: k)
            progress.report()
            // dcol[K×nP] = Wᵀ[K×Cout] · dY'[Cout×nP] (over col, which dW has used), folded back
            // onto each sample's pixels.
            if let dx {
                Gemm.sgemm(transA: true, transB: false, m: k, n: width, k: cout,
                           alpha: 1, a: weight, lda: k, b: dyc, ldb: width, beta: 0, c: col, ldc: width)
                for b in 0..<n {
                    col2im(col + b * p, rowStride: width, dx + (first + b) * inputWidth)
                    progress.report()
                }
            }
            first += n
        }
    }

    // MARK: - im2col / col2im

    /// The output columns `ow` whose input column `ow·stride + offset` lies inside the image:
    /// `lo..<hi` (empty when none does). Everything outside reads the zero padding.
    @inline(__always)
    private func inside(offset: Int, size: Int, count: Int) -> (lo: Int, hi: Int) {
        let lo = offset >= 0 ? 0 : min((-offset + stride - 1) / stride, count)
        let last = size - 1 - offset          // the largest ow·stride that stays inside
        let hi = last < 0 ? lo : max(lo, min(last / stride + 1, count))
        return (lo, hi)
    }

    /// col[K, P] ← the k×k patches of one sample x[C, H, W] (zeros where a patch overhangs the
    /// image), row r at `col + r · rowStride` (P for a sample alone, n·P for one of a chunk).
    private func im2col(_ x: UnsafePointer<Float>, _ col: UnsafeMutablePointer<Float>, rowStride: Int) {
        let (h, w, oh, ow, s) = (input.height, input.width, output.height, output.width, stride)
        var row = col
        for c in 0..<input.channels {
            let plane = x + c * input.plane
            for ki in 0..<kernel {
                for kj in 0..<kernel {
                    let offset = kj - padding
                    let (lo, hi) = inside(offset: offset, size: w, count: ow)
                    for i in 0..<oh {
                        let dst = row + i * ow
                        let ih = i * s - padding + ki
                        guard ih >= 0 && ih < h else { dst.update(repeating: 0, count: ow); continue }
                        let src = plane + ih * w
                        for j in 0..<lo { dst[j] = 0 }
                        if s == 1 {
                            (dst + lo).update(from: src + lo + offset, count: hi - lo)
                        } else {
                            for j in lo..<hi { dst[j] = src[j * s + offset] }
                        }
                        for j in hi..<ow { dst[j] = 0 }
                    }
                    row += rowStride
                }
            }
        }
    }

    /// dx[C, H, W] ← Σ over the patches that read each pixel of dcol[K, P] (the adjoint of im2col;
    /// rows `rowStride` apart, as there).
    private func col2im(_ col: UnsafePointer<Float>, rowStride: Int, _ dx: UnsafeMutablePointer<Float>) {
        let (h, w, oh, ow, s) = (input.height, input.width, output.height, output.width, stride)
        dx.update(repeating: 0, count: input.count)
        var row = col
        for c in 0..<input.channels {
            let plane = dx + c * input.plane
            for ki in 0..<kernel {
                for kj in 0..<kernel {
                    let offset = kj - padding
                    let (lo, hi) = inside(offset: offset, size: w, count: ow)
                    for i in 0..<oh {
                        let ih = i * s - padding + ki
                        guard ih >= 0 && ih < h else { continue }
                        let src = row + i * ow
                        let dst = plane + ih * w
                        for j in lo..<hi { dst[j * s + offset] += src[j] }
                    }
                    row += rowStride
                }
            }
        }
    }
}

extension Conv2d {
    /// `{ type = "conv2d", channels = N, kernel = k, stride = 1, padding = 0, activation = "relu", bias = true }`.
    public struct Kind: LayerKind, WindowKeys {
        public static let type = "conv2d"
        public static var isSpatial: Bool { true }
        public var channels: Int
        public var kernel: Int
        public var stride: Int
        public var padding: Int
        public var activation: LayerSpec.Activation
        public var bias: Bool

        public init(channels: Int, kernel: Int, stride: Int, padding: Int, activation: LayerSpec.Activation, bias: Bool = true) {
            self.bias = bias
            self.channels = channels
            self.kernel = kernel
            self.stride = stride
            self.padding = padding
            self.activation = activation
        }

        public init(_ l: TOMLReader, isLast: Bool) throws {
            let kernel = try l.int("kernel", min: 1)
            self.init(channels: try l.int("channels", min: 1), kernel: kernel, stride: try l.int("stride", default: 1, min: 1),
                      padding: try l.int("padding", default: 0, min: 0), activation: try l.choice("activation", default: LayerSpec.Activation.relu),
                      bias: try l.bool("bias", default: true))
            // As PyTorch: a window that could lie wholly in the padding sees only zeros.
            guard padding <= kernel / 2 else {
                throw LockstepError.usage("\(l.prefix).padding: \(padding) is more than half the kernel (\(kernel)): use at most \(kernel / 2)")
            }
        }

        public func resolvedKeys(quote: (String) -> String) -> String {
            // `bias` only when off, so the jobs written before the key render as they always did.
            "channels = \(channels), kernel = \(kernel), stride = \(stride), padding = \(padding), activation = \(quote(activation.rawValue))"
                + (bias ? "" : ", bias = false")
        }

        public func parameterCount(input: [Int]) -> Int? {
            let inputChannels = input.count == 3 ? input[0] : 1
            guard let weights = MemoryBudget.product([channels, inputChannels, kernel, kernel]),
                  !weights.addingReportingOverflow(channels).overflow else { return nil }
            return weights + (bias ? channels : 0)
        }

        public func build(input: [Int], with builder: LayerBuilder) throws -> (layer: any Layer, output: [Int]) {
            let conv = Conv2d(name: builder.name("conv"), input: try builder.image(from: input, type: Self.type, kernel: kernel, padding: padding),
                              channels: channels, kernel: kernel, stride: stride, padding: padding,
                              initialization: activation == .relu ? .he : .glorot, bias: bias, progress: builder.progress,
                              workspace: builder.convolution)
            return (conv, conv.output.dimensions)
        }
    }
}
