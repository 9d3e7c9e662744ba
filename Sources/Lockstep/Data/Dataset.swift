// One split of a dataset held in memory, the in-memory `DataSource`: features [N, ...] (uint8
// kept as bytes, anything else as Float32) and integer labels [N], read from an HDF5 file and
// validated once. `gather` writes a batch, normalised, into a preallocated Float32 buffer.

public enum Normalization: String, Sendable, CaseIterable {
    /// uint8 features divided by 255; float features unchanged.
    case scale
    /// As `scale`, then minus the training set's mean and over its standard deviation.
    case standardize
    /// Raw values.
    case none
}

public final class Dataset: DataSource {
    public let name: String
    public let count: Int
    /// Shape of one sample, e.g. [28, 28].
    public let sampleShape: [Int]
    /// Features per sample (the product of `sampleShape`).
    public let width: Int
    public let labels: [Int32]
    private let bytes: [UInt8]
    private let floats: [Float]
    public var isUInt8: Bool { !bytes.isEmpty }
    /// x' = x·scale + shift, set by `normalize`.
    public private(set) var scale: Float = 1
    public private(set) var shift: Float = 0

    /// Reads and validates the split at `xPath`/`yPath`. Labels must lie in 0..<classes.
    public init(file: HDF5File, xPath: String, yPath: String, classes: Int, name: String) throws {
        self.name = name
        let layout = try SplitLayout(file: file, xPath: xPath, yPath: yPath)
        count = layout.count
        sampleShape = layout.sampleShape
        // The declared shape sizes the read: check it before anything is allocated.
        let elementSize = layout.isUInt8 ? 1 : MemoryLayout<Float>.size
        try MemoryBudget.require(count: MemoryBudget.product(layout.info.shape), elementSize: elementSize,
                                 for: "\(layout.where_) (shape \(layout.info.shape) as \(elementSize == 1 ? "uint8" : "float32"))",
                                 fix: "every rank holds the whole split in memory; use a smaller file or fewer samples, or data.load = \"stream\"")
        width = layout.width
        if layout.isUInt8 {
            bytes = try file.read(xPath, as: UInt8.self)
            floats = []
        } else {
            bytes = []
            floats = try file.read(xPath, as: Float.self)
            if let bad = floats.firstIndex(where: { !$0.isFinite }) {
                throw layout.nonFinite(sample: bad / width)
            }
        }
        labels = try layout.labels(classes: classes)
        if isUInt8 { scale = 1.0 / 255 }
    }

    /// A fingerprint of what the data order and the samples depend on: the count, the sample
    /// shape, every label and the raw features of the first, middle and last sample. Stored in
    /// checkpoints, so a resume on another file (or an edited one) is caught without hashing it all.
    public var fingerprint: UInt64 {
        isUInt8 ? bytes.withUnsafeBytes { fingerprint(of: $0) } : floats.withUnsafeBytes { fingerprint(of: $0) }
    }

    private func fingerprint(of all: UnsafeRawBufferPointer) -> UInt64 {
        let rowBytes = width * (isUInt8 ? 1 : MemoryLayout<Float>.size)
        return FeatureArithmetic.fingerprint(count: count, width: width, sampleShape: sampleShape, labels: labels) { row in
            UnsafeRawBufferPointer(rebasing: all[(row * rowBytes)..<((row + 1) * rowBytes)])
        }
    }

    /// Sets the affine normalisation. `stats` (mean, std) come from the training split.
    public func normalize(_ mode: Normalization, stats: (mean: Double, std: Double)?) {
        (scale, shift) = FeatureArithmetic.affine(mode, stats: stats, isUInt8: isUInt8)
    }

    /// Mean and standard deviation of the features of `rows` after `scale` (computed in Float64, the same on every rank).
    public func statistics(rows: Range<Int>) -> (mean: Double, std: Double) {
        var moments = FeatureArithmetic.Moments()
        let values = (rows.lowerBound * width)..<(rows.upperBound * width)
        if isUInt8 {
            bytes.withUnsafeBufferPointer { moments.add(UnsafeBufferPointer(rebasing: $0[values])) }
        } else {
            floats.withUnsafeBufferPointer { moments.add(UnsafeBufferPointer(rebasing: $0[values])) }
        }
        return moments.result(isUInt8: isUInt8)
    }

    /// Writes samples `indices` (normalised) into x[indices.count, width] and their labels into y.
    @inline(__always)
    public func gather(_ indices: UnsafeBufferPointer<Int32>, x: UnsafeMutablePointer<Float>, y: UnsafeMutablePointer<Int32>) {
        for (row, index) in indices.enumerated() {
            copySample(Int(index), to: x + row * width)
            y[row] = labels[Int(index)]
        }
    }

    /// Writes the contiguous samples `range` into x and y (evaluation).
    public func gather(_ range: Range<Int>, x: UnsafeMutablePointer<Float>, y: UnsafeMutablePointer<Int32>) {
        for (row, index) in range.enumerated() {
            copySample(index, to: x + row * width)
            y[row] = labels[index]
        }
    }

    @inline(__always)
    private func copySample(_ index: Int, to out: UnsafeMutablePointer<Float>) {
        let start = index * width
        if isUInt8 {
            bytes.withUnsafeBufferPointer { FeatureArithmetic.copy($0.baseAddress! + start, to: out, width: width, scale, shift) }
        } else {
            floats.withUnsafeBufferPointer { FeatureArithmetic.copy($0.baseAddress! + start, to: out, width: width, scale, shift) }
        }
    }
}
