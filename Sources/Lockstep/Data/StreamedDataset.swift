// `data.load = "stream"`: a split read from its HDF5 file row by row as training asks for it,
// so a rank's memory does not grow with the dataset (the labels, 4 bytes a sample, stay in
// memory). A gather sorts the requested rows, coalesces runs of consecutive rows, reads them in
// one hyperslab selection (HDF5RowReader) into a staging buffer in file order, and writes each
// row, normalised by the same arithmetic as the in-memory `Dataset`, where the caller asked for
// it: so both sources give bitwise the same batches. Requests larger than the staging buffer
// (16 MiB) are read in several selections.
//
// The batch loader's thread and the main thread (evaluation, the full-gradient pass) may gather
// at once; a mutex serialises them. A read that fails mid-run (a filesystem error) aborts the
// whole job with the rank and the reason, as any rank-local failure does.

#if canImport(Glibc)
import Glibc
#endif

public final class StreamedDataset: DataSource {
    public let name: String
    public let count: Int
    public let sampleShape: [Int]
    public let width: Int
    public let labels: [Int32]
    private let isUInt8: Bool
    private let file: HDF5File
    private let reader: HDF5RowReader
    private let layout: SplitLayout
    public private(set) var scale: Float = 1
    public private(set) var shift: Float = 0

    /// Rows the staging buffer holds, and the buffers of one selection: sorted (row << 32 | slot)
    /// keys, the runs, and the rows as read.
    private let stagingRows: Int
    private let keys: UnsafeMutablePointer<Int64>
    private let runs: UnsafeMutablePointer<(start: Int, count: Int)>
    private let staged: UnsafeMutableRawPointer
    private let lock: UnsafeMutablePointer<pthread_mutex_t>

    /// Bytes of the staging buffer (a bound, not a target: at least one row).
    static let stagingBytes = 16 << 20

    /// Opens and validates the split at `xPath`/`yPath` of `file` (kept open, read-only) without
    /// reading its features; `cacheBytes` is HDF5's chunk cache for them. Non-finite float
    /// features are checked by `checkFeatures`, a slice per rank.
    public init(file: HDF5File, xPath: String, yPath: String, classes: Int, name: String, cacheBytes: Int) throws {
        self.name = name
        self.file = file
        layout = try SplitLayout(file: file, xPath: xPath, yPath: yPath)
        count = layout.count
        sampleShape = layout.sampleShape
        isUInt8 = layout.isUInt8
        // A row must fit the staging buffer's arithmetic; labels are read whole.
        try MemoryBudget.require(count: MemoryBudget.product(sampleShape), elementSize: isUInt8 ? 1 : MemoryLayout<Float>.size,
                                 for: "one sample of \(layout.where_) (shape \(sampleShape))", fix: "use smaller samples")
        try MemoryBudget.require(count: count, elementSize: MemoryLayout<Int64>.size, for: "the labels of \(file.path):\(yPath)",
                                 fix: "use a smaller file")
        width = layout.width
        labels = try layout.labels(classes: classes)
        reader = isUInt8 ? try HDF5RowReader(file: file, datasetPath: xPath, as: UInt8.self, cacheBytes: cacheBytes)
                         : try HDF5RowReader(file: file, datasetPath: xPath, as: Float.self, cacheBytes: cacheBytes)
        stagingRows = max(1, min(count, Self.stagingBytes / max(reader.rowBytes, 1)))
        keys = .allocate(capacity: stagingRows)
        runs = .allocate(capacity: stagingRows)
        staged = .allocate(byteCount: stagingRows * reader.rowBytes, alignment: 64)
        lock = .allocate(capacity: 1)
        pthread_mutex_init(lock, nil)
        if isUInt8 { scale = 1.0 / 255 }
    }

    deinit {
        pthread_mutex_destroy(lock)
        lock.deallocate()
        keys.deallocate()
        runs.deallocate()
        staged.deallocate()
    }

    /// Rank `rank` of `ranks` reads its contiguous slice of the float features and returns the
    /// first sample there holding a NaN or an infinity (nil: none, or uint8 features).
    public func firstNonFiniteSample(rank: Int, of ranks: Int) throws -> Int? {
        guard !isUInt8 else { return nil }
        let slice = (count * rank / ranks)..<(count * (rank + 1) / ranks)
        var found: Int?
        try forEachChunk(of: slice) { start, rows, floats in
            if found == nil, let bad = UnsafeBufferPointer(start: floats, count: rows * width).firstIndex(where: { !$0.isFinite }) {
                found = start + bad / width
            }
        }
        return found
    }

    /// The message every rank gives for the first non-finite sample (found collectively).
    public func nonFiniteError(sample: Int) -> LockstepError { layout.nonFinite(sample: sample) }

    public var fingerprint: UInt64 {
        let rows = FeatureArithmetic.fingerprintRows(count: count)
        let rowBytes = reader.rowBytes
        let raw = UnsafeMutableRawPointer.allocate(byteCount: rows.count * rowBytes, alignment: 64)
        defer { raw.deallocate() }
        pthread_mutex_lock(lock)
        defer { pthread_mutex_unlock(lock) }
        for (i, row) in rows.enumerated() { readOrAbort(row..<(row + 1), into: raw + i * rowBytes) }
        return FeatureArithmetic.fingerprint(count: count, width: width, sampleShape: sampleShape, labels: labels) { row in
            UnsafeRawBufferPointer(start: raw + rows.firstIndex(of: row)! * rowBytes, count: rowBytes)
        }
    }

    public func normalize(_ mode: Normalization, stats: (mean: Double, std: Double)?) {
        (scale, shift) = FeatureArithmetic.affine(mode, stats: stats, isUInt8: isUInt8)
    }

    /// One pass over `rows` of the file, in file order (so bitwise the in-memory statistics).
    public func statistics(rows: Range<Int>) -> (mean: Double, std: Double) {
        var moments = FeatureArithmetic.Moments()
        do {
            try forEachChunk(of: rows) { _, rows, _ in
                if isUInt8 {
                    moments.add(UnsafeBufferPointer(start: staged.assumingMemoryBound(to: UInt8.self), count: rows * width))
                } else {
                    moments.add(UnsafeBufferPointer(start: staged.assumingMemoryBound(to: Float.self), count: rows * width))
                }
            }
        } catch {
            Communicator.world.abort("\(error)")
        }
        return moments.result(isUInt8: isUInt8)
    }

    public func gather(_ indices: UnsafeBufferPointer<Int32>, x: UnsafeMutablePointer<Float>, y: UnsafeMutablePointer<Int32>) {
        pthread_mutex_lock(lock)
        defer { pthread_mutex_unlock(lock) }
        var done = 0
        while done < indices.count {
            let n = min(stagingRows, indices.count - done)
            gatherSelection(UnsafeBufferPointer(rebasing: indices[done..<(done + n)]), x: x + done * width, y: y + done)
            done += n
        }
    }

    public func gather(_ range: Range<Int>, x: UnsafeMutablePointer<Float>, y: UnsafeMutablePointer<Int32>) {
        pthread_mutex_lock(lock)
        defer { pthread_mutex_unlock(lock) }
        var start = range.lowerBound
        while start < range.upperBound {
            let end = min(start + stagingRows, range.upperBound)
            readOrAbort(start..<end, into: staged)
            for row in 0..<(end - start) {
                copyStaged(row, to: x + (start - range.lowerBound + row) * width)
                y[start - range.lowerBound + row] = labels[start + row]
            }
            start = end
        }
    }

    /// At most `stagingRows` indices: sort, coalesce, read once, scatter back in request order.
    private func gatherSelection(_ indices: UnsafeBufferPointer<Int32>, x: UnsafeMutablePointer<Float>, y: UnsafeMutablePointer<Int32>) {
        for (slot, index) in indices.enumerated() { keys[slot] = Int64(index) << 32 | Int64(slot) }
        Self.heapSort(keys, indices.count)
        var runCount = 0
        var previous = -2
        for k in 0..<indices.count {
            let row = Int(keys[k] >> 32)
            if row == previous { continue }
            if row == previous + 1 { runs[runCount - 1].count += 1 } else {
                runs[runCount] = (row, 1)
                runCount += 1
            }
            previous = row
        }
        do {
            _ = try reader.read(runs: UnsafeBufferPointer(start: runs, count: runCount), into: staged)
        } catch {
            Communicator.world.abort("\(error)")
        }
        // The k-th distinct row in file order is staged row k.
        var stagedRow = -1
        previous = -1
        for k in 0..<indices.count {
            let row = Int(keys[k] >> 32), slot = Int(keys[k] & 0xFFFF_FFFF)
            if row != previous { stagedRow += 1 }
            previous = row
            copyStaged(stagedRow, to: x + slot * width)
            y[slot] = labels[row]
        }
    }

    @inline(__always)
    private func copyStaged(_ row: Int, to out: UnsafeMutablePointer<Float>) {
        if isUInt8 {
            FeatureArithmetic.copy(staged.assumingMemoryBound(to: UInt8.self) + row * width, to: out, width: width, scale, shift)
        } else {
            FeatureArithmetic.copy(staged.assumingMemoryBound(to: Float.self) + row * width, to: out, width: width, scale, shift)
        }
    }

    /// Reads `range` into the staging buffer chunk by chunk and hands each chunk to `body`
    /// (start row, rows, the chunk as floats when the features are floats).
    private func forEachChunk(of range: Range<Int>, _ body: (Int, Int, UnsafePointer<Float>) throws -> Void) throws {
        pthread_mutex_lock(lock)
        defer { pthread_mutex_unlock(lock) }
        var start = range.lowerBound
        while start < range.upperBound {
            let end = min(start + stagingRows, range.upperBound)
            try reader.read(start..<end, into: staged)
            try body(start, end - start, staged.assumingMemoryBound(to: Float.self))
            start = end
        }
    }

    private func readOrAbort(_ range: Range<Int>, into out: UnsafeMutableRawPointer) {
        do { try reader.read(range, into: out) } catch { Communicator.world.abort("\(error)") }
    }

    /// In place and allocation-free (the standard sort may allocate): a step's keys are at most
    /// a few thousand.
    private static func heapSort(_ a: UnsafeMutablePointer<Int64>, _ n: Int) {
        func swap(_ i: Int, _ j: Int) { (a[i], a[j]) = (a[j], a[i]) }
        func siftDown(_ start: Int, _ end: Int) {
            var root = start
            while 2 * root + 1 < end {
                var child = 2 * root + 1
                if child + 1 < end && a[child] < a[child + 1] { child += 1 }
                if a[root] >= a[child] { return }
                swap(root, child)
                root = child
            }
        }
        guard n > 1 else { return }
        for start in stride(from: n / 2 - 1, through: 0, by: -1) { siftDown(start, n) }
        for end in stride(from: n - 1, to: 0, by: -1) {
            swap(0, end)
            siftDown(0, end)
        }
    }
}
