// Text that TOMLKit's toml++ (0.6.0, built with its assertions on) would abort on instead of
// reporting a syntax error, found by the fuzzer (docs/fuzzing.md, T1 and T2): a table header
// whose first character is neither a key character nor a quote (`[#model]`), and a `}` where an
// array expects a value (`a = [}`, `[{ units = 8 }, }]`). Caught here, before toml++ sees it,
// as the syntax errors they are. Strings and comments are skipped, so valid TOML is never refused.

public enum TOMLGuard {
    /// Throws "SOURCE:LINE:COLUMN: TOML syntax error: ..." for either pattern.
    public static func check(_ text: String, source: String) throws {
        var line = 1, column = 0
        var quote: UInt8?            // inside "..." or '...'
        var multiline = false        // inside """...""" or '''...'''
        var escaped = false
        var inComment = false
        var previous: UInt8 = 0x0A   // the last significant byte (blanks, newlines, comments aside)
        var atLineStart = true       // nothing but blanks so far on this line
        var depth = 0                // open arrays and inline tables of a value
        var bytes = Array(text.utf8)[...]
        func fail(_ what: String) -> LockstepError {
            .usage("\(source):\(line):\(column): TOML syntax error: \(what)")
        }
        func triple(_ q: UInt8) -> Bool { bytes.prefix(2).elementsEqual([q, q]) }
        while let c = bytes.popFirst() {
            column += 1
            if c == 0x0A {
                (line, column, inComment, atLineStart, escaped) = (line + 1, 0, false, true, false)
                if !multiline { quote = nil }
                continue
            }
            if inComment { continue }
            if let q = quote {
                if escaped {
                    escaped = false
                } else if c == UInt8(ascii: "\\") && q == UInt8(ascii: "\"") {
                    escaped = true
                } else if c == q && (!multiline || triple(q)) {
                    if multiline { bytes = bytes.dropFirst(2) }
                    (quote, multiline) = (nil, false)
                }
                previous = c
                continue
            }
            switch c {
            case 0x20, 0x09, 0x0D:
                continue
            case UInt8(ascii: "#"):
                inComment = true
                continue
            case UInt8(ascii: "\""), UInt8(ascii: "'"):
                quote = c
                if triple(c) { multiline = true; bytes = bytes.dropFirst(2) }
            case UInt8(ascii: "[") where atLineStart && depth == 0:
                // A table header: after `[` or `[[`, and after every dot, a key must start.
                var rest = bytes
                if rest.first == UInt8(ascii: "[") { rest = rest.dropFirst() }
                try Self.checkKeyParts(rest, fail)
            case _ where atLineStart && depth == 0 && Self.startsKey(c) && c != UInt8(ascii: "]"):
                // A key = value line: the same for a dotted key's parts.
                try Self.checkKeyParts(bytes, fail, after: c)
            case UInt8(ascii: "}") where previous == UInt8(ascii: "[") || previous == UInt8(ascii: ","):
                throw fail("\"}\" where an array expects a value")
            default:
                break
            }
            switch c {
            case UInt8(ascii: "["), UInt8(ascii: "{"):
                // A header's own bracket is not a value's (its `]` below is then not counted either).
                if !(c == UInt8(ascii: "[") && atLineStart && depth == 0) { depth += 1 }
            case UInt8(ascii: "]"), UInt8(ascii: "}"):
                depth = max(depth - 1, 0)
            default:
                break
            }
            atLineStart = false
            previous = c
        }
    }

    /// Each part of a (dotted) key, from `rest` up to `]` or `=`, starts with a key character
    /// or a quote: toml++ asserts otherwise. `after`: the key's first byte, already consumed.
    private static func checkKeyParts(_ rest: ArraySlice<UInt8>, _ fail: (String) -> LockstepError, after first: UInt8? = nil) throws {
        var expectKey = first == nil
        var quote: UInt8? = first == UInt8(ascii: "\"") || first == UInt8(ascii: "'") ? first : nil
        var escaped = false
        for c in rest {
            if let q = quote {
                if c == 0x0A { break }
                if escaped { escaped = false } else if c == UInt8(ascii: "\\") && q == UInt8(ascii: "\"") { escaped = true } else if c == q { quote = nil }
                continue
            }
            if c == 0x20 || c == 0x09 { continue }
            if c == UInt8(ascii: "#") && !expectKey { break }
            // A key is due before any `]` or `=` (`[]`, `[=`, `a. = 1` are no keys either).
            if c == 0x0A && !expectKey { break }
            if (c == UInt8(ascii: "]") || c == UInt8(ascii: "=")) && !expectKey { break }
            if expectKey {
                guard c != 0x0A, startsKey(c) && c != UInt8(ascii: "]") else {
                    throw fail("a key must start with a letter, digit, _, - or a quote, not \"\(String(decoding: [c], as: UTF8.self))\"")
                }
                expectKey = false
            }
            if c == UInt8(ascii: "\"") || c == UInt8(ascii: "'") { quote = c } else if c == UInt8(ascii: ".") { expectKey = true }
        }
    }

    private static func startsKey(_ c: UInt8) -> Bool {
        (c >= 0x41 && c <= 0x5A) || (c >= 0x61 && c <= 0x7A) || (c >= 0x30 && c <= 0x39)
            || c == UInt8(ascii: "_") || c == UInt8(ascii: "-") || c == UInt8(ascii: "\"") || c == UInt8(ascii: "'")
            || c == UInt8(ascii: "]")
    }
}
