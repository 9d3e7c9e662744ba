// Softmax cross-entropy over logits [batch, classes] with integer labels: the loss of every model
// (training's optionally label-smoothed, `[loss]`; evaluation's always plain).

#if canImport(Glibc)
import Glibc
#endif

public enum SoftmaxCrossEntropy {
    /// Writes dL/dlogits = (softmax − target) · `scale` into `dlogits` and returns Σ_rows of the
    /// row's loss (unscaled, in Float64). With `scale` = 1/B_global the allreduced gradient is the
    /// global mean.
    ///
    /// `labelSmoothing` ε (in [0, 1)): the target is (1 − ε)·onehot + ε/K over K classes, and a
    /// row's loss is (1 − ε)·(−log p[label]) + ε·mean_k(−log p[k]) (PyTorch's
    /// `CrossEntropyLoss(label_smoothing: ε)`). ε = 0 is the plain cross-entropy −log p[label],
    /// computed exactly as without the parameter.
    public static func lossAndGradient(logits: UnsafePointer<Float>, labels: UnsafePointer<Int32>,
                                       dlogits: UnsafeMutablePointer<Float>, batch: Int, classes: Int,
                                       scale: Float, labelSmoothing: Float = 0) -> Double {
        var total = 0.0
        let smoothing = labelSmoothing != 0
        let eps = Double(labelSmoothing)
        // ε/K and (1 − ε) of the gradient, already scaled.
        let spread = scale * (labelSmoothing / Float(classes)), onLabel = scale * (1 - labelSmoothing)
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
            let nll = logf(sum) - (z[label] - zmax)
            let inv = scale / sum
            for j in 0..<classes { d[j] *= inv }
            if smoothing {
                // mean_k(−log p[k]) = log Σ exp(z − zmax) − mean_k(z[k] − zmax), summed in Float64.
                var shifted = 0.0
                for j in 0..<classes { shifted += Double(z[j] - zmax) }
                let meanNLL = Double(logf(sum)) - shifted / Double(classes)
                total += (1 - eps) * Double(nll) + eps * meanNLL
                for j in 0..<classes { d[j] -= spread }
                d[label] -= onLabel
            } else {
                total += Double(nll)
                d[label] -= scale
            }
        }
        return total
    }

    /// Σ_rows −log p[label] and the number of rows whose argmax equals the label (for evaluation).
    public static func lossAndCorrect(logits: UnsafePointer<Float>, labels: UnsafePointer<Int32>,
                                      batch: Int, classes: Int) -> (loss: Double, correct: Int) {
        var total = 0.0
        var correct = 0
        for row in 0..<batch {
            let label = Int(labels[row])
            let r = lossAndPrediction(logits + row * classes, label: label, classes: classes)
            total += Double(r.loss)
            if r.predicted == label { correct += 1 }
        }
        return (total, correct)
    }

    /// One row's −log p[label] (Float32) and its predicted class: the argmax of the logits, the
    /// first (lowest) class among equal maxima. What evaluation counts as correct or confused.
    @inline(__always)
    public static func lossAndPrediction(_ z: UnsafePointer<Float>, label: Int, classes: Int) -> (loss: Float, predicted: Int) {
        var zmax = z[0]
        var best = 0
        for j in 1..<classes where z[j] > zmax { zmax = z[j]; best = j }
        var sum: Float = 0
        for j in 0..<classes { sum += expf(z[j] - zmax) }
        return (logf(sum) - (z[label] - zmax), best)
    }
}
