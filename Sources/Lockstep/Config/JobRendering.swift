// The resolved job, every default filled in, as TOML: written to the run directory and into
// every checkpoint, and valid input to `lockstep train` itself.

extension Job {
    public var resolvedTOML: String {
        /// A TOML basic string: backslash, quote and control characters escaped.
        func q(_ s: String) -> String {
            var out = "\""
            for scalar in s.unicodeScalars {
                switch scalar {
                case "\\": out += "\\\\"
                case "\"": out += "\\\""
                case "\n": out += "\\n"
                case "\t": out += "\\t"
                case "\r": out += "\\r"
                case _ where scalar.value < 0x20 || scalar.value == 0x7F:
                    let hex = String(scalar.value, radix: 16, uppercase: true)
                    out += "\\u" + String(repeating: "0", count: 4 - hex.count) + hex
                default: out.unicodeScalars.append(scalar)
                }
            }
            return out + "\""
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
                  "eval_train = \(run.evalTrain)",
                  "full_grad_norm_every = \(run.fullGradNormEvery)",
                  "nonfinite = \(q(run.nonfinite.rawValue))",
                  "stall_timeout = \(run.stallTimeout)",
                  "tensorboard = \(run.tensorboard)",
                  "checkpoint_minutes = \(run.checkpointMinutes)",
                  "noise_scale = \(run.noiseScale)",
                  "",
                  "[data]",
                  "file = \(q(data.file))",
                  "train_x = \(q(data.trainX))",
                  "train_y = \(q(data.trainY))",
                  "test_x = \(q(data.testX))",
                  "test_y = \(q(data.testY))",
                  "normalization = \(q(data.normalization.rawValue))",
                  "load = \(q(data.load.rawValue))",
                  "cache_mb = \(data.cacheMegabytes)"]
            + (data.fileLocking.map { ["file_locking = \($0)"] } ?? [])
            + validationLines(q)
            + ["",
                  "[model]",
                  "layers = ["]
        for layer in layers {
            // Only the keys the layer's type reads (anything else is an unknown key on input).
            let keys = layer.kind.resolvedKeys(quote: q)
            lines.append("  { type = \(q(layer.type))\(keys.isEmpty ? "" : ", " + keys) },")
        }
        lines += ["]",
                  "",
                  "[batch]",
                  batch.full ? "global = \"full\"" : "global = \(batch.global)"]
        if let micro = batch.micro { lines.append("micro = \(micro)") }
        if batch.schedule.isConstant && batch.schedule.maxBatch == nil {
            lines.append("schedule = \"constant\"")
        } else {
            lines += ["schedule = \"increasing\"",
                      "growth = \(batch.schedule.growth)",
                      "every_epochs = \(batch.schedule.everyEpochs)",
                      "offset = \(batch.schedule.offset)"]
            if let cap = batch.schedule.maxBatch { lines.append("max = \(cap)") }
        }
        lines += ["",
                  "[optimizer]"]
        lines += optimizer.resolvedLines
        lines += ["",
                  "[schedule]",
                  "scaling = \(q(schedule.scaling.rawValue))"]
        // 0: the default for a full batch not yet resolved (it becomes the training set's size).
        if schedule.baseBatch > 0 { lines.append("base_batch = \(schedule.baseBatch)") }
        lines += ["warmup = \(q(schedule.warmup.rawValue))",
                  "warmup_steps = \(schedule.warmupSteps)",
                  "warmup_epochs = \(schedule.warmupEpochs)",
                  "decay = \(q(schedule.decay.rawValue))"]
        if !schedule.decayEpochs.isEmpty {
            lines.append("decay_epochs = [\(schedule.decayEpochs.map(String.init).joined(separator: ", "))]")
        }
        lines += ["decay_factor = \(schedule.decayFactor)",
                  "power = \(schedule.power)",
                  "min_lr = \(schedule.minLR)",
                  "",
                  "[gsnr]",
                  "enabled = \(gsnr != nil)"]
        if let gsnr {
            lines += ["groups_per_rank = \(gsnr.groupsPerRank)",
                      "gamma = \(gsnr.gamma)",
                      // Whichever ε applies: an absolute eps, or eps_relative × each tensor's mean ḡ².
                      gsnr.epsilon.map { "eps = \($0)" } ?? "eps_relative = \(gsnr.epsilonRelative)",
                      // smoothing when set (every base), else beta3 (the Adam family's default).
                      gsnr.smoothing.map { "smoothing = \($0)" } ?? "beta3 = \(gsnr.beta3)",
                      "apply = \(q(gsnr.apply.rawValue))"]
        } else if let groups = noiseScaleGroups {
            // run.noise_scale alone folds these groups.
            lines.append("groups_per_rank = \(groups.groupsPerRank)")
        }
        lines += ["", "[exchange]", "bucket_mb = \(bucketMegabytes)",
                  "", "[augment]", "crop_padding = \(augment.cropPadding)", "flip = \(augment.flip)",
                  "", "[loss]", "label_smoothing = \(labelSmoothing)"]
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
