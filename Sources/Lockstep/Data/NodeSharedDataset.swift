// `data.load = "node"`: one read-only copy of a split per node, in MPI-3 shared memory
// (NodeSharedMemory), instead of one per rank. Opening validates the split and reads its labels
// as every source does; `attach` (collective) then allocates the node's buffer, has each of the
// node's ranks read its slice of rows from the file into it, and fences, after which every rank
// gathers from the shared rows exactly as the in-memory `Dataset` gathers from its own
// (FeatureArithmetic): bitwise the same batches. Memory per node: one copy, however many ranks.

public final class NodeSharedDataset: DataSource {
    public let name: String
    public let count: Int
    public let sampleShape: [Int]
    public let width: Int
    public let labels: [Int32]
    private let isUInt8: Bool
    private let layout: SplitLayout
    private let rowBytes: Int
    private var shared: NodeSharedMemory?
    /// The rows this rank read into the node's buffer (checked for non-finite values by it).
    private var myRows = 0..<0
    public private(set) var scale: Float = 1
    public private(set) var shift: Float = 0

    /// Validates the split and reads its labels; the features come with `attach`.
    public init(file: HDF5File, xPath: String, yPath: String, classes: Int, name: String) throws {
        self.name = name
        layout = try SplitLayout(file: file, xPath: xPath, yPath: yPath)
        count = layout.count
        sampleShape = layout.sampleShape
        isUInt8 = layout.isUInt8
        let elementSize = isUInt8 ? 1 : MemoryLayout<Float>.size
        try MemoryBudget.require(count: MemoryBudget.product(layout.info.shape), elementSize: elementSize,
                                 for: "\(layout.where_) (shape \(layout.info.shape) as \(elementSize == 1 ? "uint8" : "float32"), one copy per node)",
                                 fix: "use a smaller file, or data.load = \"stream\"")
        width = layout.width
        rowBytes = width * elementSize
        labels = try layout.labels(classes: classes)
        if isUInt8 { scale = 1.0 / 255 }
    }

    /// Collective over the world, after every rank opened the split: allocates the node's copy,
    /// reads this rank's slice of it, and fences. A read that failed is thrown after the fence,
    /// so no rank is left waiting in it.
    public func attach(comm: Communicator) throws {
        let memory = NodeSharedMemory(comm: comm, bytes: count * rowBytes)
        myRows = (count * memory.nodeRank / memory.nodeSize)..<(count * (memory.nodeRank + 1) / memory.nodeSize)
        var failure: Error?
        do {
            if !myRows.isEmpty {
                let reader = isUInt8 ? try HDF5RowReader(file: layout.file, datasetPath: layout.xPath, as: UInt8.self, cacheBytes: 0)
                                     : try HDF5RowReader(file: layout.file, datasetPath: layout.xPath, as: Float.self, cacheBytes: 0)
                try reader.read(myRows, into: memory.base + myRows.lowerBound * rowBytes)
            }
        } catch {
            failure = error
        }
        memory.fence()
        shared = memory
        if let failure { throw failure }
    }

    /// Bytes of this rank's own share of the window (the whole copy on a node's first rank).
    public var nodeSharedBytes: Int { shared?.ownSegment ?? 0 }

    private var features: UnsafeRawPointer {
        guard let shared else { preconditionFailure("NodeSharedDataset.attach must run before the features are read") }
        return UnsafeRawPointer(shared.base)
    }

    /// The first non-finite value in the rows this rank read (each row is read by one rank of its node).
    public func firstNonFiniteSample(rank: Int, of ranks: Int) throws -> Int? {
        guard !isUInt8 else { return nil }
        let floats = features.assumingMemoryBound(to: Float.self)
        for i in (myRows.lowerBound * width)..<(myRows.upperBound * width) where !floats[i].isFinite { return i / width }
        return nil
    }

    public func nonFiniteError(sample: Int) -> LockstepError { layout.nonFinite(sample: sample) }

    public var fingerprint: UInt64 {
        let base = features
        return FeatureArithmetic.fingerprint(count: count, width: width, sampleShape: sampleShape, labels: labels) { row in
            UnsafeRawBufferPointer(start: base + row * rowBytes, count: rowBytes)
        }
    }

    public func normalize(_ mode: Normalization, stats: (mean: Double, std: Double)?) {
        (scale, shift) = FeatureArithmetic.affine(mode, stats: stats, isUInt8: isUInt8)
    }

    public func statistics(rows: Range<Int>) -> (mean: Double, std: Double) {
        var moments = FeatureArithmetic.Moments()
        let first = rows.lowerBound * width, values = rows.count * width
        if isUInt8 {
            moments.add(UnsafeBufferPointer(start: features.assumingMemoryBound(to: UInt8.self) + first, count: values))
        } else {
            moments.add(UnsafeBufferPointer(start: features.assumingMemoryBound(to: Float.self) + first, count: values))
        }
        return moments.result(isUInt8: isUInt8)
    }

    public func gather(_ indices: UnsafeBufferPointer<Int32>, x: UnsafeMutablePointer<Float>, y: UnsafeMutablePointer<Int32>) {
        let base = features
        for (row, index) in indices.enumerated() {
            copySample(Int(index), from: base, to: x + row * width)
            y[row] = labels[Int(index)]
        }
    }

    public func gather(_ range: Range<Int>, x: UnsafeMutablePointer<Float>, y: UnsafeMutablePointer<Int32>) {
        let base = features
        for (row, index) in range.enumerated() {
            copySample(index, from: base, to: x + row * width)
            y[row] = labels[index]
        }
    }

    @inline(__always)
    private func copySample(_ index: Int, from base: UnsafeRawPointer, to out: UnsafeMutablePointer<Float>) {
        if isUInt8 {
            FeatureArithmetic.copy(base.assumingMemoryBound(to: UInt8.self) + index * width, to: out, width: width, scale, shift)
        } else {
            FeatureArithmetic.copy(base.assumingMemoryBound(to: Float.self) + index * width, to: out, width: width, scale, shift)
        }
    }
}
