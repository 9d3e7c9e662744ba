// `lockstep eval CHECKPOINT`: the model rebuilt from the checkpoint alone (CheckpointModel),
// one split of its data (the config's data file or another with the same sample shape) opened
// and normalised as the run did, and evaluated on any number of ranks with training's own
// evaluation (SplitEvaluation), so accuracy and loss are bitwise the run's eval line for that
// step. Every rank reads the checkpoint and the data inside `comm.agree`: a mistake is one line,
// exit 2, on every rank.

#if canImport(Glibc)
import Glibc
#endif

public enum EvalSplit: String, CaseIterable, Sendable {
    case test, train, validation
}

public struct EvalOptions: Sendable {
    public var checkpoint: String
    /// Another data file (the config's `data.file` when nil).
    public var data: String?
    public var split: EvalSplit = .test
    public init(checkpoint: String) { self.checkpoint = checkpoint }
}

public struct CheckpointEvaluation: Sendable {
    /// The checkpoint file evaluated (a run directory resolves to its newest).
    public var checkpoint: String
    public var step: Int
    public var data: String
    public var split: EvalSplit
    public var result: SplitEvaluationResult
    /// confusion[true][predicted] (always counted by eval).
    public var confusion: [[Int]] { result.confusion ?? [] }
    /// Samples of each true class (the confusion matrix's row sums).
    public var classSamples: [Int] { confusion.map { $0.reduce(0, +) } }
    /// Accuracy within each true class; nil for a class without samples.
    public var classAccuracy: [Double?] {
        confusion.indices.map { c in classSamples[c] == 0 ? nil : Double(confusion[c][c]) / Double(classSamples[c]) }
    }
}

public enum CheckpointEval {
    public static func execute(_ options: EvalOptions, comm: Communicator) throws -> CheckpointEvaluation {
        if comm.size > 1 && getenv("OPENBLAS_NUM_THREADS") == nil { Gemm.setThreads(1) }
        let opened = try comm.agree { () -> Opened in try open(options, comm: comm) }
        // As training: node-shared sources take their rows now, then the normalisation is set.
        for source in opened.sources { try comm.agree { try source.attach(comm: comm) } }
        try comm.agree { try normalize(opened) }
        let network = opened.network
        let rows = SplitEvaluation.block
        let input = FloatBuffer(count: rows * opened.evaluated.width)
        let labels = UnsafeMutablePointer<Int32>.allocate(capacity: rows)
        defer { labels.deallocate() }
        network.reserve(batch: rows)
        let result = SplitEvaluation.run(opened.evaluated, network: network, comm: comm,
                                         input: input.pointer, labels: labels, confusion: true)
        return CheckpointEvaluation(checkpoint: opened.model.path, step: opened.step, data: opened.dataPath, split: options.split,
                                    result: result)
    }

    /// What one rank opened: the model, the split to evaluate, every source to attach and
    /// normalise, and the training rows (for statistics a checkpoint did not record).
    private struct Opened {
        var model: CheckpointModel
        var network: Network
        var step: Int
        var dataPath: String
        var evaluated: any DataSource
        var sources: [any DataSource]
        var trainRows: (any DataSource)?
    }

    private static func open(_ options: EvalOptions, comm: Communicator) throws -> Opened {
        let model = try CheckpointModel(options.checkpoint)
        var data = model.job.data
        data.file = options.data ?? data.file
        let how = options.data == nil ? "the data file of its config (data.file); pass --data FILE if it moved" : "--data"
        guard access(data.file, R_OK) == 0 else {
            throw LockstepError.usage("\(data.file): no such readable data file (\(how))")
        }
        let file = try HDF5File.open(data.file, fileLocking: data.fileLocking, lockingKey: "data.file_locking")
        let needsTrain = options.split != .test || (data.normalization == .standardize && model.input?.mean == nil)
        let paths = (options.split == .test ? [("test_x", data.testX), ("test_y", data.testY)] : [])
            + (needsTrain ? [("train_x", data.trainX), ("train_y", data.trainY)] : [])
        for (key, path) in paths where !file.exists(path) {
            throw LockstepError.usage("\(data.file) has no dataset \(path) (data.\(key) of \(model.path)): give the data the model was trained on with --data FILE")
        }
        // The shape first: another data set's labels would otherwise be the first complaint.
        let x = options.split == .test ? data.testX : data.trainX
        if let trained = model.input?.sampleShape, case let shape = Array(try file.info(x).shape.dropFirst()), shape != trained {
            throw LockstepError.usage("\(data.file): samples at \(x) have shape \(shape) but \(model.path) was trained on samples of shape \(trained): evaluate it on data shaped like its training data (--data FILE)")
        }
        let classes = model.job.layers.last!.units
        var sources: [any DataSource] = []
        var trainRows: (any DataSource)?
        var validation: (any DataSource)?
        if needsTrain {
            let whole = try data.open(file, x: data.trainX, y: data.trainY, classes: classes, name: "train")
            let parts = try TrainingRun.openValidation(data, file: file, train: whole, classes: classes)
            trainRows = parts.0
            validation = parts.1
            sources += [parts.0] + (parts.1.map { [$0] } ?? [])
        }
        let evaluated: any DataSource
        switch options.split {
        case .test:
            evaluated = try data.open(file, x: data.testX, y: data.testY, classes: classes, name: "test")
            sources.append(evaluated)
        case .train:
            evaluated = trainRows!
        case .validation:
            guard let validation else {
                throw LockstepError.usage("\(model.path): its run had no validation split (no data.validation in its config and no \(data.validationX) in \(data.file)): evaluate --split test or --split train")
            }
            evaluated = validation
        }
        let shape = evaluated.sampleShape
        if let trained = model.input?.sampleShape, trained != shape {
            throw LockstepError.usage("\(data.file): \(options.split.rawValue) samples have shape \(shape) but \(model.path) was trained on samples of shape \(trained): evaluate it on data shaped like its training data (--data FILE)")
        }
        let (network, contents) = try model.load(sampleShape: shape, communicator: comm) { why in
            LockstepError.usage("\(data.file): \(options.split.rawValue) samples of shape \(shape) do not fit the model of \(model.path) (\(why)): evaluate it on data shaped like its training data (--data FILE)")
        }
        return Opened(model: model, network: network, step: contents.position.step, dataPath: data.file,
                      evaluated: evaluated, sources: sources, trainRows: trainRows)
    }

    /// The run's input transform: the checkpoint's recorded statistics when it has them (older
    /// checkpoints: recomputed from the training rows, as the run computed them), checked
    /// against its recorded `input_scale`/`input_shift` bit for bit.
    private static func normalize(_ opened: Opened) throws {
        let job = opened.model.job
        let stored = opened.model.input
        let mode = stored?.mode ?? job.data.normalization
        var stats: (mean: Double, std: Double)?
        if mode == .standardize {
            if let mean = stored?.mean, let std = stored?.std { stats = (mean, std) } else { stats = opened.trainRows!.statistics() }
        }
        for source in opened.sources { source.normalize(mode, stats: stats) }
        let evaluated = opened.evaluated
        if let stored, evaluated.scale.bitPattern != stored.scale.bitPattern || evaluated.shift.bitPattern != stored.shift.bitPattern {
            throw LockstepError.usage("\(opened.dataPath): its features would enter the model as v·\(evaluated.scale) + \(evaluated.shift), but \(opened.model.path) was trained on v·\(stored.scale) + \(stored.shift) (its features stored as another type, uint8 or float): evaluate it on data stored like its training data (--data FILE)")
        }
    }
}
