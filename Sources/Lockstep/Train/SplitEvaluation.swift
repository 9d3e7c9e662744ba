// Evaluation of a whole split, shared by training's evaluations and `lockstep eval`, bitwise the
// same on any number of ranks, so `lockstep eval` on 3 ranks prints the loss a 2-rank run logged:
// - the split is cut into fixed blocks of `block` rows, each forwarded as one pass, and rank r of
//   p takes the contiguous blocks [nb·r/p, nb·(r+1)/p). A row's logits then come from the same
//   GEMM call whatever p is: BLAS kernels round a row differently at another place in a tile, so
//   slices of N·r/p rows gave losses that differed in the 8th digit between rank counts.
// - every total is an integer (the loss exactly, `ExactLossSum`), so one Int64 allreduce gives
//   every rank the same result whatever the order of addition.
// Bitwise across rank counts holds with one BLAS thread per rank (mpirun: OPENBLAS_NUM_THREADS=1).

/// Accuracy, mean loss and (when asked for) the confusion matrix of one split.
public struct SplitEvaluationResult: Sendable, Equatable {
    public var samples: Int
    /// Rows whose predicted class (SoftmaxCrossEntropy.lossAndPrediction) is the label.
    public var correct: Int
    public var accuracy: Double { Double(correct) / Double(samples) }
    /// Mean plain cross-entropy (unsmoothed, unaugmented).
    public var loss: Double
    /// confusion[true class][predicted class], when asked for; nil otherwise.
    public var confusion: [[Int]]?
}

/// Σ of Float32 values, exact and independent of the order of addition: each value's 24-bit
/// significand is added into an integer bin for its exponent (Kulisch's long accumulator, one
/// Int64 per exponent). Bins add as integers, so the sum over ranks is the same for every slicing.
struct ExactLossSum {
    /// Bins 1…254 by biased exponent (subnormals join bin 1, whose scale they share), then NaN,
    /// +Inf and −Inf counts.
    static let slots = 255 + 3
    static let nan = 255, positiveInfinity = 256, negativeInfinity = 257

    /// Adds `value` into `bins` (`slots` Int64s). A bin overflows only after 2³⁹ values of one exponent.
    @inline(__always)
    static func add(_ value: Float, to bins: UnsafeMutablePointer<Int64>) {
        let bits = value.bitPattern
        let exponent = Int((bits >> 23) & 0xff)
        if exponent == 0xff {
            bins[value.isNaN ? nan : (value < 0 ? negativeInfinity : positiveInfinity)] += 1
            return
        }
        let significand = Int64(bits & 0x7f_ffff) | (exponent == 0 ? 0 : 1 << 23)
        bins[max(exponent, 1)] += value.sign == .minus ? -significand : significand
    }

    /// The sum the bins hold, as a Float64: a function of the bins alone, so equal bins give
    /// bitwise-equal sums (accumulated from the smallest exponent up, to about 1 ulp).
    static func total(_ bins: UnsafePointer<Int64>) -> Double {
        if bins[nan] > 0 || (bins[positiveInfinity] > 0 && bins[negativeInfinity] > 0) { return .nan }
        if bins[positiveInfinity] > 0 { return .infinity }
        if bins[negativeInfinity] > 0 { return -.infinity }
        var sum = 0.0
        for exponent in 1..<255 where bins[exponent] != 0 {
            // A bin's significands count in units of 2^(exponent − 150).
            sum += Double(bins[exponent]) * Double(sign: .plus, exponent: exponent - 150, significand: 1)
        }
        return sum
    }
}

enum SplitEvaluation {
    /// Rows per evaluation pass (a multiple of every BLAS kernel's tile width); the network and
    /// the buffers must hold at least this many rows.
    static let block = 256

    /// Evaluates `data` with `network` in eval mode, `block` rows at a time through `input`
    /// (block × width floats) and `labels` (block Int32s), which the network is reserved for.
    /// One allreduce, whether or not the confusion matrix is counted.
    static func run(_ data: any DataSource, network: Network, comm: Communicator,
                    input: UnsafeMutablePointer<Float>, labels: UnsafeMutablePointer<Int32>, confusion: Bool) -> SplitEvaluationResult {
        let classes = network.classes
        let chunk = block
        let blocks = (data.count + chunk - 1) / chunk
        let start = min(blocks * comm.rank / comm.size * chunk, data.count)
        let end = min(blocks * (comm.rank + 1) / comm.size * chunk, data.count)
        // [correct | loss bins | confusion (classes², true class major)]
        let lossAt = 1, confusionAt = 1 + ExactLossSum.slots
        var totals = [Int64](repeating: 0, count: confusionAt + (confusion ? classes * classes : 0))
        totals.withUnsafeMutableBufferPointer { t in
            let bins = t.baseAddress! + lossAt
            var chunkStart = start
            while chunkStart < end {
                let chunkEnd = min(chunkStart + chunk, end)
                let n = chunkEnd - chunkStart
                data.gather(chunkStart..<chunkEnd, x: input, y: labels)
                let logits = network.forward(input, batch: n, mode: .eval)
                for row in 0..<n {
                    let label = Int(labels[row])
                    let r = SoftmaxCrossEntropy.lossAndPrediction(logits + row * classes, label: label, classes: classes)
                    ExactLossSum.add(r.loss, to: bins)
                    if r.predicted == label { t[0] += 1 }
                    if confusion { t[confusionAt + label * classes + r.predicted] += 1 }
                }
                chunkStart = chunkEnd
            }
        }
        comm.allreduce(&totals, .sum)
        let loss = totals.withUnsafeBufferPointer { ExactLossSum.total($0.baseAddress! + lossAt) } / Double(data.count)
        let matrix = confusion ? (0..<classes).map { t in (0..<classes).map { Int(totals[confusionAt + t * classes + $0]) } } : nil
        return SplitEvaluationResult(samples: data.count, correct: Int(totals[0]), loss: loss, confusion: matrix)
    }
}
