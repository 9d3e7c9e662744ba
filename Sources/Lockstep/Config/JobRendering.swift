// The resolved job, every default filled in, as TOML: written to the run directory and into
// every checkpoint, and valid input to `lockstep train` itself.

extension Job {
    public var resolvedTOML: String {
        func q(_ s: String) -> String {
            "\"" + s.replacingAll("\\", "\\\\").replacingAll("\"", "\\\"") + "\""
        }
        var lines: [String] = []
        lines += ["[run]",
                  "name = \(q(run.name))",
                  "seed = \(run.seed)",
                  "epochs = \(run.epochs)"]
        if let steps = run.steps { lines.append("steps = \(steps)") }
        lines += ["out = \(q(run.out))",
                  "log_every = \(run.logEvery)",
                  "eval_every = \(run.evalEvery)",
                  "checkpoint_every = \(run.checkpointEvery)",
                  "keep_checkpoints = \(run.keepCheckpoints)",
                  "",
                  "[data]",
                  "file = \(q(data.file))",
                  "train_x = \(q(data.trainX))",
                  "train_y = \(q(data.trainY))",
                  "test_x = \(q(data.testX))",
                  "test_y = \(q(data.testY))",
                  "normalization = \(q(data.normalization.rawValue))",
                  "",
                  "[model]",
                  "layers = ["]
        for layer in layers {
            lines.append("  { type = \(q(layer.type)), units = \(layer.units), activation = \(q(layer.activation.rawValue)) },")
        }
        lines += ["]",
                  "",
                  "[batch]",
                  "global = \(batch.global)",
                  "",
                  "[optimizer]",
                  "name = \(q(optimizer.name.rawValue))",
                  "lr = \(optimizer.lr)",
                  "momentum = \(optimizer.sgd.momentum)",
                  "nesterov = \(optimizer.sgd.nesterov)",
                  "weight_decay = \(optimizer.sgd.weightDecay)",
                  "decay_biases = \(optimizer.sgd.decayBiases)",
                  "",
                  "[schedule]",
                  "scaling = \(q(schedule.scaling.rawValue))",
                  "base_batch = \(schedule.baseBatch)",
                  "warmup_steps = \(schedule.warmupSteps)",
                  "warmup_epochs = \(schedule.warmupEpochs)",
                  "decay = \(q(schedule.decay.rawValue))",
                  "min_lr = \(schedule.minLR)"]
        return lines.joined(separator: "\n") + "\n"
    }
}

extension String {
    /// Replaces every occurrence of `target` (Foundation-free).
    func replacingAll(_ target: String, _ replacement: String) -> String {
        guard !target.isEmpty else { return self }
        var result = ""
        var rest = Substring(self)
        while let range = rest.range(of: target) {
            result += rest[..<range.lowerBound]
            result += replacement
            rest = rest[range.upperBound...]
        }
        return result + rest
    }
}
