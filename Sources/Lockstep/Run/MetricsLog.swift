// metrics.jsonl: one JSON object per logged step and one per evaluation, written by rank 0 only,
// flushed per line. On resume, lines after the checkpoint's step are dropped (they will be redone).

public final class MetricsLog {
    private let writer: LineWriter?

    /// Opens `path` on rank 0 (other ranks get a log that writes nothing).
    public init(path: String, isRoot: Bool, resumeFromStep: Int?) throws {
        guard isRoot else { writer = nil; return }
        if let step = resumeFromStep, let text = readTextFile(path) {
            // Whole objects only: a line cut short by a full disk is not kept.
            let kept = text.split(separator: "\n").filter { $0.hasSuffix("}") && (Self.step(of: $0) ?? 0) <= step }
            try writeTextFileAtomically(path, kept.map { $0 + "\n" }.joined())
        }
        writer = try LineWriter(path: path, append: resumeFromStep != nil)
    }

    /// Why a line could not be appended (rank 0), if one could not.
    public var failure: String? { writer?.failure }

    /// Appends one object. Values are numbers, or strings when they come as String.
    public func log(_ fields: KeyValuePairs<String, Any>) { log(fields.map { ($0.key, $0.value) }) }

    /// Appends one object from fields in order; `[(String, Double)]` values become nested objects.
    public func log(_ fields: [(String, Any)]) {
        guard let writer else { return }
        let body = fields.map { (key, value) -> String in
            let rendered: String
            switch value {
            case let s as String: rendered = "\"\(s)\""
            case let d as Double: rendered = d.isFinite ? "\(d)" : "null"
            case let object as [(String, Double)]:
                rendered = "{" + object.map { "\"\($0.0)\": \($0.1.isFinite ? "\($0.1)" : "null")" }.joined(separator: ", ") + "}"
            default: rendered = "\(value)"
            }
            return "\"\(key)\": \(rendered)"
        }
        writer.write("{" + body.joined(separator: ", ") + "}")
    }

    /// The value of a line's leading `"step": N`.
    static func step(of line: Substring) -> Int? {
        guard line.hasPrefix("{\"step\": ") else { return nil }
        return Int(line.dropFirst(9).prefix { $0.isNumber })
    }
}
