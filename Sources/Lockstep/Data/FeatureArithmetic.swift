// The arithmetic every data source applies to features, written once so that a streamed row and
// an in-memory row are bitwise the same: the affine normalisation x' = x·scale + shift, its
// statistics (Float64, in file order), and the data fingerprint stored in checkpoints.

enum FeatureArithmetic {
    /// (scale, shift) of `mode`; `stats` (mean, std) come from the training split.
    static func affine(_ mode: Normalization, stats: (mean: Double, std: Double)?, isUInt8: Bool) -> (scale: Float, shift: Float) {
        let base: Float = isUInt8 && mode != .none ? 1.0 / 255 : 1
        switch mode {
        case .none, .scale:
            return (base, 0)
        case .standardize:
            let (mean, std) = stats ?? (0, 1)
            return (Float(Double(base) / std), Float(-mean / std))
        }
    }

    /// One sample: out[j] = x[j]·a + b.
    @inline(__always)
    static func copy(_ x: UnsafePointer<UInt8>, to out: UnsafeMutablePointer<Float>, width: Int, _ a: Float, _ b: Float) {
        for j in 0..<width { out[j] = Float(x[j]) * a + b }
    }

    @inline(__always)
    static func copy(_ x: UnsafePointer<Float>, to out: UnsafeMutablePointer<Float>, width: Int, _ a: Float, _ b: Float) {
        for j in 0..<width { out[j] = x[j] * a + b }
    }

    /// Mean and standard deviation of all features after the uint8 scale, accumulated in Float64
    /// in file order (uint8 through a histogram: exact, in any order), fed in chunks.
    struct Moments {
        private var histogram = [Int](repeating: 0, count: 256)
        private var sum = 0.0, sumSquares = 0.0
        private var n = 0

        mutating func add(_ bytes: UnsafeBufferPointer<UInt8>) {
            for b in bytes { histogram[Int(b)] += 1 }
            n += bytes.count
        }

        mutating func add(_ floats: UnsafeBufferPointer<Float>) {
            for f in floats {
                sum += Double(f)
                sumSquares += Double(f) * Double(f)
            }
            n += floats.count
        }

        func result(isUInt8: Bool) -> (mean: Double, std: Double) {
            var (sum, sumSquares) = (self.sum, self.sumSquares)
            if isUInt8 {
                let base = 1.0 / 255
                for (v, count) in histogram.enumerated() {
                    let x = Double(v) * base
                    sum += x * Double(count)
                    sumSquares += x * x * Double(count)
                }
            }
            let n = Double(self.n)
            let mean = sum / n
            let std = max((sumSquares / n - mean * mean).squareRoot(), 1e-12)
            return (mean, std)
        }
    }

    /// Rows whose raw features the fingerprint hashes: the first, the middle and the last.
    static func fingerprintRows(count: Int) -> [Int] { Set([0, count / 2, count - 1]).sorted() }

    /// A fingerprint of what the data order and the samples depend on: the count, the sample
    /// shape, every label and the raw bytes of `rows` (each `rawRow(row)`), without hashing it all.
    static func fingerprint(count: Int, width: Int, sampleShape: [Int], labels: [Int32],
                            rawRow: (Int) -> UnsafeRawBufferPointer) -> UInt64 {
        var hash = FNV1a64()
        for n in [count, width] + sampleShape { withUnsafeBytes(of: Int64(n).littleEndian) { hash.add($0) } }
        labels.withUnsafeBytes { hash.add($0) }
        for row in fingerprintRows(count: count) { hash.add(rawRow(row)) }
        return hash.value
    }
}
