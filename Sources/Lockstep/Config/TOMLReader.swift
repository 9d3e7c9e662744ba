// A validating reader over a parsed TOML table: each typed read marks its key as used, and
// `finish` reports any key nobody read (a misspelling, usually) with a suggestion.
// Every error is one line that names the full key.

import TOMLKit

public final class TOMLReader {
    public let prefix: String
    private let table: TOMLTable
    private var used: Set<String> = []
    private let source: String

    public init(_ table: TOMLTable, prefix: String = "", source: String) {
        self.table = table
        self.prefix = prefix
        self.source = source
    }

    private func key(_ name: String) -> String { prefix.isEmpty ? name : "\(prefix).\(name)" }

    private func fail(_ name: String, _ message: String) -> LockstepError {
        .usage("\(source): \(key(name)): \(message)")
    }

    /// A required key is absent. If a key nobody reads is one typo away, that is the likely cause:
    /// name it, so the message points at the line to fix.
    private func missing(_ name: String, _ kind: String) -> LockstepError {
        if let typo = table.keys.sorted().first(where: { $0 != name && editDistance($0, name) <= 2 }) {
            return .usage("\(source): \(key(typo)): unknown key (did you mean \(key(name))?); \(key(name)) is required (\(kind))")
        }
        return fail(name, "missing; it is required (\(kind))")
    }

    public func has(_ name: String) -> Bool { table.contains(key: name) }

    /// Whether `name` holds an integer rather than a float (keys that take either, such as
    /// data.validation: a row count or a fraction).
    public func holdsInteger(_ name: String) -> Bool { table[name]?.int != nil }

    private func value(_ name: String) -> TOMLValueConvertible? {
        used.insert(name)
        return table[name]
    }

    public func int(_ name: String, default fallback: Int? = nil, min: Int? = nil) throws -> Int {
        guard let v = value(name) else {
            if let fallback { return fallback }
            throw missing(name, "an integer")
        }
        guard let i = v.int else { throw fail(name, "must be an integer, got \(describe(v))") }
        if let min, i < min { throw fail(name, "must be at least \(min), got \(i)") }
        return i
    }

    /// An array of integers, e.g. decay_epochs = [30, 60].
    public func ints(_ name: String, min: Int? = nil) throws -> [Int] {
        guard let v = value(name) else { throw missing(name, "an array of integers") }
        guard let array = v.array else { throw fail(name, "must be an array of integers, got \(describe(v))") }
        return try array.map { element in
            guard let i = element.int else { throw fail(name, "must hold integers only, got \(describe(element))") }
            if let min, i < min { throw fail(name, "values must be at least \(min), got \(i)") }
            return i
        }
    }

    /// An integer, or the one word `word` (read as nil), e.g. batch.global = "full".
    public func intOrWord(_ name: String, _ word: String, min: Int? = nil) throws -> Int? {
        if let v = table[name], let text = v.string {
            used.insert(name)
            guard text == word else { throw fail(name, "must be an integer or \"\(word)\", got \"\(text)\"") }
            return nil
        }
        return try int(name, min: min)
    }

    public func optionalInt(_ name: String, min: Int? = nil) throws -> Int? {
        has(name) ? try int(name, min: min) : nil
    }

    public func double(_ name: String, default fallback: Double? = nil, min: Double? = nil, max: Double? = nil) throws -> Double {
        guard let v = value(name) else {
            if let fallback { return fallback }
            throw missing(name, "a number")
        }
        guard let d = v.double ?? v.int.map(Double.init) else { throw fail(name, "must be a number, got \(describe(v))") }
        guard d.isFinite else { throw fail(name, "must be a finite number, got \(d)") }
        if let min, d < min { throw fail(name, "must be at least \(min), got \(d)") }
        if let max, d > max { throw fail(name, "must be at most \(max), got \(d)") }
        // The trainer computes in Float: a larger magnitude would become ±Inf there.
        guard abs(d) <= Double(Float.greatestFiniteMagnitude) else {
            throw fail(name, "\(d) does not fit in float32 (largest 3.4e38): use a smaller value")
        }
        // ... and a nonzero one too small for Float would silently become 0 (an eps of 0).
        guard d == 0 || Float(d) != 0 else {
            throw fail(name, "\(d) is too small for float32 (it would be 0; smallest 1.4e-45): use 0 or a larger value")
        }
        return d
    }

    public func bool(_ name: String, default fallback: Bool) throws -> Bool {
        guard let v = value(name) else { return fallback }
        guard let b = v.bool else { throw fail(name, "must be true or false, got \(describe(v))") }
        return b
    }

    public func string(_ name: String, default fallback: String? = nil) throws -> String {
        guard let v = value(name) else {
            if let fallback { return fallback }
            throw missing(name, "a string")
        }
        guard let s = v.string else { throw fail(name, "must be a string, got \(describe(v))") }
        return s
    }

    /// A string that must be one of an enum's raw values.
    public func choice<E: RawRepresentable & CaseIterable>(_ name: String, default fallback: E) throws -> E where E.RawValue == String {
        let s = try string(name, default: fallback.rawValue)
        guard let e = E(rawValue: s) else {
            throw fail(name, "\"\(s)\" is not one of \(E.allCases.map { "\"\($0.rawValue)\"" }.joined(separator: ", "))")
        }
        return e
    }

    /// A sub-table (a `[section]`); an absent one reads as empty.
    public func section(_ name: String) throws -> TOMLReader {
        guard let v = value(name) else { return TOMLReader(TOMLTable(), prefix: key(name), source: source) }
        guard let t = v.table else { throw fail(name, "must be a table ([\(key(name))]), got \(describe(v))") }
        return TOMLReader(t, prefix: key(name), source: source)
    }

    /// An array of inline tables, each read by its own reader (prefix "key.N").
    public func tables(_ name: String) throws -> [TOMLReader] {
        guard let v = value(name) else { throw missing(name, "an array of tables") }
        guard let array = v.array else { throw fail(name, "must be an array of tables, got \(describe(v))") }
        return try array.enumerated().map { index, element in
            guard let t = element.table else { throw fail("\(name).\(index)", "must be a table like { type = \"dense\", units = 128 }") }
            return TOMLReader(t, prefix: "\(key(name)).\(index)", source: source)
        }
    }

    /// Fails on the first key that no read asked for.
    public func finish(known extra: [String] = []) throws {
        let known = used.union(extra)
        for k in table.keys.sorted() where !known.contains(k) {
            var message = "unknown key"
            if let guess = known.min(by: { editDistance($0, k) < editDistance($1, k) }), editDistance(guess, k) <= 2 {
                message += " (did you mean \(key(guess))?)"
            } else {
                message += " (known here: \(known.sorted().joined(separator: ", ")))"
            }
            throw fail(k, message)
        }
    }

    private func describe(_ v: TOMLValueConvertible) -> String {
        if let s = v.string { return "the string \"\(s)\"" }
        if v.table != nil { return "a table" }
        if v.array != nil { return "an array" }
        if let b = v.bool { return "\(b)" }
        if let i = v.int { return "the integer \(i)" }
        if let d = v.double { return "the number \(d)" }
        return "a \(v.type)"
    }
}

/// Levenshtein distance, for "did you mean" suggestions.
func editDistance(_ a: String, _ b: String) -> Int {
    let a = Array(a), b = Array(b)
    var previous = Array(0...b.count)
    for i in 1...max(a.count, 1) where !a.isEmpty {
        var current = [i] + [Int](repeating: 0, count: b.count)
        for j in 1...max(b.count, 1) where !b.isEmpty {
            current[j] = min(previous[j] + 1, current[j - 1] + 1, previous[j - 1] + (a[i - 1] == b[j - 1] ? 0 : 1))
        }
        previous = current
    }
    return a.isEmpty ? b.count : previous[b.count]
}
