// Rows of one [N, ...] dataset read on demand, for `data.load = "stream"`: a set of row runs
// becomes one hyperslab selection (a union of blocks [start, count] × the whole sample) and one
// H5Dread into a contiguous buffer, in file order. The dataset stays open for the reader's
// lifetime, with a chunk cache of its own size (`data.cache_mb`; it matters for chunked files).
// HDF5 here is the thread-safe build, so the loader thread may read while the main thread
// writes a checkpoint; every call still goes through the library's global lock.

import CHDF5

final class HDF5RowReader {
    let path: String
    let datasetPath: String
    /// Rows in the dataset and floats (or bytes) per row.
    let rows: Int
    let width: Int
    private let elementType: hid_t
    private let elementSize: Int
    private let dataset: hid_t
    private let fileSpace: hid_t
    /// The sample dimensions after the first, for hyperslab blocks.
    private var start: [hsize_t]
    private var count: [hsize_t]

    /// Opens `datasetPath` of `file` for row reads as `T` (UInt8 or Float), with a chunk cache
    /// of `cacheBytes`.
    init<T: HDF5Element>(file: HDF5File, datasetPath: String, as: T.Type, cacheBytes: Int) throws {
        HDF5File.quiet()
        path = file.path
        self.datasetPath = datasetPath
        let info = try file.info(datasetPath)
        rows = info.shape[0]
        width = info.shape.dropFirst().reduce(1, *)
        elementType = T.h5type
        elementSize = MemoryLayout<T>.size
        let what = "\(file.path): cannot open \(datasetPath) for reading rows"
        let access = try HDF5File.check(H5Pcreate(lockstep_h5p_dataset_access()), what)
        defer { H5Pclose(access) }
        // 521 slots (a prime, as HDF5 advises); w0 = 1: evict fully read chunks first.
        try HDF5File.check(H5Pset_chunk_cache(access, 521, max(cacheBytes, 0), 1), what)
        dataset = try HDF5File.check(H5Dopen2(try file.handle(what), datasetPath, access), what, usage: true)
        fileSpace = try HDF5File.check(H5Dget_space(dataset), what)
        start = [hsize_t](repeating: 0, count: info.shape.count)
        count = info.shape.map { hsize_t($0) }
    }

    deinit {
        H5Sclose(fileSpace)
        H5Dclose(dataset)
    }

    /// Reads the rows of `runs` (each [start, start + count), ascending and disjoint) into `out`,
    /// one after another. Returns the rows read.
    func read(runs: UnsafeBufferPointer<(start: Int, count: Int)>, into out: UnsafeMutableRawPointer) throws -> Int {
        HDF5File.quiet()
        var total = 0
        let what = "\(path): cannot read rows of \(datasetPath)"
        for (i, run) in runs.enumerated() {
            start[0] = hsize_t(run.start)
            count[0] = hsize_t(run.count)
            try HDF5File.check(H5Sselect_hyperslab(fileSpace, i == 0 ? H5S_SELECT_SET : H5S_SELECT_OR, start, nil, count, nil), what)
            total += run.count
        }
        guard total > 0 else { return 0 }
        var elements = hsize_t(total * width)   // a one-dimensional memory space: no array needed
        let memory = try HDF5File.check(H5Screate_simple(1, &elements, nil), what)
        defer { H5Sclose(memory) }
        try HDF5File.check(H5Dread(dataset, elementType, memory, fileSpace, lockstep_h5p_default(), out), what)
        return total
    }

    /// Reads the contiguous rows `range` into `out` (on the stack: a full-batch step reads this way).
    func read(_ range: Range<Int>, into out: UnsafeMutableRawPointer) throws {
        var run = (start: range.lowerBound, count: range.count)
        _ = try withUnsafePointer(to: &run) { try read(runs: UnsafeBufferPointer(start: $0, count: 1), into: out) }
    }

    /// Bytes per row as read.
    var rowBytes: Int { width * elementSize }
}
