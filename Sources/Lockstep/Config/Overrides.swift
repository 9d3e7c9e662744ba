// `--set key=value`: overrides one key of the parsed job table before validation. The value is
// read as a TOML value (`3`, `0.1`, `true`, `"x"`, `[...]`); anything that is not one is a string.
// `--unset key` removes a key (applied before every --set), e.g. the demo's `optimizer.momentum`
// when switching it to `--set optimizer.name="adam"`.

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

    static func remove(_ key: String, from root: TOMLTable) throws {
        let path = key.split(separator: ".", omittingEmptySubsequences: false).map(String.init)
        guard path.count >= 2, path.allSatisfy({ !$0.isEmpty }) else {
            throw LockstepError.usage("--unset \(key): the key must look like section.key, e.g. --unset optimizer.momentum")
        }
        var table = root
        for part in path.dropLast() {
            guard let sub = table[part]?.table else {
                throw LockstepError.usage("--unset \(key): the job has no [\(path.dropLast().joined(separator: "."))] table; check the key's spelling")
            }
            table = sub
        }
        guard table.remove(at: path.last!) != nil else {
            throw LockstepError.usage("--unset \(key): the job does not set \(key); check the key's spelling")
        }
    }

    private static func parseValue(_ text: String) -> TOMLValueConvertible {
        // Text toml++ would abort on is no TOML value: it stays a plain string (TOMLGuard).
        if (try? TOMLGuard.check("v = " + text, source: "--set")) != nil,
           let parsed = try? TOMLTable(string: "v = " + text), let v = parsed["v"] { return v }
        return text
    }
}
