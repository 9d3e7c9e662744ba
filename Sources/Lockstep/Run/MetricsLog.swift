// metrics.jsonl: one JSON object per logged step and one per evaluation, written by rank 0 only,
// flushed per line. On resume, lines after the checkpoint's step are dropped (they will be redone).

public final class MetricsLog {
    private let writer: LineWriter?
    /// `run.tensorboard`: the same scalars as TensorBoard events (rank 0).
    private let events: TensorBoardEvents?

    /// Opens `path` on rank 0 (other ranks get a log that writes nothing), and with
    /// `tensorboard` an event file in that folder.
    public init(path: String, isRoot: Bool, resumeFromStep: Int?, tensorboard: String? = nil) throws {
        guard isRoot else { writer = nil; events = nil; return }
        events = try tensorboard.map { try TensorBoardEvents(folder: $0, resumedAt: resumeFromStep) }
        if let step = resumeFromStep, let text = readTextFile(path) {
            // Whole objects only: a line cut short by a full disk is not kept.
            let kept = text.split(separator: "\n").filter { $0.hasSuffix("}") && (Self.step(of: $0) ?? 0) <= step }
            try writeTextFileAtomically(path, kept.map { $0 + "\n" }.joined())
        }
        writer = try LineWriter(path: path, append: resumeFromStep != nil)
    }

    /// Why a line could not be appended (rank 0), if one could not.
    public var failure: String? { writer?.failure ?? events?.failure.map { "\($0) (writing \(events!.path))" } }

    /// Appends one object. Values are numbers, or strings when they come as String.
    public func log(_ fields: KeyValuePairs<String, Any>) { log(fields.map { ($0.key, $0.value) }) }

    /// Appends one object from fields in order; `[(String, Double)]` values become nested objects.
    public func log(_ fields: [(String, Any)]) {
        guard let writer else { return }
        let body = fields.map { (key, value) -> String in
            let rendered: String
            switch value {
            case let s as String: rendered = jsonString(s)
            case let d as Double: rendered = d.isFinite ? "\(d)" : "null"
            case let object as [(String, Double)]:
                rendered = "{" + object.map { "\"\($0.0)\": \($0.1.isFinite ? "\($0.1)" : "null")" }.joined(separator: ", ") + "}"
            default: rendered = "\(value)"
            }
            return "\"\(key)\": \(rendered)"
        }
        writer.write("{" + body.joined(separator: ", ") + "}")
        if let events, let step = fields.first(where: { $0.0 == "step" })?.1 as? Int {
            events.add(step: step, Self.scalars(fields))
        }
    }

    /// TensorBoard tags for one line's numbers: a training line's keys as they are (`loss`,
    /// `lr`, nested objects as `trust/dense0/weight`), an evaluation's under its split
    /// (`test/accuracy`), a measurement's under its name (`full_gradient/full_grad_norm`).
    /// `step` is the event's step; strings are not scalars.
    static func scalars(_ fields: [(String, Any)]) -> [(tag: String, value: Double)] {
        let group = fields.first { $0.0 == "split" || $0.0 == "measure" }?.1 as? String
        let prefix = group.map { $0 + "/" } ?? ""
        var result: [(tag: String, value: Double)] = []
        for (key, value) in fields where key != "step" && key != "split" && key != "measure" {
            switch value {
            case let d as Double: result.append((prefix + key, d))
            case let i as Int: result.append((prefix + key, Double(i)))
            case let object as [(String, Double)]: result += object.map { (prefix + key + "/" + $0.0, $0.1) }
            default: break
            }
        }
        return result
    }

    /// The value of a line's leading `"step": N`.
    static func step(of line: Substring) -> Int? {
        guard line.hasPrefix("{\"step\": ") else { return nil }
        return Int(line.dropFirst(9).prefix { $0.isNumber })
    }
}
