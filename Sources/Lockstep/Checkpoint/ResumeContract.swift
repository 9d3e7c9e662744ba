// What may differ between a checkpoint and the job that resumes it (docs/checkpoints.md, "The
// resume contract"). The two resolved jobs are compared key by key: a key that the data order,
// the model or the optimizer's state depends on is an error naming both values; a key that
// changes training from here on but continues it correctly is a warning on the run's first
// lines; everything else (where the run writes, how often it logs) is accepted silently.

public enum ResumeContract {
    public enum Verdict: Equatable, Sendable {
        /// Exit 2: resuming would train wrong or not at all.
        case error
        /// Continues correctly with the new value, but is not the run the checkpoint came from.
        case warning
        /// Same training (up to summation order where said); nothing to say.
        case accepted
    }

    public struct Difference: Equatable, Sendable {
        public let key: String
        /// "(unset)" when absent on that side.
        public let checkpoint: String
        public let job: String
        public let verdict: Verdict
        public let why: String
    }

    /// Rules by key prefix, first match wins; unlisted keys are errors, so a key added to the
    /// job later is refused until someone decides its row.
    static let rules: [(prefix: String, verdict: Verdict, why: String)] = [
        ("model.", .error, "the checkpoint's tensors belong to that model"),
        ("data.normalization", .error, "the model was trained on inputs scaled that way"),
        ("run.seed", .error, "the data order (and initialisation) depend on it"),
        ("batch.micro", .accepted, "micro-batches change only the summation order"),
        ("batch.", .error, "the data order and the position inside it depend on it"),
        ("optimizer.name", .error, "the optimizer's state belongs to that optimizer"),
        ("gsnr.enabled", .error, "the optimizer's state belongs to that update rule"),
        ("optimizer.", .warning, "training continues with the new value"),
        ("gsnr.", .warning, "training continues with the new value"),
        ("schedule.", .warning, "the learning rate follows the new schedule from here on"),
        ("run.epochs", .accepted, "the run's length"),
        ("run.steps", .accepted, "the run's length"),
        ("exchange.", .accepted, "buckets change only the summation order"),
        // The data order does not depend on them; the samples or the loss do, from here on.
        ("augment.", .warning, "the training samples are augmented the new way from here on"),
        ("loss.", .warning, "training continues with the new loss"),
        // Where the data is read from: its identity (sample count, fingerprint) is checked apart.
        ("data.", .accepted, "where the data is read from"),
        ("run.", .accepted, "how the run is logged, evaluated and checkpointed"),
    ]

    /// Keys added to the resolved job after checkpoints without them were written, with the
    /// value `resolvedTOML` writes for their default: absent from a checkpoint, a key had its
    /// default there (the behaviour before it existed), so only a job that sets it differs.
    static let addedLater: [String: String] = [
        "augment.crop_padding": "0",
        "augment.flip": "false",
        "loss.label_smoothing": "0.0",
        "run.noise_scale": "false",
    ]

    /// The differences between two resolved jobs (`Job.resolvedTOML`), in key order.
    public static func differences(checkpoint: String, job: String) -> [Difference] {
        let old = keys(of: checkpoint).merging(addedLater) { stored, _ in stored }
        let new = keys(of: job).merging(addedLater) { stored, _ in stored }
        let changes = Set(old.keys).union(new.keys).sorted().filter { old[$0] != new[$0] }
        var result = changes.map { key -> Difference in
            let rule = rules.first { key.hasPrefix($0.prefix) } ?? (key, .error, "this lockstep has no rule for it")
            return Difference(key: key, checkpoint: old[key] ?? "(unset)", job: new[key] ?? "(unset)", verdict: rule.verdict, why: rule.why)
        }
        // A new run length moves where a decay that runs to the end of the run stands.
        let decay = new["schedule.decay"] ?? ""
        if changes.contains(where: { $0 == "run.epochs" || $0 == "run.steps" }), decay == "\"cosine\"" || decay == "\"polynomial\"" {
            result = result.map { d in
                guard d.key == "run.epochs" || d.key == "run.steps" else { return d }
                return Difference(key: d.key, checkpoint: d.checkpoint, job: d.job, verdict: .warning,
                                  why: "the \(decay) decay is stretched to the new length from here on")
            }
        }
        return result
    }

    /// "section.key" → value text, from the line-oriented TOML that `resolvedTOML` writes
    /// (model.layers entries become model.layers.0, model.layers.1, ...).
    static func keys(of resolved: String) -> [String: String] {
        var keys: [String: String] = [:]
        var section = ""
        var layer: Int?
        for raw in resolved.split(separator: "\n") {
            let line = raw.trimmingSpaces
            if line.isEmpty || line.hasPrefix("#") { continue }
            if let index = layer {
                if line == "]" { layer = nil; continue }
                keys["\(section).layers.\(index)"] = String(line.hasSuffix(",") ? line.dropLast() : line[...])
                layer = index + 1
                continue
            }
            if line.hasPrefix("[") && line.hasSuffix("]") { section = String(line.dropFirst().dropLast()); continue }
            guard let equals = line.firstIndex(of: "=") else { continue }
            let key = line[..<equals].trimmingSpaces, value = line[line.index(after: equals)...].trimmingSpaces
            if key == "layers" && value == "[" { layer = 0; continue }
            keys["\(section).\(key)"] = value
        }
        return keys
    }
}

extension StringProtocol {
    var trimmingSpaces: String {
        String(drop { $0 == " " || $0 == "\t" }.reversed().drop { $0 == " " || $0 == "\t" }.reversed())
    }
}
