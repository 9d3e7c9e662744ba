// Why an HDF5 call failed, in words a user can act on: the error stack's operating-system reason
// (a full disk), a lock held by another process, a truncated or damaged file, a missing
// compression filter, a soft or external link that points at nothing. Used by HDF5File only.

import CHDF5
#if canImport(Glibc)
import Glibc
#endif

extension HDF5File {
    /// Why `objectPath` cannot be followed when a soft or external link on the way points at
    /// nothing or the file's index of names is damaged; nil when every link resolves (or a name
    /// is simply missing).
    func unreachable(_ objectPath: String) -> String? {
        var prefix = ""
        for part in objectPath.split(separator: "/") {
            prefix += "/" + part
            let found = H5Lexists(id, prefix, lockstep_h5p_default())
            if found < 0, case let stack = HDF5ErrorStack(), stack.isDamage {
                return "\(path) is corrupt: HDF5 cannot look up \(prefix) (\(stack.reason)): copy or write the file again"
            }
            guard found > 0 else { return nil }
            var link = H5L_info_t()
            guard H5Lget_info(id, prefix, &link, lockstep_h5p_default()) >= 0,
                  link.type == H5L_TYPE_SOFT || link.type == H5L_TYPE_EXTERNAL,
                  H5Oexists_by_name(id, prefix, lockstep_h5p_default()) <= 0 else { continue }
            var value = [UInt8](repeating: 0, count: link.u.val_size + 1)
            guard H5Lget_val(id, prefix, &value, value.count, lockstep_h5p_default()) >= 0 else { return nil }
            if link.type == H5L_TYPE_SOFT {
                let target = String(decoding: value.prefix { $0 != 0 }, as: UTF8.self)
                return "\(path): \(prefix) is a soft link to \(target), which does not exist: point the link at a dataset, or name the dataset itself"
            }
            var flags: UInt32 = 0
            var fileName: UnsafePointer<CChar>?
            var objectName: UnsafePointer<CChar>?
            guard H5Lunpack_elink_val(value, link.u.val_size, &flags, &fileName, &objectName) >= 0,
                  let fileName, let objectName else { return nil }
            let target = String(cString: fileName), object = String(cString: objectName)
            // HDF5 looks for a relative target next to the linking file (and in the current folder).
            let folder = path.lastIndex(of: "/").map { String(path[..<$0]) } ?? "."
            let resolved = target.hasPrefix("/") ? target : folder + "/" + target
            if access(resolved, R_OK) == 0 {
                return "\(path): \(prefix) is an external link to \(target):\(object), and \(resolved) has no readable \(object): fix the link or that file"
            }
            return "\(path): \(prefix) is an external link to \(target):\(object), but \(target) cannot be opened (looked for as \(resolved), relative to the linking file's folder): put that file there or fix the link"
        }
        return nil
    }

    /// Fails when a filter in the dataset's pipeline is neither built in nor a loadable plugin:
    /// HDF5 would only say so when the data is read, as "required filter ... is not registered".
    func requireFilters(_ dataset: hid_t, _ datasetPath: String) throws {
        let what = "\(path): cannot read how \(datasetPath) is stored"
        try Self.using(Self.check(H5Dget_create_plist(dataset), what, usage: true), H5Pclose, what) { dcpl in
            let count = try Self.check(H5Pget_nfilters(dcpl), what, usage: true)
            for index in 0..<UInt32(count) {
                var flags: UInt32 = 0, values = 0, config: UInt32 = 0
                var name = [CChar](repeating: 0, count: 80)
                let filter = H5Pget_filter2(dcpl, index, &flags, &values, nil, name.count, &name, &config)
                guard filter >= 0, H5Zfilter_avail(filter) <= 0 else { continue }
                var label = String(decoding: name.prefix { $0 != 0 }.map { UInt8(bitPattern: $0) }, as: UTF8.self)
                if label.isEmpty { label = Self.knownFilters[filter] ?? "unnamed" }
                throw LockstepError.usage("\(path): \(datasetPath) is compressed with the \(label) filter (HDF5 filter id \(filter)), which this HDF5 library does not have: rewrite it with compression=\"gzip\" or none (h5py's create_dataset), or install that filter's HDF5 plugin and set HDF5_PLUGIN_PATH")
            }
        }
    }

    /// Registered ids of third-party filters h5py users meet, for files that store no name.
    static let knownFilters: [H5Z_filter_t: String] = [
        307: "bzip2", 32000: "lzf", 32001: "blosc", 32004: "lz4", 32008: "bitshuffle", 32013: "zfp", 32015: "zstd",
    ]

    /// What to tell the user when H5Fopen failed: the file is locked, truncated, not HDF5, or else corrupt.
    static func openFailure(_ path: String, _ stack: HDF5ErrorStack, lockingKey: String? = nil) -> String {
        if stack.isLockFailure { return "\(path) cannot be opened: " + lockAdvice(stack, creating: false, key: lockingKey) }
        if let (eof, stored) = stack.truncation {
            return "\(path) is truncated: it has \(eof) bytes but HDF5 recorded \(stored) when it was written (an interrupted copy or write?): copy or write the file again"
        }
        if stack.contains("file signature not found") {
            return "\(path) is not an HDF5 file: give a file written by h5py or `lockstep import`"
        }
        if stack.isDamage { return "\(path) is corrupt: HDF5 cannot open it (\(stack.reason)): copy or write the file again" }
        return "\(path): HDF5 cannot open it: \(stack.reason)"
    }

    /// HDF5 1.10 locks every file it opens (flock): readers share a lock, a writer holds it alone.
    /// `key`: the job key that turns HDF5's locking off for this file, named next to the variable.
    static func lockAdvice(_ stack: HDF5ErrorStack, creating: Bool, key: String? = nil) -> String {
        let off = key.map { "set \($0) = false or HDF5_USE_FILE_LOCKING=FALSE" } ?? "set HDF5_USE_FILE_LOCKING=FALSE"
        if stack.errno == EWOULDBLOCK || stack.errno == EAGAIN {
            if creating {
                return "it is locked by another process that has it open: wait for that process to close it (on a filesystem without working locks, set HDF5_USE_FILE_LOCKING=FALSE)"
            }
            return "it is locked by another process that has it open for writing: wait for that writer to finish (on a filesystem without working locks, \(off))"
        }
        return "HDF5 cannot lock it (\(stack.reason)): on a filesystem without working file locks, \(off)"
    }

    func readFailure<T>(_ datasetPath: String, _ info: HDF5DatasetInfo, as: T.Type, _ stack: HDF5ErrorStack) -> String {
        if let filter = stack.missingFilter {
            return "\(path): \(datasetPath) is compressed with the \(filter) filter, which this HDF5 library does not have: rewrite it with compression=\"gzip\" or none (h5py's create_dataset), or install that filter's HDF5 plugin and set HDF5_PLUGIN_PATH"
        }
        if stack.contains("conversion path") {
            return "\(path): \(datasetPath) holds \(info.dtypeName), which HDF5 cannot convert to \(Self.numpyName(T.self))"
        }
        if stack.isDamage { return "\(path) is corrupt: cannot read \(datasetPath) (\(stack.reason)): copy or write the file again" }
        return "\(path): cannot read \(datasetPath): \(stack.reason)"
    }

    static func numpyName<T>(_ type: T.Type) -> String {
        switch type {
        case is Float.Type: return "float32"
        case is Double.Type: return "float64"
        case is UInt8.Type: return "uint8"
        case is Int32.Type: return "int32"
        case is Int64.Type: return "int64"
        case is UInt64.Type: return "uint64"
        default: return "\(type)"
        }
    }
}

/// The descriptions on the calling thread's HDF5 error stack, outermost call first, read right
/// after a failed call (the next HDF5 API call clears them). The innermost ones carry the cause,
/// e.g. "..., errno = 28, error message = 'No space left on device', ...".
struct HDF5ErrorStack {
    let descriptions: [String]

    init() {
        var collected: [String] = []
        withUnsafeMutablePointer(to: &collected) { list in
            _ = H5Ewalk2(lockstep_h5e_default(), H5E_WALK_DOWNWARD, { _, error, data in
                if let desc = error?.pointee.desc, let data {
                    data.assumingMemoryBound(to: [String].self).pointee.append(String(cString: desc))
                }
                return 0
            }, list)
        }
        descriptions = collected
    }

    func contains(_ text: String) -> Bool { descriptions.contains { $0.contains(text) } }

    /// The operating system's reason (strerror text), when a system call failed underneath.
    var systemReason: String? {
        for description in descriptions.reversed() {
            if let text = Self.value(after: "error message = '", in: description, until: "'") { return text }
        }
        return nil
    }

    var errno: Int32? {
        for description in descriptions.reversed() {
            if let text = Self.value(after: "errno = ", in: description, until: ","), let value = Int32(text) { return value }
        }
        return nil
    }

    /// One line: the OS's reason, else HDF5's innermost description.
    var reason: String {
        let text = systemReason ?? descriptions.last ?? "HDF5 recorded no reason"
        return text.split(whereSeparator: \.isNewline).joined(separator: " ")
    }

    var isLockFailure: Bool { contains("unable to lock file") }

    /// Metadata that does not decode or points past the file's recorded end: "bad symbol table
    /// node signature", "incorrect metadata checksum", "Can't deserialize image", "addr overflow"
    /// (left by a writer that died or ran out of disk mid-flush). A file shorter than its recorded
    /// end is reported as truncated instead.
    var isDamage: Bool {
        descriptions.contains { d in
            ["signature", "checksum", "deserialize", "decode", "addr overflow"].contains { d.lowercased().contains($0) }
        }
    }

    /// (bytes present, bytes HDF5 recorded) from "truncated file: eof = 200000, ..., stored_eof = 402432".
    var truncation: (Int, Int)? {
        guard let line = descriptions.first(where: { $0.contains("truncated file: eof = ") }),
              let eof = Self.value(after: "truncated file: eof = ", in: line, until: ",").flatMap({ Int($0) }),
              let stored = Self.value(after: "stored_eof = ", in: line, until: ",").flatMap({ Int($0) }) else { return nil }
        return (eof, stored)
    }

    /// "lzf" from "required filter 'lzf' is not registered".
    var missingFilter: String? {
        descriptions.lazy.compactMap { Self.value(after: "required filter '", in: $0, until: "'") }.first
    }

    /// The text between `marker` and the next `end` (or the end of the line).
    static func value(after marker: String, in text: String, until end: Character) -> String? {
        guard let start = text.range(of: marker)?.upperBound else { return nil }
        let rest = text[start...]
        return String(rest.prefix { $0 != end && !$0.isNewline }).trimmingCharacters()
    }
}
