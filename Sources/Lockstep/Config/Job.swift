// A job: the validated, resolved contents of a job file (TOML) plus `--set` overrides.
// Key names here are the public interface (docs/design.md §6 "Jobs and runs"); docs/jobs.md lists them.

import TOMLKit

public struct Job: Equatable, Sendable {
    public struct Run: Equatable, Sendable {
        public var name: String
        public var seed: UInt64
        public var epochs: Int
        /// Total optimizer steps; when set it wins over `epochs`.
        public var steps: Int?
        /// The run directory.
        public var out: String
        public var logEvery: Int
        /// Evaluate every this many steps; 0 means at the end of every epoch.
        public var evalEvery: Int
        /// Checkpoint every this many steps; 0 means at the end of every epoch.
        public var checkpointEvery: Int
        public var keepCheckpoints: Int
        /// Also evaluate on the training split at every evaluation (for the train/test gap).
        public var evalTrain: Bool
        /// Compute the full-training-set gradient norm every this many epochs (0: never).
        public var fullGradNormEvery: Int
        /// What a non-finite loss does: end the run, or skip the step.
        public var nonfinite: NonFinitePolicy
        /// Seconds a rank may go without reaching a collective before the job is aborted (0: never).
        public var stallTimeout: Double
        /// `run.tensorboard`: rank 0 also writes the logged scalars as TensorBoard events.
        public var tensorboard = false
        /// `run.checkpoint_minutes`: a checkpoint once this many minutes passed since the last one (0: off).
        public var checkpointMinutes = 0.0
        /// `run.noise_scale`: log the gradient noise scale every logged step (docs/algorithms.md §2.6);
        /// without GSNR the step folds `gsnr.groups_per_rank` groups per rank and updates unchanged.
        public var noiseScale: Bool = false
    }

    public struct Data: Equatable, Sendable {
        public var file: String
        public var trainX, trainY, testX, testY: String
        public var normalization: Normalization
        /// `data.load`: every rank holds the splits in memory, or streams rows from the file (docs/data.md).
        public var load: DataLoad = .memory
        /// `data.cache_mb`: HDF5's chunk cache per streamed split (chunked files only).
        public var cacheMegabytes: Double = 64
        /// `data.file_locking`: HDF5's file locking when opening the data (nil: the library's
        /// default, which honours HDF5_USE_FILE_LOCKING).
        public var fileLocking: Bool?
        /// `data.validation`: training rows held out as the validation split (docs/data.md).
        public var validation: HeldOut = .none
        /// `data.validation_x`, `data.validation_y`: a validation split stored in the file, used
        /// when both datasets exist.
        public var validationX = "/validation/x", validationY = "/validation/y"
        /// Whether the job named the validation datasets (then both must exist).
        public var validationPathsGiven = false
    }

    /// `data.validation`: none, the last N training rows, or the last ⌈f·N⌉ of them.
    public enum HeldOut: Equatable, Sendable {
        case none
        case rows(Int)
        case fraction(Double)
    }

    /// How the ranks hold a dataset's splits.
    public enum DataLoad: String, Sendable, CaseIterable {
        /// Each rank reads the whole file into memory once.
        case memory
        /// Each rank reads from the file only the rows it uses, as it uses them.
        case stream
        /// One copy per node in MPI-3 shared memory, read by the node's ranks a slice each.
        case node
    }

    public struct Batch: Equatable, Sendable {
        /// The global batch: samples per optimizer step over all ranks together. With `full`
        /// it is the training set's size (0 until `resolve(trainSamples:)`).
        public var global: Int
        /// `batch.global = "full"`: every step uses the whole training set, each rank a
        /// contiguous slice (any rank count; no data order).
        public var full: Bool
        /// Per-rank micro-batch for gradient accumulation (nil: the rank's whole share at once).
        public var micro: Int?
        /// The batch of each epoch (constant unless `batch.schedule = "increasing"`).
        public var schedule: BatchSchedule
    }

    public struct Schedule: Equatable, Sendable {
        public var scaling: LearningRateSchedule.Scaling
        public var baseBatch: Int
        public var warmup: LearningRateSchedule.Warmup
        public var warmupSteps: Int
        public var warmupEpochs: Int
        public var decay: LearningRateSchedule.Decay
        public var decayEpochs: [Int]
        public var decayFactor: Double
        public var power: Double
        public var minLR: Double
    }

    public var run: Run
    public var data: Data
    public var layers: [LayerSpec]
    public var batch: Batch
    public var optimizer: Optimizer
    public var schedule: Schedule
    /// GSNR-corrected updates (VR-<optimizer>); nil when `[gsnr] enabled` is false.
    public var gsnr: GSNRSettings?
    /// `run.noise_scale` without GSNR: the groups of `[gsnr]` folded for the statistics only.
    public var noiseScaleGroups: GSNRSettings?
    /// `[exchange] bucket_mb`: bucket size of the overlapped gradient exchange (0: one allreduce after backward).
    public var bucketMegabytes: Double
    /// `[augment]`: random crop and flip of each minibatch training sample (identity by default).
    public var augment: Augmentation
    /// `[loss] label_smoothing`: ε of the training loss's smoothed target (0: plain cross-entropy).
    public var labelSmoothing: Double

    /// Parses and validates TOML `text` (from `source`, for messages) with `unsets` ("key",
    /// removed first) and `overrides` ("key=value").
    public static func parse(_ text: String, source: String, overrides: [String] = [], unsets: [String] = []) throws -> Job {
        let table: TOMLTable
        try TOMLGuard.check(text, source: source)
        do {
            table = try TOMLTable(string: text)
        } catch let error as TOMLParseError {
            throw LockstepError.usage("\(source):\(error.source.begin.line):\(error.source.begin.column): TOML syntax error: \(error.description)")
        } catch {
            throw LockstepError.usage("\(source): TOML syntax error: \(error)")
        }
        for key in unsets { try Overrides.remove(key, from: table) }
        for override in overrides { try Overrides.apply(override, to: table) }
        return try Job(TOMLReader(table, source: source), defaultName: Self.stem(of: source))
    }

    /// Reads the job file at `path`, which must be UTF-8 (TOML's encoding): a byte that is not
    /// is a syntax error at its line, never a replacement character in a value.
    public static func load(_ path: String, overrides: [String] = [], unsets: [String] = []) throws -> Job {
        switch readUTF8File(path) {
        case .unreadable:
            throw LockstepError.usage("\(path): no such readable job file")
        case .invalid(let byte, let offset, let line):
            let hex = String(byte, radix: 16)
            throw LockstepError.usage("\(path):\(line): not valid UTF-8 (byte 0x\(hex.count < 2 ? "0" + hex : hex) at offset \(offset)): save the file as UTF-8")
        case .text(let text):
            return try parse(text, source: path, overrides: overrides, unsets: unsets)
        }
    }

    private init(_ root: TOMLReader, defaultName: String) throws {
        let r = try root.section("run")
        let name = try r.string("name", default: defaultName)
        let seed = try r.int("seed", default: 0, min: 0)
        run = Run(
            name: name, seed: UInt64(seed),
            epochs: try r.int("epochs", default: 1, min: 1),
            steps: try r.optionalInt("steps", min: 1),
            out: try r.string("out", default: "runs/\(name)"),
            logEvery: try r.int("log_every", default: 10, min: 1),
            evalEvery: try r.int("eval_every", default: 0, min: 0),
            checkpointEvery: try r.int("checkpoint_every", default: 0, min: 0),
            keepCheckpoints: try r.int("keep_checkpoints", default: 3, min: 1),
            evalTrain: try r.bool("eval_train", default: false),
            fullGradNormEvery: try r.int("full_grad_norm_every", default: 0, min: 0),
            nonfinite: try r.choice("nonfinite", default: NonFinitePolicy.abort),
            stallTimeout: try r.double("stall_timeout", default: 900, min: 0),
            tensorboard: try r.bool("tensorboard", default: false),
            checkpointMinutes: try r.double("checkpoint_minutes", default: 0, min: 0),
            noiseScale: try r.bool("noise_scale", default: false))
        if run.out.isEmpty {
            throw LockstepError.usage("run.out is empty: set it to the run directory, e.g. run.out = \"runs/\(name)\" (the default)")
        }
        try r.finish()

        let d = try root.section("data")
        data = Data(
            file: try d.string("file"),
            trainX: try d.string("train_x", default: "/train/x"),
            trainY: try d.string("train_y", default: "/train/y"),
            testX: try d.string("test_x", default: "/test/x"),
            testY: try d.string("test_y", default: "/test/y"),
            normalization: try d.choice("normalization", default: Normalization.scale),
            load: try d.choice("load", default: DataLoad.memory),
            cacheMegabytes: try d.double("cache_mb", default: 64, min: 0, max: 1_000_000),
            fileLocking: d.has("file_locking") ? try d.bool("file_locking", default: true) : nil,
            validation: try Self.heldOut(d),
            validationX: try d.string("validation_x", default: "/validation/x"),
            validationY: try d.string("validation_y", default: "/validation/y"),
            validationPathsGiven: d.has("validation_x") || d.has("validation_y"))
        try d.finish()

        let m = try root.section("model")
        let layerReaders = try m.tables("layers")
        guard !layerReaders.isEmpty else { throw LockstepError.usage("\(m.prefix).layers: needs at least one layer") }
        layers = try layerReaders.enumerated().map { index, l in
            try LayerSpec(l, isLast: index == layerReaders.count - 1)
        }
        guard layers.last!.units >= 2 else {
            throw LockstepError.usage("\(m.prefix).layers: the last layer's units are the number of classes and must be at least 2")
        }
        try m.finish()

        let b = try root.section("batch")
        let globalOrFull = try b.intOrWord("global", "full", min: 1)
        let global = globalOrFull ?? 0
        var batchSchedule = BatchSchedule(base: global)
        switch try b.string("schedule", default: "constant") {
        case "constant":
            for key in ["growth", "every_epochs", "offset", "max"] where b.has(key) {
                throw LockstepError.usage("\(b.prefix).\(key): only used with batch.schedule = \"increasing\"")
            }
        case "increasing":
            if globalOrFull == nil {
                throw LockstepError.usage("\(b.prefix).global = \"full\" cannot grow: use batch.schedule = \"constant\" or a number for batch.global")
            }
            batchSchedule.growth = try b.int("growth", default: 2, min: 1)
            batchSchedule.everyEpochs = try b.int("every_epochs", default: 1, min: 1)
            batchSchedule.offset = try b.int("offset", default: 0, min: 0)
            batchSchedule.maxBatch = try b.optionalInt("max", min: 1)
        case let other:
            throw LockstepError.usage("\(b.prefix).schedule: \"\(other)\" is not one of \"constant\", \"increasing\"")
        }
        batch = Batch(global: global, full: globalOrFull == nil, micro: try b.optionalInt("micro", min: 1), schedule: batchSchedule)
        try b.finish()

        optimizer = try Optimizer(try root.section("optimizer"))
        if optimizer.name == .rsgd && optimizer.rsgd.clock == .epoch && !batch.schedule.isConstant {
            // R-SGD's epoch clock counts steps of batch.global; later epochs of an increasing
            // schedule have fewer steps, so it would lag the real epoch.
            throw LockstepError.usage("optimizer.clock = \"epoch\" with batch.schedule = \"increasing\": R-SGD's epoch clock assumes a constant batch; use optimizer.clock = \"step\" (and scale optimizer.gamma per step)")
        }

        let s = try root.section("schedule")
        schedule = Schedule(
            scaling: try s.choice("scaling", default: LearningRateSchedule.Scaling.none),
            baseBatch: try s.int("base_batch", default: batch.global, min: 1),
            warmup: try s.choice("warmup", default: LearningRateSchedule.Warmup.gradual),
            warmupSteps: try s.int("warmup_steps", default: 0, min: 0),
            warmupEpochs: try s.int("warmup_epochs", default: 0, min: 0),
            decay: try s.choice("decay", default: LearningRateSchedule.Decay.constant),
            decayEpochs: try s.has("decay_epochs") ? s.ints("decay_epochs", min: 1) : [],
            decayFactor: try s.double("decay_factor", default: 0.1, min: 0, max: 1),
            power: try s.double("power", default: 2, min: 0),
            minLR: try s.double("min_lr", default: 0, min: 0))
        if schedule.warmupSteps > 0 && schedule.warmupEpochs > 0 {
            throw LockstepError.usage("\(s.prefix): set warmup_steps or warmup_epochs, not both")
        }
        if schedule.decay == .step && schedule.decayEpochs.isEmpty {
            throw LockstepError.usage("\(s.prefix).decay_epochs: decay = \"step\" needs the epochs to decay at, e.g. decay_epochs = [30, 60]")
        }
        try s.finish()

        let g = try root.section("gsnr")
        let gsnrEnabled = try g.bool("enabled", default: false)
        // A disabled section is validated all the same: switching it on is one --set away.
        var settings = GSNRSettings()
        settings.groupsPerRank = try g.int("groups_per_rank", default: 1, min: 1)
        settings.gamma = try g.double("gamma", default: 0.1, min: 0, max: 1)
        settings.epsilon = try g.has("eps") ? g.double("eps", min: 0) : nil
        settings.epsilonRelative = try g.double("eps_relative", default: 1e-8, min: 0)
        settings.beta3 = try g.double("beta3", default: 0.9, min: 0, max: 0.999999)
        settings.smoothing = try g.has("smoothing") ? g.double("smoothing", min: 0, max: 0.999999) : nil
        settings.apply = try g.choice("apply", default: GSNRSettings.Apply.gradient)
        if settings.gamma == 0 {
            throw LockstepError.usage("\(g.prefix).gamma: must be greater than 0 (the paper uses 0.1; 1 recovers the base optimizer)")
        }
        if settings.epsilon == 0 {
            // With ε = 0 an element whose gradient is 0 in every group (a dead unit, an always-zero
            // pixel) gives r = 0/0 and poisons its tensor's mean.
            throw LockstepError.usage("\(g.prefix).eps: must be greater than 0 (or leave it unset for eps_relative = 1e-8)")
        }
        if settings.epsilon != nil && g.has("eps_relative") {
            throw LockstepError.usage("\(g.prefix): set eps (absolute) or eps_relative (× each tensor's mean ḡ²), not both")
        }
        if settings.epsilonRelative == 0 {
            throw LockstepError.usage("\(g.prefix).eps_relative: must be greater than 0 (default 1e-8; or set an absolute gsnr.eps)")
        }
        if settings.smoothing != nil && g.has("beta3") {
            throw LockstepError.usage("\(g.prefix): set smoothing (every base) or beta3 (the Adam family's default smoothing), not both")
        }
        gsnr = gsnrEnabled ? settings : nil
        if gsnrEnabled && optimizer.name == .lbfgs {
            throw LockstepError.usage("\(g.prefix).enabled: GSNR corrects first-order updates; L-BFGS has none: set gsnr.enabled = false or choose another optimizer")
        }
        if gsnrEnabled && batch.full {
            throw LockstepError.usage("\(g.prefix).enabled: GSNR needs equal gradient groups, which batch.global = \"full\" does not give: set a numeric batch.global or gsnr.enabled = false")
        }
        if run.noiseScale && !gsnrEnabled {
            // The same groups and fold as GSNR, the multiplier off: the update stays the base's.
            var groups = GSNRSettings()
            groups.groupsPerRank = settings.groupsPerRank
            groups.multiplies = false
            noiseScaleGroups = groups
            if optimizer.name == .lbfgs || batch.full {
                let why = optimizer.name == .lbfgs ? "optimizer.name = \"lbfgs\"" : "batch.global = \"full\""
                throw LockstepError.usage("run.noise_scale: the noise scale comes from the gradient groups of minibatch first-order steps, not \(why): set run.noise_scale = false")
            }
        } else {
            noiseScaleGroups = nil
        }
        try g.finish()

        let e = try root.section("exchange")
        bucketMegabytes = try e.double("bucket_mb", default: 0, min: 0, max: 1e6)
        if bucketMegabytes > 0 {
            // L-BFGS allreduces each evaluation into its own buffer, and a full batch is chunked
            // over many passes: neither has one last backward to overlap with.
            let why = optimizer.name == .lbfgs ? "optimizer.name = \"lbfgs\"" : batch.full ? "batch.global = \"full\"" : nil
            if let why {
                throw LockstepError.usage("\(e.prefix).bucket_mb: the bucketed exchange overlaps minibatch steps of first-order optimizers, not \(why): set exchange.bucket_mb = 0")
            }
        }
        try e.finish()

        let a = try root.section("augment")
        augment = Augmentation(cropPadding: try a.int("crop_padding", default: 0, min: 0),
                               flip: try a.bool("flip", default: false))
        if batch.full, let key = augment.firstSetKey {
            // A full batch is read in contiguous passes straight from the split (and L-BFGS on it
            // needs one fixed objective): there is no per-step sample to draw for.
            throw LockstepError.usage("\(key): augmentation is drawn per minibatch sample, and batch.global = \"full\" trains on the split as it is: remove the [augment] keys or set a numeric batch.global")
        }
        // The image side is known once the data is open: validate(sampleShape:).
        try a.finish()

        let l = try root.section("loss")
        labelSmoothing = try l.double("label_smoothing", default: 0, min: 0)
        if labelSmoothing >= 1 {
            throw LockstepError.usage("\(l.prefix).label_smoothing = \(labelSmoothing): must be less than 1 (at 1 the target is uniform whatever the label): use a value in [0, 1), e.g. 0.1")
        }
        try l.finish()

        try root.finish()
    }

    /// Checks what depends on the training samples' shape: augmentation needs images ([H, W] or
    /// [C, H, W]) whose sides are larger than the crop padding.
    public func validate(sampleShape: [Int]) throws {
        guard let key = augment.firstSetKey else { return }
        guard let image = Augmentation.image(sampleShape) else {
            throw LockstepError.usage("\(key): augmentation needs image samples ([H, W] or [C, H, W]), and \(data.file) has samples of shape \(sampleShape): remove the [augment] keys or store the features as images")
        }
        let side = min(image.height, image.width)
        if augment.cropPadding >= side {
            throw LockstepError.usage("augment.crop_padding = \(augment.cropPadding): must be less than the image side \(side) (samples \(sampleShape)): use at most \(side - 1)")
        }
    }

    /// The gradient groups each step folds: GSNR's, or run.noise_scale's (statistics only); nil: plain steps.
    public var gradientGroups: GSNRSettings? { gsnr ?? noiseScaleGroups }

    /// The EMA coefficient of the GSNR multiplier: `gsnr.smoothing`, else β3 with the Adam-family bases, else 0.
    public var gsnrSmoothing: Double {
        let gsnr = self.gsnr ?? GSNRSettings()
        return gsnr.smoothing ?? ([.adam, .adamw, .lamb].contains(optimizer.name) ? gsnr.beta3 : 0)
    }

    /// Whether the GSNR multiplier is smoothed (the "GSNR momentum"): `gsnrSmoothing` > 0.
    public var gsnrMomentum: Bool { gsnrSmoothing > 0 }

    /// The first line's note on few groups: the per-tensor normalisation of r is ill-posed with k < 8
    /// (k = 2, 3 stay allowed); nil otherwise.
    public func gsnrGroupsWarning(worldSize: Int) -> String? {
        guard let gsnr, gsnr.multiplies else { return nil }
        let k = gsnr.groupsPerRank * worldSize
        return k < 8 ? "warning: GSNR over only \(k) gradient groups: r and its per-tensor mean are noisy below 8 (raise gsnr.groups_per_rank)" : nil
    }

    /// Fills in what `batch.global = "full"` means for this training set (its size), here and
    /// wherever the batch is the default (the rate-scaling base batch). Call before anything else
    /// reads the batch.
    public mutating func resolve(trainSamples: Int) {
        guard batch.full else { return }
        batch.global = trainSamples
        batch.schedule.base = trainSamples
        if schedule.baseBatch == 0 { schedule.baseBatch = trainSamples }
    }

    /// Checks what depends on the launch, for the batch of every epoch the run touches: the world
    /// size and the training set's size.
    public func validate(worldSize: Int, trainSamples: Int) throws {
        try validateBatchShapes(worldSize: worldSize, trainSamples: trainSamples)
        // Per rank and batch of the run: the rows of one pass (BatchNorm groups must divide it).
        let segments = batch.full ? [] : try plan(trainSamples: trainSamples).segments
        try validateBatchNorms(passes: Set([batch.global] + segments.map(\.batch)).sorted().map { b in
            let pass = batch.micro ?? b / worldSize / (gradientGroups?.groupsPerRank ?? 1)
            return (pass, "batch \(b) over \(worldSize) rank(s)" + (batch.micro != nil ? " in micro-batches" : gradientGroups != nil ? " in GSNR groups" : ""))
        })
    }

    private func validateBatchShapes(worldSize: Int, trainSamples: Int) throws {
        if batch.full {
            precondition(batch.global == trainSamples, "resolve(trainSamples:) first")
            guard worldSize <= trainSamples else {
                throw LockstepError.usage("batch.global = \"full\": \(worldSize) ranks for \(trainSamples) training samples leaves some rank without data: use at most \(trainSamples) ranks")
            }
            return
        }
        let segments = try plan(trainSamples: trainSamples).segments
        for b in Set([batch.global] + segments.map(\.batch)).sorted() {
            let first = segments.first { $0.batch == b }?.firstEpoch ?? 0
            let which = b == batch.global ? "batch.global = \(b)" : "the batch schedule's batch \(b) (epoch \(first))"
            // Size first: a batch past the data set may be past Int arithmetic too.
            guard b <= trainSamples else {
                throw LockstepError.usage("\(which) is larger than the \(trainSamples) training samples in \(data.file): lower it (or cap it with batch.max)")
            }
            guard b % worldSize == 0 else {
                let lower = b / worldSize * worldSize
                throw LockstepError.usage("\(which) is not divisible by the \(worldSize) ranks: use a multiple of \(worldSize) (e.g. \(max(lower, worldSize)) or \(lower + worldSize)) or another rank count")
            }
            let share = b / worldSize
            if let micro = batch.micro, share % micro != 0 {
                throw LockstepError.usage("batch.micro = \(micro) does not divide the per-rank share \(share) of \(which) over \(worldSize) ranks: use a divisor of \(share)")
            }
            if let gsnr = gradientGroups {
                let (groups, overflow) = worldSize.multipliedReportingOverflow(by: gsnr.groupsPerRank)
                guard !overflow, groups <= share * worldSize else {
                    throw LockstepError.usage("gsnr.groups_per_rank = \(gsnr.groupsPerRank) is more groups than the \(share) samples per rank of \(which): use a divisor of \(share)")
                }
                guard groups >= 2 else {
                    throw LockstepError.usage("gsnr.groups_per_rank = \(gsnr.groupsPerRank) on \(worldSize) rank(s) gives \(groups) gradient group; \(gsnr.multiplies ? "GSNR" : "run.noise_scale") needs at least 2 gradient groups: set gsnr.groups_per_rank = 2 or more, or run on more ranks")
                }
                guard share % gsnr.groupsPerRank == 0 else {
                    throw LockstepError.usage("gsnr.groups_per_rank = \(gsnr.groupsPerRank) does not divide the per-rank share \(share) of \(which): use a divisor of \(share)")
                }
                if let micro = batch.micro, (share / gsnr.groupsPerRank) % micro != 0 {
                    throw LockstepError.usage("batch.micro = \(micro) does not divide the GSNR group size \(share / gsnr.groupsPerRank) (\(which) / ranks / gsnr.groups_per_rank): use a divisor of it")
                }
            }
        }
    }

    /// The batch and steps of every epoch the run touches, as runs of equal batches.
    public func plan(trainSamples: Int) throws -> BatchPlan {
        try BatchPlan(batch.schedule, samples: trainSamples, epochs: run.epochs, totalSteps: run.steps)
    }

    /// The largest global batch of the run (buffers are sized for it).
    public func largestBatch(trainSamples: Int) throws -> Int {
        max(try plan(trainSamples: trainSamples).largestBatch, batch.global)
    }

    /// Steps in the whole run: `run.steps`, or `run.epochs` full epochs at each epoch's batch.
    public func totalSteps(trainSamples: Int) throws -> Int {
        if let steps = run.steps { return steps }
        return try plan(trainSamples: trainSamples).steps
    }

    /// The learning-rate schedule, with warmup epochs converted to steps.
    public func learningRateSchedule(trainSamples: Int) throws -> LearningRateSchedule {
        var lr = LearningRateSchedule(baseLR: optimizer.lr, baseBatch: schedule.baseBatch, totalSteps: try totalSteps(trainSamples: trainSamples))
        lr.scaling = schedule.scaling
        lr.warmup = schedule.warmup
        let warmupPlan = schedule.warmupEpochs == 0 ? nil
            : try BatchPlan(batch.schedule, samples: trainSamples, epochs: schedule.warmupEpochs, totalSteps: nil)
        let (warmupSteps, overflow) = schedule.warmupSteps.addingReportingOverflow(warmupPlan?.steps ?? 0)
        guard !overflow else {
            throw LockstepError.usage("schedule.warmup_steps = \(schedule.warmupSteps) is too large: use at most the run's length")
        }
        lr.warmupSteps = warmupSteps
        lr.decay = schedule.decay
        lr.decayEpochs = schedule.decayEpochs
        lr.decayFactor = schedule.decayFactor
        lr.power = schedule.power
        lr.minLR = schedule.minLR
        lr.stepsPerEpoch = EpochOrder.stepsPerEpoch(samples: trainSamples, globalBatch: batch.global)
        return lr
    }

    static func stem(of path: String) -> String {
        let file = path.split(separator: "/").last.map(String.init) ?? path
        return file.hasSuffix(".toml") ? String(file.dropLast(5)) : file
    }
}

extension LayerSpec {
    /// One `[model] layers` entry, read by its kind's descriptor (LayerKinds). Only the keys of
    /// its `type` are accepted. Whether the layer fits its input is checked when the network is
    /// built (Network(inputShape:)), where the sample shape is known.
    init(_ l: TOMLReader, isLast: Bool) throws {
        let type = try l.string("type", default: "dense")
        guard let kind = LayerKinds.named(type) else {
            throw LockstepError.usage("\(l.prefix).type: \"\(type)\" is not a layer type; use one of \(LayerSpec.types.map { "\"\($0)\"" }.joined(separator: ", "))")
        }
        self.init(try kind.init(l, isLast: isLast))
        if isLast && type != "dense" {
            throw LockstepError.usage("\(l.prefix).type: the last layer gives the class scores and must be \"dense\", not \"\(type)\": add { type = \"dense\", units = <classes> } at the end")
        }
        try l.finish()
    }
}
