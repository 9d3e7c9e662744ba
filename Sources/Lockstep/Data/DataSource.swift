// What training, the batch loader and evaluation read from one split of a dataset: its size,
// the shape of a sample, and rows gathered (normalised, as Float32) into a caller's buffer with
// their labels. `Dataset` holds the split in memory; a streamed or node-shared source is one
// more type behind this protocol, and gives bitwise the same rows for the same indices.

public protocol DataSource: AnyObject {
    /// "train" or "test": names the split in messages.
    var name: String { get }
    /// Samples in the split.
    var count: Int { get }
    /// Shape of one sample, e.g. [28, 28] or [3, 32, 32].
    var sampleShape: [Int] { get }
    /// Floats per sample (the product of `sampleShape`).
    var width: Int { get }
    /// A fingerprint of what the data order and the samples depend on (stored in checkpoints,
    /// so a resume on another file is caught); equal for equal data whatever the source.
    var fingerprint: UInt64 { get }

    /// Writes samples `indices` (normalised) into x[indices.count, width] and their labels into y.
    func gather(_ indices: UnsafeBufferPointer<Int32>, x: UnsafeMutablePointer<Float>, y: UnsafeMutablePointer<Int32>)
    /// Writes the contiguous samples `range` into x and y (evaluation, full batches).
    func gather(_ range: Range<Int>, x: UnsafeMutablePointer<Float>, y: UnsafeMutablePointer<Int32>)

    /// The affine normalisation `gather` applies to a stored value v (a uint8 feature as 0…255):
    /// v·scale + shift in Float32 (recorded in checkpoints so outside loaders reproduce it).
    var scale: Float { get }
    var shift: Float { get }
    /// Sets the affine normalisation applied by `gather`; `stats` (mean, std) come from the
    /// training split's `statistics()`.
    func normalize(_ mode: Normalization, stats: (mean: Double, std: Double)?)
    /// Mean and standard deviation of the features of samples `rows` after the uint8 scale, in
    /// Float64 and file order: the same on every rank and for every source.
    func statistics(rows: Range<Int>) -> (mean: Double, std: Double)

    /// For sources that did not read (and check) every feature when they opened: rank `rank` of
    /// `ranks` reads its slice and returns its first sample with a NaN or an infinity.
    func firstNonFiniteSample(rank: Int, of ranks: Int) throws -> Int?
    /// The one-line error for a non-finite sample (the same whatever the source).
    func nonFiniteError(sample: Int) -> LockstepError

    /// A collective step after every rank opened the split, before anything is gathered (the
    /// node-shared source reads its rows here); nothing for the others.
    func attach(comm: Communicator) throws
    /// Bytes of a node-shared copy this rank's own memory holds (0 for other sources).
    var nodeSharedBytes: Int { get }
}

extension DataSource {
    /// The statistics of the whole split (what `normalization = "standardize"` uses).
    public func statistics() -> (mean: Double, std: Double) { statistics(rows: 0..<count) }
    public func attach(comm: Communicator) throws {}
    public var nodeSharedBytes: Int { 0 }
    /// Sources that hold their features checked them on opening.
    public func firstNonFiniteSample(rank: Int, of ranks: Int) throws -> Int? { nil }
    public func nonFiniteError(sample: Int) -> LockstepError {
        .usage("\(name) split has a non-finite value (NaN or Inf) in sample \(sample): clean the data")
    }
}
