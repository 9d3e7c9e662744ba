// The checks every data source makes of a split before reading a feature: [N, ...] features of
// a numeric type, [N] integer labels, N > 0, no zero-width samples; and the checks of what it
// reads (labels in range, finite float features), with the one-line messages users see.

struct SplitLayout {
    let info: HDF5DatasetInfo
    let file: HDF5File
    let xPath: String
    let yPath: String
    /// "file:/train/x", for messages.
    let where_: String
    let count: Int
    let sampleShape: [Int]
    /// Features per sample; Int.max when the declared shape does not fit an Int (the caller's
    /// memory check, over the whole shape, refuses that first).
    let width: Int
    /// uint8 features are kept (or streamed) as bytes, anything else as Float32.
    let isUInt8: Bool

    init(file: HDF5File, xPath: String, yPath: String) throws {
        self.file = file
        self.xPath = xPath
        self.yPath = yPath
        let xInfo = try file.info(xPath)
        let yInfo = try file.info(yPath)
        let where_ = "\(file.path):\(xPath)"
        self.where_ = where_
        info = xInfo
        guard xInfo.shape.count >= 2 else {
            throw LockstepError.usage("\(where_) has shape \(xInfo.shape); features must be [N, ...] with at least 2 dimensions")
        }
        guard yInfo.shape.count == 1 else {
            throw LockstepError.usage("\(file.path):\(yPath) has shape \(yInfo.shape); labels must be one integer per sample, shape [N]")
        }
        guard xInfo.shape[0] == yInfo.shape[0] else {
            throw LockstepError.usage("\(file.path): \(xPath) has \(xInfo.shape[0]) samples but \(yPath) has \(yInfo.shape[0]); they must match")
        }
        guard xInfo.shape[0] > 0 else { throw LockstepError.usage("\(where_) is empty") }
        guard xInfo.kind != .other else {
            throw LockstepError.usage("\(where_) holds \(xInfo.dtypeName); features must be numbers: uint8 (kept as bytes, scaled by 1/255) or another integer or float type (read as float32)")
        }
        guard yInfo.kind == .unsignedInteger || yInfo.kind == .signedInteger else {
            throw LockstepError.usage("\(file.path):\(yPath) holds \(yInfo.dtypeName); labels must be integers (uint8, int32, int64, ...)")
        }
        count = xInfo.shape[0]
        sampleShape = Array(xInfo.shape.dropFirst())
        guard !sampleShape.contains(0) else {
            throw LockstepError.usage("\(where_) has shape \(xInfo.shape): its samples have no features; each sample needs at least one value")
        }
        width = MemoryBudget.product(sampleShape) ?? Int.max
        isUInt8 = xInfo.kind == .unsignedInteger && xInfo.size == 1
    }

    /// The labels, each checked to lie in 0..<classes.
    func labels(classes: Int) throws -> [Int32] {
        let raw = try file.read(yPath, as: Int64.self)
        if let bad = raw.firstIndex(where: { $0 < 0 || $0 >= Int64(classes) }) {
            throw LockstepError.usage("\(file.path):\(yPath) has label \(raw[bad]) at sample \(bad), outside 0..<\(classes) (the last layer's units): fix the labels or the model")
        }
        return raw.map { Int32($0) }
    }

    func nonFinite(sample: Int) -> LockstepError {
        .usage("\(where_) has a non-finite value (NaN or Inf) in sample \(sample): clean the data")
    }
}
