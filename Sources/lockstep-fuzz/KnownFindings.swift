// Inputs of finding classes already reported (docs/fuzzing.md, "Findings"), skipped when
// LOCKSTEP_FUZZ_SKIP_KNOWN names them (comma-separated, or "all"), so that a run can look past
// them (and CI can stay green) until they are fixed. Off by default: a plain run reports them.
// Each check is a cheap, conservative predicate over the input (it may skip a few more).
// One more class, "hdf5-memcpy" (libhdf5's own over-read), is skipped by scripts/fuzz with an
// ASan suppression (Tests/Fuzz/asan-hdf5.supp), not here.

import CHDF5

#if canImport(Glibc)
import Glibc
#endif

enum KnownFindings {
    static let classes = ["toml-table-header", "toml-array-brace", "data-recursion", "data-huge-shape"]

    static let skipped: Set<String> = {
        guard let value = getenv("LOCKSTEP_FUZZ_SKIP_KNOWN").map({ String(cString: $0) }) else { return [] }
        let names = Set(value.split(separator: ",").map { String($0).trimmingSpaces })
        return names.contains("all") ? Set(classes) : names
    }()

    /// The class of a known finding the job input falls in, if it is skipped.
    static func job(text: String, overrides: [String]) -> String? {
        if skipped.contains("toml-table-header") && hasBadTableHeader(text) { return "toml-table-header" }
        // An override's value is parsed as TOML too ("v = " + value, Overrides.parseValue).
        if skipped.contains("toml-array-brace") && ([text] + overrides).contains(where: hasBraceInArray) { return "toml-array-brace" }
        return nil
    }

    /// toml++ (TOMLKit 0.6.0) asserts (abort) on a table header whose first key character is
    /// neither a bare-key character nor a quote, e.g. `[#model]`: any line that starts, after
    /// blanks, with `[` or `[[`, blanks, and such a character.
    static func hasBadTableHeader(_ text: String) -> Bool {
        for line in text.utf8.split(separator: UInt8(ascii: "\n"), omittingEmptySubsequences: false) {
            var rest = line.drop { $0 == 0x20 || $0 == 0x09 }
            guard rest.first == UInt8(ascii: "[") else { continue }
            rest = rest.dropFirst()
            if rest.first == UInt8(ascii: "[") { rest = rest.dropFirst() }
            rest = rest.drop { $0 == 0x20 || $0 == 0x09 }
            guard let c = rest.first else { return true }
            let bare = (c >= 0x41 && c <= 0x5A) || (c >= 0x61 && c <= 0x7A) || (c >= 0x30 && c <= 0x39)
                || c == UInt8(ascii: "_") || c == UInt8(ascii: "-")
            if !(bare || c == UInt8(ascii: "\"") || c == UInt8(ascii: "'") || c == UInt8(ascii: "]")) { return true }
        }
        return false
    }
}

extension KnownFindings {
    /// The class of a known finding the HDF5 file at `path` falls in, if it is skipped, from a
    /// walk of its groups with HDF5's own calls (bounded in depth and members):
    /// - data-recursion: HDF5File.datasetPaths recurses without end into a group that contains
    ///   itself, and through openDataset's error message into a member whose name `exists` does
    ///   not find (not UTF-8, empty, with a "/", or not found by name in a corrupt group):
    ///   deeper than 8 groups, or such a member.
    /// - data-huge-shape: a dataset of more than 2^26 elements (or whose count overflows), which
    ///   Dataset and HDF5File.read allocate whole.
    static func data(path: String) -> String? {
        let wanted = skipped.intersection(["data-recursion", "data-huge-shape"])
        guard !wanted.isEmpty else { return nil }
        lockstep_h5_silence_errors()
        guard H5Fis_hdf5(path) > 0 else { return nil }
        let file = H5Fopen(path, lockstep_h5f_acc_rdonly(), lockstep_h5p_default())
        guard file >= 0 else { return nil }
        defer { H5Fclose(file) }
        var visits = 0
        func walk(_ group: [UInt8], depth: Int) -> String? {
            if depth > 8 { return "data-recursion" }
            let g = H5Gopen2(file, group.map { CChar(bitPattern: $0) } + [0], lockstep_h5p_default())
            guard g >= 0 else { return nil }
            defer { H5Gclose(g) }
            var info = H5G_info_t()
            guard H5Gget_info(g, &info) >= 0 else { return nil }
            for i in 0..<min(info.nlinks, 64) {
                visits += 1
                if visits > 512 { return nil }
                let n = H5Lget_name_by_idx(g, ".", H5_INDEX_NAME, H5_ITER_INC, i, nil, 0, lockstep_h5p_default())
                guard n >= 0 else { continue }
                var buffer = [CChar](repeating: 0, count: Int(n) + 1)
                H5Lget_name_by_idx(g, ".", H5_INDEX_NAME, H5_ITER_INC, i, &buffer, Int(n) + 1, lockstep_h5p_default())
                let name = buffer.prefix { $0 != 0 }.map { UInt8(bitPattern: $0) }
                if name.isEmpty || name.contains(UInt8(ascii: "/")) || String(validating: name, as: UTF8.self) == nil {
                    return "data-recursion"
                }
                let child = (group == [UInt8(ascii: "/")] ? [] : group) + [UInt8(ascii: "/")] + name
                let cchild = child.map { CChar(bitPattern: $0) } + [0]
                // Listed by index but not found by name (a corrupt name index): what `exists` sees.
                if H5Lexists(file, cchild, lockstep_h5p_default()) <= 0 { return "data-recursion" }
                let d = H5Dopen2(file, cchild, lockstep_h5p_default())
                if d >= 0 {
                    defer { H5Dclose(d) }
                    let space = H5Dget_space(d)
                    defer { H5Sclose(space) }
                    let rank = Int(H5Sget_simple_extent_ndims(space))
                    guard rank >= 0 && rank <= 32 else { continue }
                    var dims = [hsize_t](repeating: 0, count: max(rank, 1))
                    H5Sget_simple_extent_dims(space, &dims, nil)
                    var count: UInt64 = 1
                    for dim in dims.prefix(rank) {
                        let (product, overflow) = count.multipliedReportingOverflow(by: UInt64(dim))
                        if overflow || product > 1 << 26 { return "data-huge-shape" }
                        count = product
                    }
                } else if let found = walk(child, depth: depth + 1) {
                    return found
                }
            }
            return nil
        }
        guard let found = walk([UInt8(ascii: "/")], depth: 0), wanted.contains(found) else { return nil }
        return found
    }

    /// toml++ asserts (abort) on a `}` where an array expects a value, e.g. `a = [}` or
    /// `layers = [{ units = 8 }, }, { units = 4 }]`: a `}` whose previous character, comments and
    /// blanks (newlines too) aside, is `[` or `,` (strings are not told apart: it may skip more).
    static func hasBraceInArray(_ text: String) -> Bool {
        var previous: UInt8 = 0
        var inComment = false
        for c in text.utf8 {
            if inComment {
                if c == 0x0A { inComment = false }
                continue
            }
            switch c {
            case UInt8(ascii: "#"): inComment = true
            case 0x20, 0x09, 0x0A, 0x0D: continue
            case UInt8(ascii: "}") where previous == UInt8(ascii: "[") || previous == UInt8(ascii: ","): return true
            default: previous = c
            }
        }
        return false
    }
}

extension String {
    var trimmingSpaces: String {
        String(self.drop { $0 == " " }.reversed().drop { $0 == " " }.reversed())
    }
}
