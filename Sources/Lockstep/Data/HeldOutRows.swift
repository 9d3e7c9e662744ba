// `data.validation = N`: the last N rows of the training split become a validation split that is
// evaluated like the test split and never trained on. Both parts are windows over the one source
// the file was opened as (memory, stream or node), so nothing is read or held twice, and the
// training part starts at row 0: the batch loader's indices reach the source unchanged.

/// Rows `rows` of `base`, as a split of their own.
final class RowWindow: DataSource {
    let base: any DataSource
    let rows: Range<Int>
    let name: String
    /// The training part owns the base: it attaches it and scans it for non-finite features
    /// (the whole file, with the file's sample numbers in the message); the validation part
    /// leaves both to it.
    private let ownsBase: Bool

    init(_ base: any DataSource, rows: Range<Int>, name: String, ownsBase: Bool) {
        precondition(rows.lowerBound >= 0 && rows.upperBound <= base.count && !rows.isEmpty)
        self.base = base
        self.rows = rows
        self.name = name
        self.ownsBase = ownsBase
    }

    /// The training split's first `count − heldOut` rows for training and its last `heldOut`
    /// rows for validation (1 ≤ heldOut < count, checked by `Job.Data.heldOutRows`).
    static func split(_ train: any DataSource, holdingOut heldOut: Int) -> (train: RowWindow, validation: RowWindow) {
        let cut = train.count - heldOut
        return (RowWindow(train, rows: 0..<cut, name: "train", ownsBase: true),
                RowWindow(train, rows: cut..<train.count, name: "validation", ownsBase: false))
    }

    var count: Int { rows.count }
    var sampleShape: [Int] { base.sampleShape }
    var width: Int { base.width }

    /// The file's fingerprint and where the window lies, so a resume with another
    /// `data.validation` is caught like a resume on another file.
    var fingerprint: UInt64 {
        var hash = FNV1a64()
        for n in [base.fingerprint, UInt64(rows.lowerBound), UInt64(rows.upperBound)] {
            withUnsafeBytes(of: n.littleEndian) { hash.add($0) }
        }
        return hash.value
    }

    /// Only the training part (which starts at row 0) is gathered by index: the batch loader's
    /// indices reach the base unchanged.
    func gather(_ indices: UnsafeBufferPointer<Int32>, x: UnsafeMutablePointer<Float>, y: UnsafeMutablePointer<Int32>) {
        precondition(rows.lowerBound == 0, "only the training window is gathered by index")
        base.gather(indices, x: x, y: y)
    }

    func gather(_ range: Range<Int>, x: UnsafeMutablePointer<Float>, y: UnsafeMutablePointer<Int32>) {
        base.gather((range.lowerBound + rows.lowerBound)..<(range.upperBound + rows.lowerBound), x: x, y: y)
    }

    var scale: Float { base.scale }
    var shift: Float { base.shift }

    /// Both parts share the base's normalisation, set from the training part's statistics.
    func normalize(_ mode: Normalization, stats: (mean: Double, std: Double)?) { base.normalize(mode, stats: stats) }

    func statistics(rows window: Range<Int>) -> (mean: Double, std: Double) {
        base.statistics(rows: (window.lowerBound + rows.lowerBound)..<(window.upperBound + rows.lowerBound))
    }

    func firstNonFiniteSample(rank: Int, of ranks: Int) throws -> Int? {
        ownsBase ? try base.firstNonFiniteSample(rank: rank, of: ranks) : nil
    }

    func nonFiniteError(sample: Int) -> LockstepError { base.nonFiniteError(sample: sample) }

    func attach(comm: Communicator) throws {
        if ownsBase { try base.attach(comm: comm) }
    }

    var nodeSharedBytes: Int { ownsBase ? base.nodeSharedBytes : 0 }
}
