// Writes one HDF5 dataset of known shape a block of rows at a time (hyperslab writes), so an
// import holds one block in memory, never the dataset: contiguous storage by default, or chunks
// of whole rows with optional gzip (`lockstep import --chunk-rows N --compression gzip`).

import CHDF5

/// How `lockstep import` stores the datasets it writes.
public struct StorageLayout: Sendable, Equatable {
    public enum Compression: String, Sendable, CaseIterable {
        case none, gzip
    }

    /// Rows per feature chunk; nil means contiguous storage, or with gzip chunks of about
    /// `defaultChunkBytes` of rows.
    public var chunkRows: Int?
    public var compression: Compression

    public static let contiguous = StorageLayout()
    /// What a chunk holds when gzip is asked for without --chunk-rows: big enough that the
    /// compressor has something to work on, small enough that a random row read inflates little.
    public static let defaultChunkBytes = 1 << 20
    /// h5py's default gzip level.
    public static let gzipLevel: UInt32 = 4
    /// HDF5 refuses chunks of 4 GiB or more.
    static let maxChunkBytes = (1 << 32) - 1

    public init(chunkRows: Int? = nil, compression: Compression = .none) {
        self.chunkRows = chunkRows
        self.compression = compression
    }

    /// Parses the command line's `--chunk-rows` and `--compression`; a bad value is a usage error.
    public init(chunkRows: Int?, compression: String) throws {
        guard let c = Compression(rawValue: compression) else {
            throw LockstepError.usage("--compression must be none or gzip, got \(compression)")
        }
        if let chunkRows, chunkRows < 1 {
            throw LockstepError.usage("--chunk-rows must be at least 1 (rows per chunk), got \(chunkRows): leave it out for contiguous storage")
        }
        self.init(chunkRows: chunkRows, compression: c)
    }

    /// What a dataset's rows are: features are read by row when streaming, labels are read whole.
    public enum Role: Sendable { case features, labels }

    /// Rows per chunk for a dataset of `rows` rows of `rowBytes` bytes each, or nil for contiguous.
    /// Labels stay contiguous unless compressed (they are read whole, so chunks only cost).
    func chunk(rows: Int, rowBytes: Int, role: Role, path: String) throws -> Int? {
        let wanted: Int
        switch (role, chunkRows, compression) {
        case (.features, let n?, _): wanted = n
        case (_, nil, .none), (.labels, _, .none): return nil
        case (_, _, .gzip): wanted = max(1, Self.defaultChunkBytes / max(rowBytes, 1))
        }
        let n = min(wanted, max(rows, 1))           // HDF5: a chunk no larger than a fixed dimension
        guard case (let bytes, false) = n.multipliedReportingOverflow(by: rowBytes), bytes <= Self.maxChunkBytes else {
            throw LockstepError.usage("\(path): a chunk of \(n) rows of \(rowBytes) bytes is 4 GiB or more, which HDF5 cannot store: give a smaller --chunk-rows")
        }
        return n
    }
}

/// The element types an import writes, as stored (little-endian, like the machine).
public enum StoredType: Sendable {
    case uint8, float32, int64

    public var size: Int {
        switch self {
        case .uint8: return 1
        case .float32: return 4
        case .int64: return 8
        }
    }

    var h5type: hid_t {
        switch self {
        case .uint8: return UInt8.h5type
        case .float32: return Float.h5type
        case .int64: return Int64.h5type
        }
    }
}

/// One dataset being written, rows in order: `append` writes the next block, `finish` checks that
/// every row was written and closes it. Errors here are runtime errors (a full disk, say): every
/// size was checked before the dataset was created.
final class HDF5DatasetWriter {
    let path: String
    let type: StoredType
    let shape: [Int]
    let rowBytes: Int
    private(set) var rowsWritten = 0
    private var dataset: hid_t = -1
    private let what: String

    /// Creates `path` (and the groups above it) in `file`, with the layout `layout` asks for a
    /// dataset of this role. The shape's byte count is checked arithmetic: it comes from input.
    init(file: HDF5File, path: String, type: StoredType, shape: [Int], layout: StorageLayout, role: StorageLayout.Role) throws {
        precondition(!shape.isEmpty && shape.allSatisfy { $0 >= 0 }, "a dataset needs a shape [N, ...]")
        self.path = path
        self.type = type
        self.shape = shape
        what = "cannot write dataset \(path) to \(file.path)"
        guard let count = IDXImporter.elementCount(shape), case (_, false) = count.multipliedReportingOverflow(by: type.size),
              let width = IDXImporter.elementCount(Array(shape.dropFirst())) else {
            throw LockstepError.usage("\(path): shape \(shape) holds more bytes than any file can: check the input's size")
        }
        rowBytes = width * type.size                 // ≤ the total, which did not overflow
        let chunk = try layout.chunk(rows: shape[0], rowBytes: rowBytes, role: role, path: path)
        HDF5File.quiet()
        let fileID = try file.handle(what)
        let what = self.what
        let dims = shape.map { hsize_t($0) }
        dataset = try HDF5File.using(HDF5File.check(H5Screate_simple(Int32(dims.count), dims, nil), what), H5Sclose, what) { space in
            try HDF5File.using(HDF5File.check(H5Pcreate(lockstep_h5p_link_create()), what), H5Pclose, what) { lcpl in
                try HDF5File.check(H5Pset_create_intermediate_group(lcpl, 1), what)
                return try HDF5File.using(HDF5File.check(H5Pcreate(lockstep_h5p_dataset_create()), what), H5Pclose, what) { dcpl in
                    // Every element gets written: filling the dataset with zeros first would write it twice.
                    try HDF5File.check(H5Pset_fill_time(dcpl, H5D_FILL_TIME_NEVER), what)
                    if let chunk {
                        let chunkDims = [hsize_t(chunk)] + dims.dropFirst()
                        try HDF5File.check(H5Pset_chunk(dcpl, Int32(chunkDims.count), chunkDims), what)
                        if layout.compression == .gzip {
                            guard H5Zfilter_avail(H5Z_FILTER_DEFLATE) > 0 else {
                                throw LockstepError.runtime("\(what): this HDF5 library has no gzip (deflate) filter: use --compression none")
                            }
                            try HDF5File.check(H5Pset_deflate(dcpl, StorageLayout.gzipLevel), what)
                        }
                    }
                    return try HDF5File.check(H5Dcreate2(fileID, path, type.h5type, space, lcpl, dcpl, lockstep_h5p_default()), what)
                }
            }
        }
    }

    deinit {
        if dataset >= 0 { _ = H5Dclose(dataset) }
    }

    /// Writes the next `rows.count / rowBytes` rows (whole rows only).
    func append(_ rows: UnsafeRawBufferPointer) throws {
        precondition(rows.count % max(rowBytes, 1) == 0, "append takes whole rows")
        let n = rowBytes == 0 ? 0 : rows.count / rowBytes
        guard n > 0 else { return }
        precondition(rowsWritten + n <= shape[0], "more rows than the dataset holds")
        HDF5File.quiet()
        let what = self.what
        let start = [hsize_t(rowsWritten)] + Array(repeating: 0, count: shape.count - 1)
        let count = [hsize_t(n)] + shape.dropFirst().map { hsize_t($0) }
        try HDF5File.using(HDF5File.check(H5Dget_space(dataset), what), H5Sclose, what) { fileSpace in
            try HDF5File.check(H5Sselect_hyperslab(fileSpace, H5S_SELECT_SET, start, nil, count, nil), what)
            try HDF5File.using(HDF5File.check(H5Screate_simple(Int32(count.count), count, nil), what), H5Sclose, what) { memSpace in
                try HDF5File.check(H5Dwrite(dataset, type.h5type, memSpace, fileSpace, lockstep_h5p_default(), rows.baseAddress), what)
            }
        }
        rowsWritten += n
    }

    /// Closes the dataset once every row is in (H5Dclose can fail: it writes out what is cached).
    func finish() throws {
        guard rowsWritten == shape[0] else {
            throw LockstepError.runtime("\(what): only \(rowsWritten) of \(shape[0]) rows were written")
        }
        let d = dataset
        dataset = -1
        HDF5File.quiet()
        try HDF5File.check(H5Dclose(d), what)
    }
}

/// Rows of one array going to two datasets: the first `trainRows` to one writer, the rest to the
/// other (a test fraction's last rows, in their order).
final class RowRouter {
    let train: HDF5DatasetWriter
    let test: HDF5DatasetWriter?
    let trainRows: Int
    private var seen = 0

    init(train: HDF5DatasetWriter, test: HDF5DatasetWriter?) {
        self.train = train
        self.test = test
        trainRows = train.shape[0]
    }

    var rowBytes: Int { train.rowBytes }

    func append(_ rows: UnsafeRawBufferPointer) throws {
        let n = rowBytes == 0 ? 0 : rows.count / rowBytes
        let toTrain = max(0, min(n, trainRows - seen))
        try train.append(UnsafeRawBufferPointer(rebasing: rows[0..<(toTrain * rowBytes)]))
        if toTrain < n {
            guard let test else { preconditionFailure("more rows than the split holds") }
            try test.append(UnsafeRawBufferPointer(rebasing: rows[(toTrain * rowBytes)...]))
        }
        seen += n
    }

    func finish() throws {
        try train.finish()
        try test?.finish()
    }
}

extension HDF5File {
    /// Writes a whole array held in memory as one dataset with `layout` (IDX and CIFAR imports).
    public func write<T: HDF5Element>(_ datasetPath: String, _ values: [T], shape: [Int], layout: StorageLayout,
                                      role: StorageLayout.Role) throws {
        precondition(shape.reduce(1, *) == values.count, "shape does not match the element count")
        let type: StoredType
        switch T.self {
        case is UInt8.Type: type = .uint8
        case is Float.Type: type = .float32
        case is Int64.Type: type = .int64
        default: preconditionFailure("imports write uint8, float32 or int64")
        }
        let writer = try HDF5DatasetWriter(file: self, path: datasetPath, type: type, shape: shape, layout: layout, role: role)
        try values.withUnsafeBytes { try writer.append($0) }
        try writer.finish()
    }
}
