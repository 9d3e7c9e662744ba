// Per-tensor reductions the layer-wise optimizers need (LARS, LAMB trust ratios; gradient norm).

public enum Norms {
    /// Euclidean norm of n floats, accumulated in Float64 (the same on every rank for the same data).
    @inline(__always)
    public static func l2(_ x: UnsafePointer<Float>, _ n: Int) -> Double {
        var sum = 0.0
        for i in 0..<n { sum += Double(x[i]) * Double(x[i]) }
        return sum.squareRoot()
    }

    /// The layer-wise trust ratio numerator/denominator rule: 1 when either norm is 0.
    @inline(__always)
    public static func ratio(_ numerator: Double, _ denominator: Double) -> Double {
        numerator > 0 && denominator > 0 ? numerator / denominator : 1
    }
}
