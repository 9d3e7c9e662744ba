// Job.parse: documented defaults, one-line usage errors naming the key, --set overrides, validate, resolvedTOML.
import Testing
import Lockstep

@Suite struct JobConfigTests {
    static let minimal = """
        [data]
        file = "data/fashion.h5"

        [model]
        layers = [{ units = 16 }, { units = 10 }]

        [batch]
        global = 128

        [optimizer]
        lr = 0.1
        """

    static func parse(_ text: String = minimal, overrides: [String] = []) throws -> Job {
        try Job.parse(text, source: "jobs/mlp.toml", overrides: overrides)
    }

    /// `minimal` with `line` appended to the end of `[section]` (sections appear once each).
    static func with(_ section: String, _ line: String) -> String {
        if minimal.contains("[\(section)]\n") {
            return minimal.replacingOccurrences("[\(section)]\n", "[\(section)]\n\(line)\n")
        }
        return minimal + "\n\n[\(section)]\n\(line)\n"
    }

    @Test func minimalJobGetsDocumentedDefaults() throws {
        let job = try Self.parse()
        #expect(job.run.name == "mlp", "the name defaults to the job file's stem")
        #expect(job.run.seed == 0)
        #expect(job.run.epochs == 1)
        #expect(job.run.steps == nil)
        #expect(job.run.out == "runs/mlp")
        #expect(job.run.logEvery == 10)
        #expect(job.run.evalEvery == 0)
        #expect(job.run.checkpointEvery == 0)
        #expect(job.run.keepCheckpoints == 3)
        #expect(job.data.file == "data/fashion.h5")
        #expect([job.data.trainX, job.data.trainY, job.data.testX, job.data.testY] == ["/train/x", "/train/y", "/test/x", "/test/y"])
        #expect(job.data.normalization == .scale)
        #expect(job.layers == [LayerSpec(type: "dense", units: 16, activation: .relu),
                               LayerSpec(type: "dense", units: 10, activation: .identity)],
                "hidden layers default to relu, the logit layer to identity")
        #expect(job.batch.global == 128)
        #expect(job.batch.micro == nil)
        #expect(job.optimizer.name == .sgd)
        #expect(job.optimizer.lr == 0.1)
        #expect(job.optimizer.sgd == SGDSettings())
        #expect(job.optimizer.sgd.momentum == 0 && !job.optimizer.sgd.nesterov)
        #expect(job.optimizer.sgd.weightDecay == 0 && !job.optimizer.sgd.decayBiases)
        #expect(job.schedule.scaling == .none)
        #expect(job.schedule.baseBatch == 128, "base_batch defaults to batch.global")
        #expect(job.schedule.warmup == .gradual)
        #expect(job.schedule.warmupSteps == 0 && job.schedule.warmupEpochs == 0)
        #expect(job.schedule.decay == .constant)
        #expect(job.schedule.decayEpochs.isEmpty && job.schedule.decayFactor == 0.1 && job.schedule.power == 2)
        #expect(job.schedule.minLR == 0)
        #expect(job.augment == .none && job.augment.isIdentity)
        #expect(job.labelSmoothing == 0)
    }

    // MARK: [augment] and [loss]

    @Test func augmentAndLossParseAndRoundTrip() throws {
        let job = try Self.parse(Self.minimal + "\n[augment]\ncrop_padding = 4\nflip = true\n\n[loss]\nlabel_smoothing = 0.1\n")
        #expect(job.augment == Augmentation(cropPadding: 4, flip: true))
        #expect(job.labelSmoothing == 0.1)
        #expect(job.resolvedTOML.contains("[augment]\ncrop_padding = 4\nflip = true\n"))
        #expect(job.resolvedTOML.contains("[loss]\nlabel_smoothing = 0.1\n"))
        #expect(try Job.parse(job.resolvedTOML, source: "x.toml") == job)
        // The defaults are written too, so a stored config says what the run did.
        let plain = try Self.parse()
        #expect(plain.resolvedTOML.contains("[augment]\ncrop_padding = 0\nflip = false\n"))
        #expect(plain.resolvedTOML.contains("[loss]\nlabel_smoothing = 0.0\n"))
        // --set reaches them.
        let set = try Self.parse(overrides: ["augment.flip=true", "loss.label_smoothing=0.25"])
        #expect(set.augment == Augmentation(flip: true) && set.labelSmoothing == 0.25)
        // Any value of ε in [0, 1) is accepted.
        for eps in ["0", "0.5", "0.999"] { #expect(throws: Never.self) { try Self.parse(overrides: ["loss.label_smoothing=\(eps)"]) } }
    }

    @Test func badAugmentAndLossKeysAreOneLineUsageErrors() {
        expectUsage(["augment.crop_padding", "at least 0", "-1"]) { try Self.parse(overrides: ["augment.crop_padding=-1"]) }
        expectUsage(["augment.crop_padding", "integer"]) { try Self.parse(overrides: ["augment.crop_padding=1.5"]) }
        expectUsage(["augment.flip", "true or false"]) { try Self.parse(overrides: ["augment.flip=1"]) }
        expectUsage(["augment.flipp", "did you mean augment.flip"]) { try Self.parse(overrides: ["augment.flipp=true"]) }
        expectUsage(["augment.crop", "unknown key"]) { try Self.parse(Self.with("augment", "crop = 4")) }
        expectUsage(["loss.label_smoothing", "less than 1", "[0, 1)"]) { try Self.parse(overrides: ["loss.label_smoothing=1"]) }
        expectUsage(["loss.label_smoothing", "less than 1"]) { try Self.parse(overrides: ["loss.label_smoothing=2.5"]) }
        expectUsage(["loss.label_smoothing", "at least 0"]) { try Self.parse(overrides: ["loss.label_smoothing=-0.1"]) }
        expectUsage(["loss.label_smoothing", "number"]) { try Self.parse(overrides: ["loss.label_smoothing=\"some\""]) }
        expectUsage(["loss.label_smothing", "did you mean loss.label_smoothing"]) { try Self.parse(overrides: ["loss.label_smothing=0.1"]) }
        // A full batch (plain or L-BFGS's) is read without the loader: no per-sample draws there.
        for key in ["augment.crop_padding=2", "augment.flip=true"] {
            let named = String(key.split(separator: "=")[0])
            expectUsage([named, "batch.global = \"full\"", "numeric batch.global"]) {
                try Self.parse(overrides: ["batch.global=\"full\"", key])
            }
            expectUsage([named, "batch.global = \"full\""]) {
                try Self.parse(overrides: ["batch.global=\"full\"", "optimizer.name=\"lbfgs\"", key])
            }
        }
        // The defaults are fine with a full batch; label smoothing too.
        #expect(throws: Never.self) { try Self.parse(overrides: ["batch.global=\"full\"", "augment.crop_padding=0", "augment.flip=false"]) }
        #expect(throws: Never.self) { try Self.parse(overrides: ["batch.global=\"full\"", "loss.label_smoothing=0.1"]) }
    }

    @Test func augmentationNeedsImagesLargerThanThePadding() throws {
        let job = try Self.parse(overrides: ["augment.crop_padding=2", "augment.flip=true"])
        for shape in [[28, 28], [3, 32, 32], [1, 3, 5]] {
            #expect(throws: Never.self) { try job.validate(sampleShape: shape) }
        }
        expectUsage(["augment.crop_padding = 2", "image samples", "[784]", "data/fashion.h5"]) { try job.validate(sampleShape: [784]) }
        expectUsage(["augment.crop_padding = 2", "image samples", "[2, 3, 8, 8]"]) { try job.validate(sampleShape: [2, 3, 8, 8]) }
        expectUsage(["augment.flip = true", "image samples"]) {
            try Self.parse(overrides: ["augment.flip=true"]).validate(sampleShape: [20])
        }
        expectUsage(["augment.crop_padding = 2", "less than the image side 2", "at most 1"]) { try job.validate(sampleShape: [3, 2, 9]) }
        expectUsage(["augment.crop_padding = 28", "image side 28", "at most 27"]) {
            try Self.parse(overrides: ["augment.crop_padding=28"]).validate(sampleShape: [28, 28])
        }
        // The identity fits any data.
        #expect(throws: Never.self) { try Self.parse().validate(sampleShape: [784]) }
    }

    @Test func fullJobParses() throws {
        let job = try Self.parse("""
            [run]
            name = "big"
            seed = 17
            epochs = 4
            steps = 300
            out = "/tmp/runs/big"
            log_every = 5
            eval_every = 50
            checkpoint_every = 100
            keep_checkpoints = 2

            [data]
            file = "d.h5"
            train_x = "/a/x"
            train_y = "/a/y"
            test_x = "/b/x"
            test_y = "/b/y"
            normalization = "standardize"

            [model]
            layers = [{ type = "dense", units = 32, activation = "identity" }, { units = 8, activation = "relu" }, { units = 3 }]

            [batch]
            global = 512

            [optimizer]
            name = "sgd"
            lr = 0.05
            momentum = 0.9
            nesterov = true
            weight_decay = 5e-4
            decay_biases = true

            [schedule]
            scaling = "sqrt"
            base_batch = 128
            warmup_epochs = 2
            decay = "cosine"
            min_lr = 1e-5
            """)
        #expect(job.run.name == "big" && job.run.seed == 17 && job.run.epochs == 4 && job.run.steps == 300)
        #expect(job.run.out == "/tmp/runs/big" && job.run.logEvery == 5 && job.run.evalEvery == 50)
        #expect(job.run.checkpointEvery == 100 && job.run.keepCheckpoints == 2)
        #expect(job.data.trainX == "/a/x" && job.data.testY == "/b/y" && job.data.normalization == .standardize)
        #expect(job.layers.map(\.units) == [32, 8, 3])
        #expect(job.layers.map(\.activation) == [.identity, .relu, .identity])
        #expect(job.optimizer.sgd.momentum == 0.9 && job.optimizer.sgd.nesterov)
        #expect(job.optimizer.sgd.weightDecay == 5e-4 && job.optimizer.sgd.decayBiases)
        #expect(job.schedule.scaling == .sqrt && job.schedule.baseBatch == 128 && job.schedule.warmupEpochs == 2)
        #expect(job.schedule.decay == .cosine && job.schedule.minLR == 1e-5)
        // Derived: run.steps wins over epochs; warmup epochs become steps of floor(N / B).
        #expect(try job.totalSteps(trainSamples: 10_000) == 300)
        let lr = try job.learningRateSchedule(trainSamples: 10_000)
        #expect(lr.warmupSteps == 2 * (10_000 / 512))
        #expect(lr.totalSteps == 300 && lr.baseLR == 0.05 && lr.baseBatch == 128)
        #expect(lr.scaling == .sqrt && lr.decay == .cosine && lr.minLR == 1e-5)
        let byEpochs = try Self.parse(Self.with("run", "epochs = 3"))
        #expect(try byEpochs.totalSteps(trainSamples: 1000) == 3 * 7)
    }

    @Test func misspelledKeySuggestsTheRightOne() {
        // Alongside the real key: the leftover key is named with a suggestion.
        expectUsage(["optimizer.lrr", "did you mean optimizer.lr"]) {
            try Self.parse(Self.with("optimizer", "lrr = 0.2"))
        }
        expectUsage(["optimizer.momentun", "did you mean optimizer.momentum"]) {
            try Self.parse(Self.with("optimizer", "momentun = 0.9"))
        }
        expectUsage(["model.layers.1.activaton", "did you mean model.layers.1.activation"]) {
            try Self.parse(Self.minimal.replacingOccurrences("{ units = 10 }", "{ units = 10, activaton = \"relu\" }"))
        }
        expectUsage(["optimiser", "did you mean optimizer"]) {
            try Self.parse(Self.minimal + "\n[optimiser]\nlr = 0.1\n")
        }
    }

    @Test func misspelledRequiredKeyIsNamed() {
        // The realistic typo: `lrr` instead of `lr`. The message names the key the user wrote.
        expectUsage(["optimizer.lrr", "did you mean optimizer.lr"]) {
            try Self.parse(Self.minimal.replacingOccurrences("lr = 0.1", "lrr = 0.1"))
        }
        expectUsage(["batch.globl", "did you mean batch.global"]) {
            try Self.parse(Self.minimal.replacingOccurrences("global = 128", "globl = 128"))
        }
    }

    @Test func unknownSectionIsNamed() {
        expectUsage(["telemetry", "unknown key"]) {
            try Self.parse(Self.minimal + "\n[telemetry]\nenabled = true\n")
        }
    }

    @Test func wrongTypesAndImpossibleValues() {
        expectUsage(["batch.global", "integer", "big"]) { try Self.parse(Self.minimal.replacingOccurrences("global = 128", "global = \"big\"")) }
        expectUsage(["batch.global", "at least 1"]) { try Self.parse(Self.minimal.replacingOccurrences("global = 128", "global = 0")) }
        expectUsage(["optimizer.lr", "at least 0"]) { try Self.parse(Self.minimal.replacingOccurrences("lr = 0.1", "lr = -0.1")) }
        expectUsage(["optimizer.lr", "number"]) { try Self.parse(Self.minimal.replacingOccurrences("lr = 0.1", "lr = \"fast\"")) }
        expectUsage(["optimizer.lr", "finite"]) { try Self.parse(Self.minimal.replacingOccurrences("lr = 0.1", "lr = nan")) }
        expectUsage(["optimizer.momentum", "at most"]) { try Self.parse(Self.with("optimizer", "momentum = 1.5")) }
        expectUsage(["optimizer.nesterov", "true or false"]) { try Self.parse(Self.with("optimizer", "nesterov = 1")) }
        expectUsage(["run.steps", "at least 1"]) { try Self.parse(Self.with("run", "steps = 0")) }
        expectUsage(["run.seed", "at least 0"]) { try Self.parse(Self.with("run", "seed = -3")) }
        expectUsage(["run", "table"]) { try Self.parse("run = 3\n" + Self.minimal) }
        expectUsage(["model.layers", "array"]) { try Self.parse(Self.minimal.replacingOccurrences("layers = [{ units = 16 }, { units = 10 }]", "layers = 3")) }
        expectUsage(["model.layers", "at least one"]) { try Self.parse(Self.minimal.replacingOccurrences("layers = [{ units = 16 }, { units = 10 }]", "layers = []")) }
        expectUsage(["model.layers", "at least 2"]) { try Self.parse(Self.minimal.replacingOccurrences("{ units = 10 }", "{ units = 1 }")) }
        expectUsage(["model.layers.0.type", "conv"]) { try Self.parse(Self.minimal.replacingOccurrences("{ units = 16 }", "{ type = \"conv\", units = 16 }")) }
        expectUsage(["schedule.scaling", "\"linear\""]) { try Self.parse(Self.with("schedule", "scaling = \"quadratic\"")) }
        expectUsage(["schedule", "warmup_steps or warmup_epochs"]) { try Self.parse(Self.with("schedule", "warmup_steps = 3\nwarmup_epochs = 1")) }
        expectUsage(["optimizer.name", "rmsprop", "\"sgd\""]) { try Self.parse(Self.with("optimizer", "name = \"rmsprop\"")) }
        expectUsage(["optimizer.beta2", "sgd", "adam"]) { try Self.parse(Self.with("optimizer", "beta2 = 0.99")) }
        expectUsage(["optimizer.nesterov", "nshb"]) { try Self.parse(Self.with("optimizer", "name = \"nshb\"\nnesterov = true")) }
        expectUsage(["schedule.decay_epochs"]) { try Self.parse(Self.with("schedule", "decay = \"step\"")) }
        expectUsage(["schedule.decay_epochs", "integers"]) { try Self.parse(Self.with("schedule", "decay = \"step\"\ndecay_epochs = [\"a\"]")) }
        expectUsage(["batch.micro", "at least 1"]) { try Self.parse(Self.with("batch", "micro = 0")) }
    }

    @Test func missingRequiredKeys() {
        expectUsage(["data.file", "missing"]) { try Self.parse(Self.minimal.replacingOccurrences("file = \"data/fashion.h5\"", "")) }
        expectUsage(["optimizer.lr", "missing"]) { try Self.parse(Self.minimal.replacingOccurrences("lr = 0.1", "")) }
        expectUsage(["batch.global", "missing"]) { try Self.parse(Self.minimal.replacingOccurrences("global = 128", "")) }
        expectUsage(["model.layers", "missing"]) { try Self.parse(Self.minimal.replacingOccurrences("layers = [{ units = 16 }, { units = 10 }]", "")) }
        expectUsage(["model.layers.0.units", "missing"]) { try Self.parse(Self.minimal.replacingOccurrences("{ units = 16 }", "{ activation = \"relu\" }")) }
    }

    @Test func badActivationNamesTheLayer() {
        expectUsage(["model.layers.0.activation", "tanh", "\"relu\"", "\"identity\""]) {
            try Self.parse(Self.minimal.replacingOccurrences("{ units = 16 }", "{ units = 16, activation = \"tanh\" }"))
        }
    }

    @Test func tomlSyntaxErrorGivesTheLine() {
        // Line 8 of `minimal` is `global = 128`; break it.
        let text = Self.minimal.replacingOccurrences("global = 128", "global = 12 8")
        expectUsage(["jobs/mlp.toml:8:", "TOML syntax error"]) { try Self.parse(text) }
        expectUsage(["jobs/mlp.toml:1:", "TOML syntax error"]) { try Self.parse("[run\nname = 1\n") }
    }

    @Test func nesterovNeedsMomentum() {
        expectUsage(["optimizer.nesterov", "momentum"]) { try Self.parse(Self.with("optimizer", "nesterov = true")) }
        #expect(throws: Never.self) { try Self.parse(Self.with("optimizer", "nesterov = true\nmomentum = 0.9")) }
    }

    @Test func overridesTakeEffect() throws {
        let job = try Self.parse(overrides: ["run.steps=20", "optimizer.lr=0.5", "model.layers=[{units=4}, {units=3}]"])
        #expect(job.run.steps == 20)
        #expect(job.optimizer.lr == 0.5)
        #expect(job.layers == [LayerSpec(units: 4, activation: .relu), LayerSpec(units: 3, activation: .identity)])
        // A bare word is a string; a section absent from the file is created; later overrides win.
        let more = try Self.parse(overrides: ["schedule.scaling=linear", "run.name=x", "run.name=\"y\"", "optimizer.momentum=0.9"])
        #expect(more.schedule.scaling == .linear)
        #expect(more.run.name == "y" && more.run.out == "runs/y")
        #expect(more.optimizer.sgd.momentum == 0.9)
        // Overrides are validated like the file.
        expectUsage(["optimizer.lr", "number"]) { try Self.parse(overrides: ["optimizer.lr=fast"]) }
        expectUsage(["optimizer.lrr", "did you mean optimizer.lr"]) { try Self.parse(overrides: ["optimizer.lrr=0.5"]) }
        expectUsage(["--set", "key=value"]) { try Self.parse(overrides: ["run.steps"]) }
        expectUsage(["--set", "section.key"]) { try Self.parse(overrides: ["=3"]) }
        expectUsage(["--set", "not a table"]) { try Self.parse(overrides: ["optimizer.lr.x=3"]) }
    }

    @Test func overrideWithEmptyKeyPartIsRejected() {
        expectUsage(["--set", "section.key"]) { try Self.parse(overrides: ["run..steps=3"]) }
    }

    @Test func validateAgainstWorldSizeAndData() throws {
        let job = try Self.parse()
        let message = expectUsage(["batch.global", "3"]) { try job.validate(worldSize: 3, trainSamples: 1000) }
        #expect(message?.contains("129") == true || message?.contains("126") == true, "suggests a multiple of 3: \(message ?? "")")
        expectUsage(["batch.global", "100"]) { try job.validate(worldSize: 1, trainSamples: 100) }
        for p in [1, 2, 4, 8, 128] {
            #expect(throws: Never.self) { try job.validate(worldSize: p, trainSamples: 1000) }
        }
        // Micro-batches must divide each rank's share: 128 / 2 ranks = 64, and 24 does not divide it.
        let micro = try Self.parse(Self.with("batch", "micro = 24"))
        expectUsage(["batch.micro", "64"]) { try micro.validate(worldSize: 2, trainSamples: 1000) }
        #expect(throws: Never.self) { try Self.parse(Self.with("batch", "micro = 16")).validate(worldSize: 2, trainSamples: 1000) }
    }

    @Test func resolvedTOMLRoundTrips() throws {
        let plain = try Self.parse()
        #expect(try Job.parse(plain.resolvedTOML, source: "elsewhere.toml") == plain)
        let busy = try Self.parse(overrides: [
            "run.name=\"quote \\\" and \\\\ back\"", "run.seed=123456789", "run.steps=77", "data.normalization=none",
            "optimizer.lr=0.0003", "optimizer.momentum=0.95", "optimizer.nesterov=true", "optimizer.weight_decay=1e-5",
            "optimizer.decay_biases=true", "schedule.scaling=linear", "schedule.base_batch=32", "schedule.warmup_steps=9",
            "schedule.decay=cosine", "schedule.min_lr=1e-7",
            "model.layers=[{units=7, activation=\"identity\"}, {units=5}, {units=2, activation=\"relu\"}]",
        ])
        #expect(busy.run.name == "quote \" and \\ back")
        let text = busy.resolvedTOML
        let again = try Job.parse(text, source: "elsewhere.toml")
        #expect(again == busy, "resolvedTOML:\n\(text)")
        #expect(again.resolvedTOML == text)
    }

    @Test(arguments: ["sgd", "nshb", "adam", "adamw", "lars", "lamb"])
    func resolvedTOMLRoundTripsEveryOptimizer(name: String) throws {
        let job = try Self.parse(overrides: ["optimizer.name=\"\(name)\"", "optimizer.weight_decay=0.01", "batch.micro=32",
                                             "schedule.decay=\"step\"", "schedule.decay_epochs=[3, 6]", "schedule.warmup=\"constant\""])
        #expect(job.optimizer.name.rawValue == name)
        #expect(try Job.parse(job.resolvedTOML, source: "x.toml") == job, "resolvedTOML:\n\(job.resolvedTOML)")
    }

    @Test func resolvedTOMLEscapesControlCharacters() throws {
        // A TOML basic string may hold \n or \t; resolvedTOML must write them back escaped.
        let job = try Self.parse(overrides: ["run.name=\"a\\tb\\nc\""])
        #expect(job.run.name == "a\tb\nc")
        let again = try Job.parse(job.resolvedTOML, source: "x.toml")
        #expect(again == job)
    }

    @Test func loadReportsMissingFile() {
        expectUsage(["/nonexistent/job.toml"]) { try Job.load("/nonexistent/job.toml") }
    }

    // MARK: encodings and float32 ranges (issue 13)

    /// Byte sequences that are not UTF-8, each found at its first byte wherever it sits: a
    /// Latin-1 letter, bytes UTF-8 never uses, a sequence cut short (mid-file and at the very
    /// end), an overlong encoding, a UTF-16 surrogate, a code point past U+10FFFF, a stray
    /// continuation byte.
    static let notUTF8: [(bytes: [UInt8], first: String)] = [
        ([0xE9], "0xe9"), ([0xFF], "0xff"), ([0xFE, 0xFF], "0xfe"), ([0xC3, 0x28], "0xc3"), ([0xE2, 0x82], "0xe2"),
        ([0xC0, 0xAF], "0xc0"), ([0xED, 0xA0, 0x80], "0xed"), ([0xF4, 0x90, 0x80, 0x80], "0xf4"), ([0x80], "0x80"),
    ]

    @Test func jobFileThatIsNotUTF8IsASyntaxError() throws {
        let dir = try TemporaryDirectory()
        let good = Array(Self.minimal.utf8)
        // Line 3 of `minimal` is "" and line 4 "[model]": put the bad bytes in a comment on line 3.
        let lineStart = good.indices.filter { good[$0] == 10 }[1] + 1
        for (bad, first) in Self.notUTF8 {
            for (place, at, line) in [("comment", lineStart, 3), ("start", 0, 1), ("end", good.count, 11)] {
                var bytes = good
                let inserted: [UInt8] = place == "comment" ? Array("# caf".utf8) + bad + [10] : bad
                bytes.insert(contentsOf: inserted, at: at)
                let offset = at + (place == "comment" ? 5 : 0)
                let path = dir.file("job.toml")
                try writeBytes(bytes, to: path)
                expectUsage(["\(path):\(line): not valid UTF-8 (byte \(first) at offset \(offset)): save the file as UTF-8"]) {
                    try Job.load(path)
                }
                #expect(firstInvalidUTF8Offset(bytes) == offset, "\(bad) at the \(place)")
            }
        }
        // Well-formed multi-byte text (2, 3 and 4 bytes, and a byte-order mark) loads as written.
        let path = dir.file("utf8.toml")
        try writeBytes([0xEF, 0xBB, 0xBF] + Array(Self.with("run", "name = \"café ✓ 𝄞\"").utf8), to: path)
        #expect(try Job.load(path).run.name == "café ✓ 𝄞")
        #expect(firstInvalidUTF8Offset(Array("café ✓ 𝄞".utf8)) == nil)
        #expect(firstInvalidUTF8Offset([]) == nil)
    }

    /// Every rate-like value is a float in the trainer: one past float32's range is refused with
    /// the key and the largest value, in the file and through --set alike, for every float key.
    @Test(arguments: ["optimizer.lr", "optimizer.weight_decay", "schedule.power", "schedule.min_lr", "gsnr.eps", "run.stall_timeout"])
    func valuesPastFloat32AreRefused(key: String) throws {
        let largest = Double(Float.greatestFiniteMagnitude)
        let justPast = largest.nextUp
        for value in ["1e39", "3.5e38", "\(justPast)", "1.7976931348623157e308"] {
            let expected = Double(value)!
            expectUsage(["jobs/mlp.toml: \(key): \(expected) does not fit in float32 (largest 3.4e38): use a smaller value"]) {
                try Self.parse(overrides: ["\(key)=\(value)"])
            }
        }
        let (section, name) = (String(key.split(separator: ".")[0]), String(key.split(separator: ".")[1]))
        let inFile = key == "optimizer.lr" ? Self.minimal.replacingOccurrences("lr = 0.1", "lr = 1e39") : Self.with(section, "\(name) = 1e39")
        expectUsage(["\(key): 1e+39 does not fit in float32"]) { try Self.parse(inFile) }
        // float32's largest value itself still fits (each of these keys has no smaller maximum).
        #expect(throws: Never.self) { try Self.parse(overrides: ["\(key)=\(largest)"]) }
    }

    /// The demo job's optimizer switched from the command line: its momentum and nesterov keys
    /// would be "not used by optimizer adam" (that error names --unset), and --unset removes them.
    @Test func unsetRemovesKeysBeforeTheOverrides() throws {
        let demo = Self.with("optimizer", "momentum = 0.9\nnesterov = true")
        expectUsage(["optimizer.momentum", "not used by optimizer \"adam\"", "--unset optimizer.momentum"]) {
            try Job.parse(demo, source: "j.toml", overrides: ["optimizer.name=\"adam\""])
        }
        let adam = try Job.parse(demo, source: "j.toml", overrides: ["optimizer.name=\"adam\""],
                                 unsets: ["optimizer.momentum", "optimizer.nesterov"])
        #expect(adam.optimizer.name == .adam)
        #expect(!adam.resolvedTOML.contains("nesterov"))
        // Unset then set: the override wins (unsets apply first).
        let job = try Job.parse(demo, source: "j.toml", overrides: ["optimizer.momentum=0.5"], unsets: ["optimizer.momentum"])
        #expect(job.optimizer.sgd.momentum == 0.5)
        // A removed required key is missing, as if the file never had it.
        expectUsage(["optimizer.lr", "missing"]) { try Job.parse(demo, source: "j.toml", unsets: ["optimizer.lr"]) }
    }

    @Test(arguments: [("optimizer.momentun", "does not set optimizer.momentun"), ("optimiser.lr", "no [optimiser] table"),
                      ("lr", "section.key")])
    func unsetOfAKeyTheJobDoesNotHaveIsAUsageError(_ key: String, _ mention: String) {
        expectUsage(["--unset \(key)", mention]) { try Job.parse(Self.minimal, source: "j.toml", unsets: [key]) }
    }

    @Test func float32CheckKeepsTheOtherChecks() {
        // A negative value past the range is first of all below the minimum; NaN and Inf are not finite.
        expectUsage(["optimizer.lr", "at least 0"]) { try Self.parse(overrides: ["optimizer.lr=-1e39"]) }
        expectUsage(["optimizer.lr", "finite"]) { try Self.parse(overrides: ["optimizer.lr=inf"]) }
        expectUsage(["optimizer.momentum", "at most"]) { try Self.parse(overrides: ["optimizer.momentum=1e39"]) }
    }

    /// The other end of float32: a nonzero value that would round to 0 in the trainer (an eps of
    /// 1e-50 becomes a division by 0) is refused for every float key; float32's smallest and 0 load.
    @Test(arguments: ["optimizer.lr", "optimizer.weight_decay", "schedule.power", "schedule.min_lr", "gsnr.eps", "run.stall_timeout"])
    func valuesThatWouldBeZeroInFloat32AreRefused(key: String) throws {
        for value in ["1e-50", "5e-324", "\(Double(Float.leastNonzeroMagnitude) / 4)"] {
            expectUsage(["jobs/mlp.toml: \(key): \(Double(value)!) is too small for float32 (it would be 0; smallest 1.4e-45): use 0 or a larger value"]) {
                try Self.parse(overrides: ["\(key)=\(value)"])
            }
        }
        #expect(throws: Never.self) { try Self.parse(overrides: ["\(key)=\(Double(Float.leastNonzeroMagnitude))"]) }
        if key != "gsnr.eps" { #expect(throws: Never.self) { try Self.parse(overrides: ["\(key)=0"]) } }
    }
}

extension String {
    /// Foundation-free replace-all, for editing job text in tests.
    func replacingOccurrences(_ target: String, _ replacement: String) -> String {
        var result = "", rest = Substring(self)
        while let range = rest.range(of: target) {
            result += rest[..<range.lowerBound] + replacement
            rest = rest[range.upperBound...]
        }
        return result + rest
    }
}
