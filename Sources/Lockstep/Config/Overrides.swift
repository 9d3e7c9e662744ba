// `--set key=value`: overrides one key of the parsed job table before validation. The value is
// read as a TOML value (`3`, `0.1`, `true`, `"x"`, `[...]`); anything that is not one is a string.

import TOMLKit

enum Overrides {
    static func apply(_ assignment: String, to root: TOMLTable) throws {
        guard let eq = assignment.firstIndex(of: "=") else {
            throw LockstepError.usage("--set \(assignment): expected key=value, e.g. --set run.steps=20")
        }
        let path = assignment[..<eq].split(separator: ".", omittingEmptySubsequences: false).map(String.init)
        let text = String(assignment[assignment.index(after: eq)...])
        guard !path.isEmpty, path.allSatisfy({ !$0.isEmpty }) else {
            throw LockstepError.usage("--set \(assignment): the key must look like section.key, e.g. run.steps")
        }
        var table = root
        for part in path.dropLast() {
            if let existing = table[part] {
                guard let sub = existing.table else {
                    throw LockstepError.usage("--set \(assignment): \(part) is not a table")
                }
                table = sub
            } else {
                let sub = TOMLTable()
                table[part] = sub
                table = table[part]!.table!
            }
        }
        table[path.last!] = parseValue(text)
    }

    private static func parseValue(_ text: String) -> TOMLValueConvertible {
        // Text toml++ would abort on is no TOML value: it stays a plain string (TOMLGuard).
        if (try? TOMLGuard.check("v = " + text, source: "--set")) != nil,
           let parsed = try? TOMLTable(string: "v = " + text), let v = parsed["v"] { return v }
        return text
    }
}
