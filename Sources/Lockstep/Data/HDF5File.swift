// With HDF5Diagnostics.swift, the only place that talks to HDF5: create/open files, write and read whole datasets and root
// attributes. HDF5's own error printing is off; every failed call becomes a one-line
// LockstepError naming the file and object, with the reason HDF5 recorded (the OS's, if any).

import CHDF5
#if canImport(Glibc)
import Glibc
#endif

/// Element types Lockstep reads and writes, with their native HDF5 types.
public protocol HDF5Element: BitwiseCopyable {
    static var h5type: hid_t { get }
}
extension Float: HDF5Element { public static var h5type: hid_t { lockstep_h5t_native_float() } }
extension Double: HDF5Element { public static var h5type: hid_t { lockstep_h5t_native_double() } }
extension UInt8: HDF5Element { public static var h5type: hid_t { lockstep_h5t_native_uint8() } }
extension Int32: HDF5Element { public static var h5type: hid_t { lockstep_h5t_native_int32() } }
extension Int64: HDF5Element { public static var h5type: hid_t { lockstep_h5t_native_int64() } }
extension UInt64: HDF5Element { public static var h5type: hid_t { lockstep_h5t_native_uint64() } }

/// What a stored dataset holds, as far as Lockstep cares.
public struct HDF5DatasetInfo: Equatable {
    public enum Kind: Equatable { case unsignedInteger, signedInteger, float, other }
    public let shape: [Int]
    public let kind: Kind
    /// Bytes per element.
    public let size: Int
    /// Elements, saturating at Int.max (a declared shape comes from the file: it may not fit).
    public var count: Int { MemoryBudget.product(shape) ?? Int.max }
    /// numpy-style name, for messages: "uint8", "float32", "int64", ...
    public var dtypeName: String {
        switch kind {
        case .unsignedInteger: return "uint\(size * 8)"
        case .signedInteger: return "int\(size * 8)"
        case .float: return "float\(size * 8)"
        case .other: return "a non-numeric type"
        }
    }
}

public final class HDF5File {
    public let path: String
    /// -1 once closed. An id is handed to H5Fclose at most once, whatever the outcome: see `library`.
    private(set) var id: hid_t
    /// The first write that failed ("dataset /x", reason), so that finish() cannot call the file complete.
    private var failedWrite: (object: String, reason: String)?

    /// Runs once, before HDF5 initializes, to stop HDF5 from closing leftover files at exit. When
    /// H5Fclose's last flush fails (a full disk), HDF5 1.10 frees the file but keeps its id
    /// registered (CVE-2020-10812, fixed in 1.14.1); its exit handler then closed that id again
    /// and segfaulted in H5F__close_cb, after the error had been reported. Nothing is lost without
    /// the handler: a written file is complete only once finish() succeeded (one still being
    /// written at exit is unfinished either way), and the kernel releases the descriptors and
    /// locks of files open for reading.
    private static let library: Void = { _ = H5dont_atexit() }()

    /// HDF5's automatic error printing is per thread in its thread-safe build: turn it off on
    /// the calling thread before each operation that may fail (it costs a function call).
    @inline(__always) static func quiet() {
        _ = library
        lockstep_h5_silence_errors()
    }

    init(path: String, id: hid_t) {
        self.path = path
        self.id = id
    }

    deinit { close() }

    /// Creates (or truncates) a file for writing. Complete it with `finish()`.
    public static func create(_ path: String) throws -> HDF5File {
        quiet()
        let id = H5Fcreate(path, lockstep_h5f_acc_trunc(), lockstep_h5p_default(), lockstep_h5p_default())
        guard id >= 0 else {
            let stack = HDF5ErrorStack()
            if stack.isLockFailure { throw LockstepError.runtime("cannot create HDF5 file \(path): " + lockAdvice(stack, creating: true)) }
            throw LockstepError.runtime("cannot create HDF5 file \(path): \(stack.reason) (check that its folder exists and is writable)")
        }
        return HDF5File(path: path, id: id)
    }

    /// Opens an existing file read-only; a missing, locked, truncated or non-HDF5 file is a usage
    /// error. `fileLocking` overrides HDF5's file locking (HDF5FileLocking.swift); `lockingKey`
    /// names the job key that sets it, for the message when the lock fails.
    public static func open(_ path: String, fileLocking: Bool? = nil, lockingKey: String? = nil) throws -> HDF5File {
        quiet()
        guard access(path, R_OK) == 0 else {
            throw LockstepError.usage("\(path): no such readable file (\(String(cString: strerror(errno))))")
        }
        let id = try withFileAccess(locking: fileLocking, path) { H5Fopen(path, lockstep_h5f_acc_rdonly(), $0) }
        guard id >= 0 else { throw LockstepError.usage(openFailure(path, HDF5ErrorStack(), lockingKey: lockingKey)) }
        return HDF5File(path: path, id: id)
    }

    /// Closes without reporting anything: for files opened for reading, and for abandoning a file
    /// whose writing already failed. A written file is completed with `finish()`, which reports.
    public func close() {
        guard id >= 0 else { return }
        Self.quiet()
        let file = id
        id = -1
        _ = H5Fclose(file)
    }

    /// Completes a file written since `create`: writes out everything HDF5 still holds in memory
    /// (object headers, the superblock: without them the file is unreadable) and closes it,
    /// reporting what `close()` would swallow, such as a full disk. It also fails when any write
    /// to this file failed before, even if that error was caught: the file lacks something.
    /// Afterwards, whether it succeeded or not, the file is closed and `close()` and deinit do nothing.
    public func finish() throws {
        Self.quiet()
        let what = "cannot finish writing \(path)"
        let file = try handle(what)
        id = -1
        // Close even after a failed flush, to release the descriptor; the flush's error is the one to report.
        var failure: String?
        if H5Fflush(file, H5F_SCOPE_LOCAL) < 0 { failure = HDF5ErrorStack().reason }
        if H5Fclose(file) < 0, failure == nil { failure = HDF5ErrorStack().reason }
        if let failure { throw LockstepError.runtime("\(what): \(failure)") }
        if let (object, reason) = failedWrite {
            throw LockstepError.runtime("\(what): writing \(object) failed earlier: \(reason)")
        }
    }

    /// Whether a link exists at an absolute path such as "/train/x" (and at every group above it).
    /// A soft or external link whose target is missing counts, so that `info` and `read` can then
    /// say where it points instead of "no such dataset".
    public func exists(_ objectPath: String) -> Bool {
        guard id >= 0 else { return false }
        Self.quiet()
        var prefix = ""
        for part in objectPath.split(separator: "/") {
            prefix += "/" + part
            if H5Lexists(id, prefix, lockstep_h5p_default()) <= 0 { return false }
        }
        return !prefix.isEmpty
    }

    /// Names of the members of a group ("/" for the root).
    public func members(of group: String) -> [String] {
        guard id >= 0 else { return [] }
        Self.quiet()
        let g = H5Gopen2(id, group, lockstep_h5p_default())
        guard g >= 0 else { return [] }
        defer { H5Gclose(g) }
        var info = H5G_info_t()
        guard H5Gget_info(g, &info) >= 0 else { return [] }
        return (0..<info.nlinks).compactMap { i -> String? in
            let n = H5Lget_name_by_idx(g, ".", H5_INDEX_NAME, H5_ITER_INC, i, nil, 0, lockstep_h5p_default())
            guard n >= 0 else { return nil }
            var buf = [CChar](repeating: 0, count: Int(n) + 1)
            H5Lget_name_by_idx(g, ".", H5_INDEX_NAME, H5_ITER_INC, i, &buf, Int(n) + 1, lockstep_h5p_default())
            return String(decoding: buf.prefix { $0 != 0 }.map { UInt8(bitPattern: $0) }, as: UTF8.self)
        }
    }

    /// Shape and element type of a dataset. Fails already here, before any data is read, when the
    /// dataset is stored with a filter (compression) this HDF5 library does not have.
    public func info(_ datasetPath: String) throws -> HDF5DatasetInfo {
        try withDataset(datasetPath) { d in
            let what = "\(path): cannot read the shape and type of \(datasetPath)"
            try requireFilters(d, datasetPath)
            let (rank, dims) = try Self.using(Self.check(H5Dget_space(d), what, usage: true), H5Sclose, what) { space in
                let rank = Int(try Self.check(H5Sget_simple_extent_ndims(space), what, usage: true))
                var dims = [hsize_t](repeating: 0, count: max(rank, 1))
                try Self.check(H5Sget_simple_extent_dims(space, &dims, nil), what, usage: true)
                return (rank, dims)
            }
            return try Self.using(Self.check(H5Dget_type(d), what, usage: true), H5Tclose, what) { type in
                let kind: HDF5DatasetInfo.Kind
                switch H5Tget_class(type) {
                case H5T_INTEGER: kind = H5Tget_sign(type) == H5T_SGN_NONE ? .unsignedInteger : .signedInteger
                case H5T_FLOAT: kind = .float
                default: kind = .other
                }
                // Each dimension comes from the file: one past Int is no shape this machine can use.
                let shape = try dims.prefix(rank).map { dim -> Int in
                    guard let n = Int(exactly: dim) else {
                        throw LockstepError.usage("\(path): \(datasetPath) declares a dimension of \(dim), more elements than this machine can address: use a smaller file")
                    }
                    return n
                }
                return HDF5DatasetInfo(shape: shape, kind: kind, size: H5Tget_size(type))
            }
        }
    }

    /// Reads a whole dataset, converted by HDF5 to `T`.
    public func read<T: HDF5Element>(_ datasetPath: String, as: T.Type = T.self) throws -> [T] {
        let info = try info(datasetPath)
        guard let count = MemoryBudget.product(info.shape) else {
            throw LockstepError.usage("\(path): \(datasetPath) has shape \(info.shape), more elements than this machine can address: use a smaller file")
        }
        return try withDataset(datasetPath) { d in
            var status: herr_t = 0
            let values = [T](unsafeUninitializedCapacity: count) { buf, n in
                status = H5Dread(d, T.h5type, lockstep_h5s_all(), lockstep_h5s_all(), lockstep_h5p_default(), buf.baseAddress)
                n = count
            }
            guard status >= 0 else { throw LockstepError.usage(readFailure(datasetPath, info, as: T.self, HDF5ErrorStack())) }
            return values
        }
    }

    /// Writes a dataset at `datasetPath`, creating intermediate groups.
    public func write<T: HDF5Element>(_ datasetPath: String, _ values: UnsafeBufferPointer<T>, shape: [Int]) throws {
        precondition(shape.reduce(1, *) == values.count, "shape does not match the element count")
        try writing("dataset \(datasetPath)") { file, what in
            let dims = shape.map { hsize_t($0) }
            try Self.using(Self.check(H5Screate_simple(Int32(dims.count), dims, nil), what), H5Sclose, what) { space in
                try Self.using(Self.check(H5Pcreate(lockstep_h5p_link_create()), what), H5Pclose, what) { lcpl in
                    try Self.check(H5Pset_create_intermediate_group(lcpl, 1), what)
                    let d = H5Dcreate2(file, datasetPath, T.h5type, space, lcpl, lockstep_h5p_default(), lockstep_h5p_default())
                    // H5Dclose can fail too: it writes out the last piece of small datasets' data.
                    try Self.using(Self.check(d, what), H5Dclose, what) { d in
                        try Self.check(H5Dwrite(d, T.h5type, lockstep_h5s_all(), lockstep_h5s_all(), lockstep_h5p_default(), values.baseAddress), what)
                    }
                }
            }
        }
    }

    public func write<T: HDF5Element>(_ datasetPath: String, _ values: [T], shape: [Int]) throws {
        try values.withUnsafeBufferPointer { try write(datasetPath, $0, shape: shape) }
    }

    // MARK: Root attributes

    public func setAttribute<T: HDF5Element>(_ name: String, _ values: [T]) throws {
        try writing("attribute \(name)") { file, what in
            var dims = [hsize_t(values.count)]
            try Self.using(Self.check(H5Screate_simple(1, &dims, nil), what), H5Sclose, what) { space in
                try Self.writeAttribute(file, name, type: T.h5type, space: space, what) { a in
                    values.withUnsafeBytes { H5Awrite(a, T.h5type, $0.baseAddress) }
                }
            }
        }
    }

    /// A scalar attribute (dataspace H5S_SCALAR): h5py reads it as a NumPy scalar, so
    /// `int(f.attrs["step"])` works (a 1-element array does not, under NumPy 2).
    public func setAttribute<T: HDF5Element>(_ name: String, scalar value: T) throws {
        try writing("attribute \(name)") { file, what in
            try Self.using(Self.check(H5Screate(H5S_SCALAR), what), H5Sclose, what) { space in
                try Self.writeAttribute(file, name, type: T.h5type, space: space, what) { a in
                    withUnsafeBytes(of: value) { H5Awrite(a, T.h5type, $0.baseAddress) }
                }
            }
        }
    }

    public func setAttribute(_ name: String, _ value: Int64) throws { try setAttribute(name, scalar: value) }

    /// A fixed-length, NUL-terminated ASCII/UTF-8 string attribute (h5py reads it as bytes/str).
    public func setAttribute(_ name: String, _ value: String) throws {
        let bytes = Array(value.utf8) + [0]
        try writing("attribute \(name)") { file, what in
            try Self.using(Self.check(H5Tcopy(lockstep_h5t_c_s1()), what), H5Tclose, what) { type in
                try Self.check(H5Tset_size(type, bytes.count), what)
                try Self.using(Self.check(H5Screate(H5S_SCALAR), what), H5Sclose, what) { space in
                    try Self.writeAttribute(file, name, type: type, space: space, what) { a in
                        bytes.withUnsafeBytes { H5Awrite(a, type, $0.baseAddress) }
                    }
                }
            }
        }
    }

    public func attribute<T: HDF5Element>(_ name: String, as: T.Type = T.self) throws -> [T] {
        try withAttribute(name) { a in
            let what = "\(path): cannot read attribute \(name)"
            let count = try Self.using(Self.check(H5Aget_space(a), what, usage: true), H5Sclose, what) { space in
                Int(try Self.check(H5Sget_simple_extent_npoints(space), what, usage: true))
            }
            var status: herr_t = 0
            let values = [T](unsafeUninitializedCapacity: count) { buf, n in
                status = H5Aread(a, T.h5type, buf.baseAddress)
                n = count
            }
            guard status >= 0 else { throw LockstepError.usage("\(path): attribute \(name) has the wrong type") }
            return values
        }
    }

    public func int64Attribute(_ name: String) throws -> Int64 {
        guard let v = try attribute(name, as: Int64.self).first else {
            throw LockstepError.usage("\(path): attribute \(name) is empty")
        }
        return v
    }

    public func stringAttribute(_ name: String) throws -> String {
        try withAttribute(name) { a in
            let what = "\(path): cannot read attribute \(name)"
            return try Self.using(Self.check(H5Aget_type(a), what, usage: true), H5Tclose, what) { type in
                guard H5Tget_class(type) == H5T_STRING, H5Tis_variable_str(type) == 0 else {
                    throw LockstepError.usage("\(path): attribute \(name) is not a fixed-length string")
                }
                var bytes = [UInt8](repeating: 0, count: H5Tget_size(type) + 1)
                guard H5Aread(a, type, &bytes) >= 0 else { throw LockstepError.usage("\(what): \(HDF5ErrorStack().reason)") }
                return String(decoding: bytes.prefix { $0 != 0 }, as: UTF8.self)
            }
        }
    }

    public func hasAttribute(_ name: String) -> Bool {
        guard id >= 0 else { return false }
        Self.quiet()
        return H5Aexists(id, name) > 0
    }

    /// Paths of every dataset in the file, for messages and `lockstep inspect` (a dataset with
    /// two names, through a hard or soft link, is listed under both).
    public func datasetPaths(under group: String = "/") -> [String] {
        var seen = Set<[UInt64]>()
        return datasetPaths(under: group, seen: &seen)
    }

    // MARK: Private

    /// `seen` holds (file number, address) of each group entered, so a link back up ends the walk.
    /// By object type, not by whether info() succeeds: a dataset it rejects is still a dataset.
    private func datasetPaths(under group: String, seen: inout Set<[UInt64]>) -> [String] {
        members(of: group).flatMap { member -> [String] in
            let path = (group == "/" ? "" : group) + "/" + member
            var info = H5O_info_t()
            guard H5Oget_info_by_name2(id, path, &info, UInt32(H5O_INFO_BASIC), lockstep_h5p_default()) >= 0 else { return [] }
            switch info.type {
            case H5O_TYPE_DATASET: return [path]
            // Also bounded in count: a corrupt file may chain any number of distinct groups.
            case H5O_TYPE_GROUP where seen.count < 10_000 && seen.insert([UInt64(info.fileno), UInt64(info.addr)]).inserted:
                return datasetPaths(under: path, seen: &seen)
            default: return []
            }
        }
    }

    /// Runs one write of `object` ("dataset /x") with the file's id and the start of its error
    /// messages, "cannot write dataset /x to FILE", and remembers the first failure for finish().
    private func writing(_ object: String, _ body: (hid_t, String) throws -> Void) throws {
        Self.quiet()
        let what = "cannot write \(object) to \(path)"
        let file = try handle(what)
        do { try body(file, what) } catch {
            if failedWrite == nil {
                let message = (error as? LockstepError)?.message ?? "\(error)"
                failedWrite = (object, message.hasPrefix(what + ": ") ? String(message.dropFirst(what.count + 2)) : message)
            }
            throw error
        }
    }

    /// The open file's id, or an error saying the file was already closed (a programmer's slip,
    /// but thrown rather than trapped: every caller already handles errors).
    func handle(_ what: @autoclosure () -> String) throws -> hid_t {
        guard id >= 0 else { throw LockstepError.runtime("\(what()): the file is already closed") }
        return id
    }

    /// `result` if HDF5 reported success, else an error "`what`: reason" (runtime unless `usage`).
    /// Reads the error stack at once: the next HDF5 call clears it.
    @discardableResult
    static func check<R: BinaryInteger>(_ result: R, _ what: @autoclosure () -> String, usage: Bool = false) throws -> R {
        guard result < 0 else { return result }
        let message = "\(what()): \(HDF5ErrorStack().reason)"
        throw usage ? LockstepError.usage(message) : LockstepError.runtime(message)
    }

    /// Runs `body` on an object id and closes it. A failed close is reported when `body`
    /// succeeded; after a failure in `body`, that first failure is the one worth reporting.
    @discardableResult
    static func using<R>(_ object: hid_t, _ close: (hid_t) -> herr_t, _ what: @autoclosure () -> String,
                                 _ body: (hid_t) throws -> R) throws -> R {
        let result: R
        do { result = try body(object) } catch {
            _ = close(object)
            throw error
        }
        try check(close(object), what())
        return result
    }

    func withDataset<R>(_ datasetPath: String, _ body: (hid_t) throws -> R) throws -> R {
        Self.quiet()
        let file = try handle("\(path): cannot read \(datasetPath)")
        if let unreachable = unreachable(datasetPath) { throw LockstepError.usage(unreachable) }
        guard exists(datasetPath) else {
            let paths = datasetPaths()
            throw LockstepError.usage("\(path) has no dataset \(datasetPath) (it has \(paths.isEmpty ? "none" : paths.joined(separator: ", ")))")
        }
        let d = H5Dopen2(file, datasetPath, lockstep_h5p_default())
        guard d >= 0 else {
            let stack = HDF5ErrorStack()
            if stack.isDamage { throw LockstepError.usage("\(path) is corrupt: HDF5 cannot open \(datasetPath) (\(stack.reason)): copy or write the file again") }
            throw LockstepError.usage("\(path): \(datasetPath) is not a dataset")
        }
        return try Self.using(d, H5Dclose, "\(path): cannot close \(datasetPath)", body)
    }

    private func withAttribute<R>(_ name: String, _ body: (hid_t) throws -> R) throws -> R {
        Self.quiet()
        let file = try handle("\(path): cannot read attribute \(name)")
        guard hasAttribute(name) else { throw LockstepError.usage("\(path) has no attribute \(name): not a Lockstep checkpoint?") }
        let what = "\(path): cannot read attribute \(name)"
        return try Self.using(Self.check(H5Aopen(file, name, lockstep_h5p_default()), what, usage: true), H5Aclose, what, body)
    }

    private static func writeAttribute(_ file: hid_t, _ name: String, type: hid_t, space: hid_t, _ what: String,
                                       _ write: (hid_t) -> herr_t) throws {
        if try Self.check(H5Aexists(file, name), what) > 0 { try Self.check(H5Adelete(file, name), what) }
        try Self.using(Self.check(H5Acreate2(file, name, type, space, lockstep_h5p_default(), lockstep_h5p_default()), what), H5Aclose, what) { a in
            try Self.check(write(a), what)
        }
    }

}
