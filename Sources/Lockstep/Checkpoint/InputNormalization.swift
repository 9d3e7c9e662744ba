// The input normalisation a model was trained with, stored in every checkpoint as root attributes
// (docs/checkpoints.md) so that eval, export and any outside loader feed it the same inputs: a
// stored feature value v (a uint8 byte as 0…255) becomes v·input_scale + input_shift in Float32;
// with the shape of one sample, which rebuilds the model without the data file (export).

public struct InputNormalization: Equatable, Sendable {
    /// `data.normalization` of the run.
    public var mode: Normalization
    /// The Float32 affine the data sources apply.
    public var scale: Float
    public var shift: Float
    /// The training split's mean and standard deviation (after the uint8 scale), for "standardize".
    public var mean: Double?
    public var std: Double?
    /// The shape of one training sample (`@sample_shape`; nil in checkpoints written before it).
    public var sampleShape: [Int]?

    public init(mode: Normalization, scale: Float, shift: Float, stats: (mean: Double, std: Double)?, sampleShape: [Int]? = nil) {
        self.mode = mode
        self.scale = scale
        self.shift = shift
        (mean, std) = (stats?.mean, stats?.std)
        self.sampleShape = sampleShape
    }

    func write(to file: HDF5File) throws {
        try file.setAttribute("normalization", mode.rawValue)
        try file.setAttribute("input_scale", scalar: scale)
        try file.setAttribute("input_shift", scalar: shift)
        if let mean, let std {
            try file.setAttribute("normalization_mean", scalar: mean)
            try file.setAttribute("normalization_std", scalar: std)
        }
        if let sampleShape { try file.setAttribute("sample_shape", sampleShape.map { Int64($0) }) }
    }

    /// nil for checkpoints written before the normalisation was recorded.
    static func read(from file: HDF5File) throws -> InputNormalization? {
        guard file.hasAttribute("input_scale") else { return nil }
        let text = try file.stringAttribute("normalization")
        guard let mode = Normalization(rawValue: text) else {
            throw LockstepError.usage("\(file.path): attribute normalization = \"\(text)\" is not one this lockstep knows: the checkpoint is corrupt or from a newer version")
        }
        let stats = file.hasAttribute("normalization_mean")
            ? (mean: try Checkpoint.scalar(file, "normalization_mean", as: Double.self), std: try Checkpoint.scalar(file, "normalization_std", as: Double.self)) : nil
        var shape: [Int]?
        if file.hasAttribute("sample_shape") {
            // It sizes a network: 1 to 4 dimensions, each positive and below 2³¹ (the product is
            // checked against memory when the network is built).
            let dims = try file.attribute("sample_shape", as: Int64.self)
            guard (1...4).contains(dims.count), dims.allSatisfy({ $0 >= 1 && $0 <= Int64(Int32.max) }) else {
                throw LockstepError.usage("\(file.path): attribute sample_shape = \(dims) is impossible: the checkpoint is corrupt")
            }
            shape = dims.map { Int($0) }
        }
        return InputNormalization(mode: mode, scale: try Checkpoint.scalar(file, "input_scale", as: Float.self), shift: try Checkpoint.scalar(file, "input_shift", as: Float.self), stats: stats,
                                  sampleShape: shape)
    }
}
