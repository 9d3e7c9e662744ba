// The job target: a job file (TOML) and `--set` overrides through everything `lockstep train`
// does with them before it touches MPI (TrainingRun.execute, step 1 and 3): parse, resolve,
// validate, the step count, the learning-rate schedule, the resolved config, and the network and
// optimizer for a few small sample shapes.
//
// Input: the job file's text, optionally followed by a NUL byte and lines that each are
//   samples=N    training samples (default 60000, Fashion-MNIST's; 1...10_000_000, as a dataset could hold)
//   ranks=N      world size (default 2; 1...4096)
//   anything else: one `--set` override ("key=value")
// Bytes that are not UTF-8 are repaired (as `Job.load` reads a file).
//
// A LockstepError is a correct outcome. A trap, a hang, a huge allocation, an error of another
// type, or a resolved config (config.toml, which is "valid input to lockstep train itself") that
// does not parse back to the same job is a finding.

import Lockstep

enum JobTarget {
    /// Sample shapes the network is built for: flat, one-channel image, three-channel image
    /// (small, so that each input runs quickly; the shape rules are the same at any size).
    static let sampleShapes: [[Int]] = [[20], [12, 12], [3, 8, 8]]

    static func run(_ bytes: UnsafeBufferPointer<UInt8>) -> String {
        let split = bytes.firstIndex(of: 0) ?? bytes.count
        let text = String(decoding: UnsafeBufferPointer(rebasing: bytes[..<split]), as: UTF8.self)
        var samples = 60_000, ranks = 2
        var overrides: [String] = []
        if split < bytes.count {
            let tail = String(decoding: UnsafeBufferPointer(rebasing: bytes[(split + 1)...]), as: UTF8.self)
            for line in tail.split(separator: "\n", omittingEmptySubsequences: true).map(String.init) {
                if line.hasPrefix("samples="), let n = Int(line.dropFirst(8)) {
                    samples = min(max(n, 1), 10_000_000)
                } else if line.hasPrefix("ranks="), let n = Int(line.dropFirst(6)) {
                    ranks = min(max(n, 1), 4096)
                } else {
                    overrides.append(line)
                }
            }
        }
        if let known = KnownFindings.job(text: text, overrides: overrides) { return "skipped: known finding \(known)" }
        do {
            return try check(text, overrides: overrides, samples: samples, ranks: ranks)
        } catch let error as LockstepError {
            return "rejected: \(error.message)"
        } catch {
            finding("an error that is not a LockstepError: \(type(of: error)): \(error)")
        }
    }

    static func check(_ text: String, overrides: [String], samples: Int, ranks: Int) throws -> String {
        // TrainingRun.execute, step 1: load, resolve, validate.
        let parsed = try Job.parse(text, source: "fuzz.toml", overrides: overrides)
        var job = parsed
        job.resolve(trainSamples: samples)
        try job.validate(worldSize: ranks, trainSamples: samples)

        // Step 3 and the loop's bookkeeping.
        let total = try job.totalSteps(trainSamples: samples)
        let largest = try job.largestBatch(trainSamples: samples)
        let stepsPerEpoch = EpochOrder.stepsPerEpoch(samples: samples, globalBatch: job.batch.global)
        let schedule = try job.learningRateSchedule(trainSamples: samples)
        for step in Set([0, schedule.warmupSteps, total / 2, max(total - 1, 0)]) {
            let lr = schedule.lr(step: step, batch: job.batch.global)
            // The optimizers apply it in float32.
            if !Float(lr).isFinite { finding("learning rate \(lr) at step \(step) of a validated job is not a finite float32") }
        }
        if let decay = job.optimizer.weightDecay, !Float(decay).isFinite {
            finding("optimizer.weight_decay = \(decay) of a validated job is not a finite float32")
        }
        _ = schedule.scaledLR(batch: largest)
        if !job.batch.schedule.isConstant { _ = try job.plan(trainSamples: samples) }
        // The position after any step of the plan (what resume checks a checkpoint against).
        if let plan = try? job.plan(trainSamples: samples) { _ = plan.position(afterSteps: min(total, plan.steps)) }

        // config.toml and every checkpoint's `config`: must read back as the same job.
        let rendered = job.resolvedTOML
        var reread: Job
        do {
            reread = try Job.parse(rendered, source: "fuzz.toml")
        } catch let error as LockstepError {
            finding("the resolved config does not parse back: \(error.message)\n--- resolved config:\n\(rendered)")
        }
        reread.resolve(trainSamples: samples)
        if canonical(reread) != canonical(job) {
            finding("the resolved config parses back to a different job\n--- resolved config:\n\(rendered)\n--- job: \(job)\n--- reread: \(reread)")
        }

        // Step 1's network (for a few small sample shapes) and step 3's optimizer.
        var built: [String] = []
        for shape in sampleShapes {
            // TrainingRun.execute, step 1: [augment] against the samples.
            do {
                try job.validate(sampleShape: shape)
            } catch let error as LockstepError {
                built.append("\(shape): \(error.message)")
                continue
            }
            let size = NetworkSize(inputShape: shape, layers: job.layers)
            if size.verdict == .tooLarge {
                built.append("\(shape): too large, skipped")
                continue
            }
            let network: Network
            do {
                network = try Network(inputShape: shape, layers: job.layers,
                                      extraGradientSlots: job.optimizer.name == .lbfgs ? 3 : 2)
            } catch let error as LockstepError {
                built.append("\(shape): \(error.message)")
                continue
            }
            if case .overflows(let what) = size.verdict {
                finding("Network(inputShape: \(shape)) was built although its size overflows at \(what)")
            }
            guard network.parameterCount == size.parameters else {
                finding("Network(inputShape: \(shape)) has \(network.parameterCount) parameters, the layers say \(size.parameters.map(String.init) ?? "a layer does not fit its input")")
            }
            let optimizer = job.optimizer.make(for: network, seed: job.run.seed, stepsPerEpoch: stepsPerEpoch)
            _ = optimizer.stateBuffers
            if size.isCheap {
                network.initialize(seed: job.run.seed)
                forwardAndBackward(network)
            }
            built.append("\(shape): \(network.parameterCount) parameters")
        }
        return "valid: \(total) steps, largest batch \(largest); " + built.joined(separator: "; ")
    }

    /// The job with what cannot change a run made uniform: an "increasing" schedule that never
    /// grows (growth 1, offset 0, no cap) is rendered as "constant", without its every_epochs.
    static func canonical(_ job: Job) -> Job {
        var job = job
        if job.batch.schedule.isConstant && job.batch.schedule.maxBatch == nil { job.batch.schedule.everyEpochs = 1 }
        return job
    }

    /// One sample forward and backward, to exercise the layers' index arithmetic.
    static func forwardAndBackward(_ network: Network) {
        network.reserve(batch: 1)
        let input = FloatBuffer(count: network.inputWidth)
        for i in 0..<network.inputWidth { input.pointer[i] = Float(i % 7) - 3 }
        let logits = network.forward(input.pointer, batch: 1)
        let dlogits = network.logitGradient
        for i in 0..<network.classes { dlogits[i] = logits[i] * 0.01 }
        network.backward(input.pointer, dlogits: dlogits, batch: 1, accumulate: false)
    }
}

/// What `Network(inputShape:layers:)` would allocate, computed with checked arithmetic before it
/// is built, mirroring its shape rules (LayerBuilder.image, ImageShape.windows, the parameter
/// offsets). The target builds the network unless it would pass the bounds (the fuzzer is not to
/// allocate gigabytes). A size that overflows is built all the same: Network computes every
/// shape before it allocates anything, so it traps (a finding) or throws there, with nothing
/// large allocated. A layer that does not fit ends the walk: the network throws there.
struct NetworkSize {
    /// Parameters (and so gradients) at most; the optimizers hold up to 3 more such buffers.
    static let maxParameters = 1 << 22
    /// Floats per sample of any layer's output at most.
    static let maxWidth = 1 << 22
    /// Parameters and multiply-adds of one sample's forward pass up to which the target also
    /// initialises the network and runs one sample forward and backward.
    static let cheapParameters = 1 << 16
    static let cheapWork = 1 << 18

    enum Verdict: Equatable {
        /// Within the bounds (or throws at a layer that does not fit, before any allocation).
        case fits
        /// A parameter count or layer width past the bounds: skipped.
        case tooLarge
        /// Network's own size arithmetic overflows here.
        case overflows(String)
    }

    private(set) var verdict = Verdict.fits
    /// Parameters when it fits and no layer throws (nil: a layer does not fit its input).
    private(set) var parameters: Int? = 0
    /// Multiply-adds of one sample's forward pass (nil: past Int).
    private(set) var work: Int? = 0
    var isCheap: Bool {
        verdict == .fits && (parameters.map { $0 <= Self.cheapParameters } ?? false) && (work.map { $0 <= Self.cheapWork } ?? false)
    }

    init(inputShape: [Int], layers: [LayerSpec]) {
        var shape = inputShape
        var total = 0
        if walk(layers, shape: &shape, total: &total) { parameters = total }
    }

    private static func mul(_ a: Int, _ b: Int) -> Int? {
        let (r, o) = a.multipliedReportingOverflow(by: b)
        return o ? nil : r
    }
    private static func add(_ a: Int, _ b: Int) -> Int? {
        let (r, o) = a.addingReportingOverflow(b)
        return o ? nil : r
    }
    private static func product(_ xs: [Int]) -> Int? { xs.reduce(1 as Int?) { acc, x in acc.flatMap { mul($0, x) } } }

    /// [C, H, W] of an image shape ([H, W] is one channel); nil for flat samples.
    private static func image(_ shape: [Int]) -> (c: Int, h: Int, w: Int)? {
        switch shape.count {
        case 2: return (1, shape[0], shape[1])
        case 3: return (shape[0], shape[1], shape[2])
        default: return nil
        }
    }

    /// Walks `layers` from `shape`, adding parameters to `total`; false when the walk ends early
    /// (a verdict, or a layer Network throws at: `parameters` is then nil).
    private mutating func walk(_ layers: [LayerSpec], shape: inout [Int], total: inout Int) -> Bool {
        let (mul, add, product) = (Self.mul, Self.add, Self.product)
        func addWork(_ w: Int?) { work = work.flatMap { a in w.flatMap { add(a, $0) } } }
        func addParameters(_ p: Int?, _ at: String) -> Bool {
            guard let p, let t = add(total, p) else { verdict = .overflows("\(at): the parameter count"); return false }
            total = t
            return true
        }
        /// A BatchNorm of `kind` over `c` channels of `plane` values: Network throws for a group
        /// with one value per channel (BatchNorm.Kind.make).
        func batchNorm(_ kind: BatchNorm.Kind, c: Int, plane: Int, _ at: String) -> Bool {
            if kind.statistics == .group && (mul(kind.group, plane) ?? Int.max) < 2 { parameters = nil; return false }
            return addParameters(mul(2, c), at)
        }

        for (index, spec) in layers.enumerated() {
            let at = "model.layers.\(index) (\(spec.type)) on \(shape)"
            switch spec.type {
            case "dense":
                let bias = (spec.kind as? Dense.Kind)?.bias ?? true
                guard let inputs = product(shape) else { verdict = .overflows("\(at): the input width"); return false }
                guard let weights = mul(inputs, spec.units) else { verdict = .overflows("\(at): the weight count"); return false }
                guard addParameters(add(weights, bias ? spec.units : 0), at) else { return false }
                addWork(weights)
                shape = [spec.units]
            case "conv2d", "maxpool", "avgpool":
                guard let (c, h, w) = Self.image(shape) else { parameters = nil; return false }   // Network throws here (not an image).
                guard let twoPad = mul(2, spec.padding), let side = add(min(h, w), twoPad) else {
                    verdict = .overflows("\(at): the padded side"); return false
                }
                guard spec.kernel <= side else { parameters = nil; return false }   // Network throws here.
                guard let ph = add(h, twoPad), let pw = add(w, twoPad) else { verdict = .overflows("\(at): the padded image"); return false }
                let oh = (ph - spec.kernel) / spec.stride + 1
                let ow = (pw - spec.kernel) / spec.stride + 1
                let window = mul(spec.kernel, spec.kernel)
                if spec.type == "conv2d" {
                    let bias = (spec.kind as? Conv2d.Kind)?.bias ?? true
                    guard let window, let patch = mul(c, window), let weights = mul(spec.channels, patch) else {
                        verdict = .overflows("\(at): the weight count"); return false
                    }
                    guard addParameters(add(weights, bias ? spec.channels : 0), at) else { return false }
                    addWork(mul(oh, ow).flatMap { mul(weights, $0) })
                    shape = [spec.channels, oh, ow]
                } else {
                    addWork(product([c, oh, ow]).flatMap { cells in window.flatMap { mul(cells, $0) } })
                    shape = [c, oh, ow]
                }
            case "batchnorm":
                guard let kind = spec.kind as? BatchNorm.Kind else { parameters = nil; return false }
                let (c, plane) = Self.image(shape).map { ($0.c, $0.h * $0.w) } ?? (product(shape) ?? Int.max, 1)
                guard batchNorm(kind, c: c, plane: plane, at) else { return false }
                addWork(product(shape))
            case "globalavgpool":
                guard let (c, _, _) = Self.image(shape) else { parameters = nil; return false }
                addWork(product(shape))
                shape = [c]
            case "dropout":
                addWork(product(shape))
            case "residual":
                guard let kind = spec.kind as? Residual.Kind, let (c, h, w) = Self.image(shape) else { parameters = nil; return false }
                let output: (c: Int, h: Int, w: Int)
                let project: Bool
                switch kind.form {
                case let .basic(channels, stride, _):
                    // conv3×3 (stride, padding 1) – BN – conv3×3 – BN, no biases.
                    let (oh, ow) = ((h - 1) / stride + 1, (w - 1) / stride + 1)
                    guard let w1 = product([channels, c, 9]), let w2 = product([channels, channels, 9]),
                          addParameters(add(w1, w2), at) else { verdict = .overflows("\(at): the weight count"); return false }
                    guard batchNorm(kind.norm, c: channels, plane: oh * ow, at), batchNorm(kind.norm, c: channels, plane: oh * ow, at) else { return false }
                    addWork(product([w1 + w2, oh, ow]))
                    output = (channels, oh, ow)
                    project = stride != 1 || channels != c
                case let .layers(inner, projection):
                    var innerShape = [c, h, w]
                    guard walk(inner, shape: &innerShape, total: &total) else { return false }
                    guard let out = innerShape.count == 3 ? Self.image(innerShape) : nil else { parameters = nil; return false }
                    if !projection && (out.c, out.h, out.w) != (c, h, w) { parameters = nil; return false }
                    output = out
                    project = projection
                }
                if project {
                    // Network throws when no 1×1 stride lands on the main path's output.
                    guard (1...max(h, 1)).contains(where: { (h - 1) / $0 + 1 == output.h && (w - 1) / $0 + 1 == output.w }) else {
                        parameters = nil; return false
                    }
                    guard addParameters(mul(output.c, c), at), batchNorm(kind.norm, c: output.c, plane: output.h * output.w, at) else { return false }
                }
                shape = [output.c, output.h, output.w]
            default:
                parameters = nil
                return false
            }
            guard let width = product(shape) else { verdict = .overflows("\(at): the output width"); return false }
            if width > Self.maxWidth || total > Self.maxParameters { verdict = .tooLarge; return false }
        }
        return true
    }
}
