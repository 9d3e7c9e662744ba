// The only place that talks to HDF5: create/open files, write and read whole datasets and root
// attributes. HDF5's own error stack is silenced; failures become one-line LockstepErrors.

import CHDF5

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
    public var count: Int { shape.reduce(1, *) }
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
    private var id: hid_t

    /// HDF5's automatic error printing is per thread in its thread-safe build: turn it off on
    /// the calling thread before each operation that may fail (it costs a function call).
    @inline(__always) private static func quiet() { lockstep_h5_silence_errors() }

    private init(path: String, id: hid_t) {
        self.path = path
        self.id = id
    }

    deinit { close() }

    /// Creates (or truncates) a file for writing.
    public static func create(_ path: String) throws -> HDF5File {
        quiet()
        let id = H5Fcreate(path, lockstep_h5f_acc_trunc(), lockstep_h5p_default(), lockstep_h5p_default())
        guard id >= 0 else { throw LockstepError.runtime("cannot create HDF5 file \(path): check that its folder exists and is writable") }
        return HDF5File(path: path, id: id)
    }

    /// Opens an existing file read-only; a missing or non-HDF5 file is a usage error.
    public static func open(_ path: String) throws -> HDF5File {
        quiet()
        guard access(path, R_OK) == 0 else {
            throw LockstepError.usage("\(path): no such readable file")
        }
        guard H5Fis_hdf5(path) > 0 else {
            throw LockstepError.usage("\(path) is not an HDF5 file (or is truncated): give a file written by h5py or `lockstep import`")
        }
        let id = H5Fopen(path, lockstep_h5f_acc_rdonly(), lockstep_h5p_default())
        guard id >= 0 else { throw LockstepError.usage("\(path): HDF5 could not open it (truncated or corrupt?)") }
        return HDF5File(path: path, id: id)
    }

    public func close() {
        if id >= 0 { H5Fclose(id) }
        id = -1
    }

    /// Whether an object exists at an absolute path such as "/train/x".
    public func exists(_ objectPath: String) -> Bool {
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

    public func info(_ datasetPath: String) throws -> HDF5DatasetInfo {
        let d = try openDataset(datasetPath)
        defer { H5Dclose(d) }
        let space = H5Dget_space(d)
        defer { H5Sclose(space) }
        let rank = Int(H5Sget_simple_extent_ndims(space))
        var dims = [hsize_t](repeating: 0, count: max(rank, 1))
        H5Sget_simple_extent_dims(space, &dims, nil)
        let type = H5Dget_type(d)
        defer { H5Tclose(type) }
        let kind: HDF5DatasetInfo.Kind
        switch H5Tget_class(type) {
        case H5T_INTEGER: kind = H5Tget_sign(type) == H5T_SGN_NONE ? .unsignedInteger : .signedInteger
        case H5T_FLOAT: kind = .float
        default: kind = .other
        }
        return HDF5DatasetInfo(shape: dims.prefix(rank).map { Int($0) }, kind: kind, size: H5Tget_size(type))
    }

    /// Reads a whole dataset, converted by HDF5 to `T`.
    public func read<T: HDF5Element>(_ datasetPath: String, as: T.Type = T.self) throws -> [T] {
        let count = try info(datasetPath).count
        let d = try openDataset(datasetPath)
        defer { H5Dclose(d) }
        var status: herr_t = 0
        let values = [T](unsafeUninitializedCapacity: count) { buf, n in
            status = H5Dread(d, T.h5type, lockstep_h5s_all(), lockstep_h5s_all(), lockstep_h5p_default(), buf.baseAddress)
            n = count
        }
        guard status >= 0 else { throw LockstepError.usage("\(path): cannot read \(datasetPath) (truncated file or unconvertible type)") }
        return values
    }

    /// Writes a dataset at `datasetPath`, creating intermediate groups.
    public func write<T: HDF5Element>(_ datasetPath: String, _ values: UnsafeBufferPointer<T>, shape: [Int]) throws {
        precondition(shape.reduce(1, *) == values.count, "shape does not match the element count")
        let dims = shape.map { hsize_t($0) }
        let space = H5Screate_simple(Int32(dims.count), dims, nil)
        defer { H5Sclose(space) }
        let lcpl = H5Pcreate(lockstep_h5p_link_create())
        H5Pset_create_intermediate_group(lcpl, 1)
        defer { H5Pclose(lcpl) }
        let d = H5Dcreate2(id, datasetPath, T.h5type, space, lcpl, lockstep_h5p_default(), lockstep_h5p_default())
        guard d >= 0 else { throw LockstepError.runtime("\(path): cannot create dataset \(datasetPath)") }
        defer { H5Dclose(d) }
        let status = H5Dwrite(d, T.h5type, lockstep_h5s_all(), lockstep_h5s_all(), lockstep_h5p_default(), values.baseAddress)
        guard status >= 0 else { throw LockstepError.runtime("\(path): cannot write dataset \(datasetPath) (disk full?)") }
    }

    public func write<T: HDF5Element>(_ datasetPath: String, _ values: [T], shape: [Int]) throws {
        try values.withUnsafeBufferPointer { try write(datasetPath, $0, shape: shape) }
    }

    // MARK: Root attributes

    public func setAttribute<T: HDF5Element>(_ name: String, _ values: [T]) throws {
        var dims = [hsize_t(values.count)]
        let space = H5Screate_simple(1, &dims, nil)
        defer { H5Sclose(space) }
        try writeAttribute(name, type: T.h5type, space: space) { a in
            values.withUnsafeBytes { H5Awrite(a, T.h5type, $0.baseAddress) }
        }
    }

    public func setAttribute(_ name: String, _ value: Int64) throws { try setAttribute(name, [value]) }

    /// A fixed-length, NUL-terminated ASCII/UTF-8 string attribute (h5py reads it as bytes/str).
    public func setAttribute(_ name: String, _ value: String) throws {
        let bytes = Array(value.utf8) + [0]
        let type = H5Tcopy(lockstep_h5t_c_s1())
        defer { H5Tclose(type) }
        H5Tset_size(type, bytes.count)
        let space = H5Screate(H5S_SCALAR)
        defer { H5Sclose(space) }
        try writeAttribute(name, type: type, space: space) { a in
            bytes.withUnsafeBytes { H5Awrite(a, type, $0.baseAddress) }
        }
    }

    public func attribute<T: HDF5Element>(_ name: String, as: T.Type = T.self) throws -> [T] {
        let a = try openAttribute(name)
        defer { H5Aclose(a) }
        let space = H5Aget_space(a)
        defer { H5Sclose(space) }
        let count = Int(H5Sget_simple_extent_npoints(space))
        var status: herr_t = 0
        let values = [T](unsafeUninitializedCapacity: count) { buf, n in
            status = H5Aread(a, T.h5type, buf.baseAddress)
            n = count
        }
        guard status >= 0 else { throw LockstepError.usage("\(path): attribute \(name) has the wrong type") }
        return values
    }

    public func int64Attribute(_ name: String) throws -> Int64 {
        guard let v = try attribute(name, as: Int64.self).first else {
            throw LockstepError.usage("\(path): attribute \(name) is empty")
        }
        return v
    }

    public func stringAttribute(_ name: String) throws -> String {
        let a = try openAttribute(name)
        defer { H5Aclose(a) }
        let type = H5Aget_type(a)
        defer { H5Tclose(type) }
        guard H5Tget_class(type) == H5T_STRING, H5Tis_variable_str(type) == 0 else {
            throw LockstepError.usage("\(path): attribute \(name) is not a fixed-length string")
        }
        var bytes = [UInt8](repeating: 0, count: H5Tget_size(type) + 1)
        guard H5Aread(a, type, &bytes) >= 0 else { throw LockstepError.usage("\(path): cannot read attribute \(name)") }
        return String(decoding: bytes.prefix { $0 != 0 }, as: UTF8.self)
    }

    public func hasAttribute(_ name: String) -> Bool { H5Aexists(id, name) > 0 }

    /// Paths of every dataset in the file, for messages and `lockstep inspect`.
    /// Bounded: a group may contain itself (a hard-link cycle is valid HDF5) or list a member its
    /// name index cannot find (a name that is not UTF-8, a corrupt file); neither may recurse
    /// without end (docs/fuzzing.md, D3).
    public func datasetPaths(under group: String = "/") -> [String] {
        var visited = 0
        return datasetPaths(under: group, depth: 0, visited: &visited)
    }

    private func datasetPaths(under group: String, depth: Int, visited: inout Int) -> [String] {
        guard depth < 16, visited < 10_000 else { return [] }
        var paths: [String] = []
        for member in members(of: group) {
            visited += 1
            let path = (group == "/" ? "" : group) + "/" + member
            // Only what exists by name; info's own error message must not come back here.
            guard exists(path) else { continue }
            Self.quiet()
            let d = H5Dopen2(id, path, lockstep_h5p_default())
            if d >= 0 {
                H5Dclose(d)
                paths.append(path)
            } else {
                paths += datasetPaths(under: path, depth: depth + 1, visited: &visited)
            }
        }
        return paths
    }

    // MARK: Private

    private func openDataset(_ datasetPath: String) throws -> hid_t {
        Self.quiet()
        guard exists(datasetPath) else {
            throw LockstepError.usage("\(path) has no dataset \(datasetPath) (it has \(datasetPaths().joined(separator: ", ")))")
        }
        let d = H5Dopen2(id, datasetPath, lockstep_h5p_default())
        guard d >= 0 else { throw LockstepError.usage("\(path): \(datasetPath) is not a dataset") }
        return d
    }

    private func openAttribute(_ name: String) throws -> hid_t {
        Self.quiet()
        guard hasAttribute(name) else { throw LockstepError.usage("\(path) has no attribute \(name): not a Lockstep checkpoint?") }
        return H5Aopen(id, name, lockstep_h5p_default())
    }

    private func writeAttribute(_ name: String, type: hid_t, space: hid_t, _ write: (hid_t) -> herr_t) throws {
        if H5Aexists(id, name) > 0 { H5Adelete(id, name) }
        let a = H5Acreate2(id, name, type, space, lockstep_h5p_default(), lockstep_h5p_default())
        guard a >= 0 else { throw LockstepError.runtime("\(path): cannot create attribute \(name)") }
        defer { H5Aclose(a) }
        guard write(a) >= 0 else { throw LockstepError.runtime("\(path): cannot write attribute \(name)") }
    }
}

#if canImport(Glibc)
import Glibc
#endif
