// Softmax cross-entropy over logits [batch, classes] with integer labels: the loss of every model.

#if canImport(Glibc)
import Glibc
#endif

public enum SoftmaxCrossEntropy {
    /// Writes dL/dlogits = (softmax − onehot) · `scale` into `dlogits` and returns Σ_rows −log p[label]
    /// (unscaled, in Float64). With `scale` = 1/B_global the allreduced gradient is the global mean.
    public static func lossAndGradient(logits: UnsafePointer<Float>, labels: UnsafePointer<Int32>,
                                       dlogits: UnsafeMutablePointer<Float>, batch: Int, classes: Int,
                                       scale: Float) -> Double {
        var total = 0.0
        for row in 0..<batch {
            let z = logits + row * classes
            let d = dlogits + row * classes
            var zmax = z[0]
            for j in 1..<classes { zmax = max(zmax, z[j]) }
            var sum: Float = 0
            for j in 0..<classes {
                let e = expf(z[j] - zmax)
                d[j] = e
                sum += e
            }
            let label = Int(labels[row])
            // −log softmax[label] = log Σ exp(z − zmax) − (z[label] − zmax), stable for large logits.
            total += Double(logf(sum) - (z[label] - zmax))
            let inv = scale / sum
            for j in 0..<classes { d[j] *= inv }
            d[label] -= scale
        }
        return total
    }

    /// Σ_rows −log p[label] and the number of rows whose argmax equals the label (for evaluation).
    public static func lossAndCorrect(logits: UnsafePointer<Float>, labels: UnsafePointer<Int32>,
                                      batch: Int, classes: Int) -> (loss: Double, correct: Int) {
        var total = 0.0
        var correct = 0
        for row in 0..<batch {
            let z = logits + row * classes
            var zmax = z[0]
            var best = 0
            for j in 1..<classes where z[j] > zmax { zmax = z[j]; best = j }
            var sum: Float = 0
            for j in 0..<classes { sum += expf(z[j] - zmax) }
            let label = Int(labels[row])
            total += Double(logf(sum) - (z[label] - zmax))
            if best == label { correct += 1 }
        }
        return (total, correct)
    }
}
