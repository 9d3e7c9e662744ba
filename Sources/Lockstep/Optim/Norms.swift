// Per-tensor reductions the optimizers need (LARS/LAMB trust ratios, L-BFGS dot products, the
// gradient norm), and Adam's bias corrections, shared by Adam and LAMB.

public enum Norms {
    /// Euclidean norm of n floats, accumulated in Float64 (the same on every rank for the same data).
    @inline(__always)
    public static func l2(_ x: UnsafePointer<Float>, _ n: Int) -> Double { dot(x, x, n).squareRoot() }

    /// aᵀb of n floats, accumulated in Float64.
    @inline(__always)
    public static func dot(_ a: UnsafePointer<Float>, _ b: UnsafePointer<Float>, _ n: Int) -> Double {
        var sum = 0.0
        for i in 0..<n { sum += Double(a[i]) * Double(b[i]) }
        return sum
    }

    /// Adam's bias corrections 1/(1−β1^t) and 1/(1−β2^t) for update t (1-based).
    @inline(__always)
    public static func biasCorrections(beta1: Double, beta2: Double, t: Int) -> (Float, Float) {
        (Float(1 / (1 - pow(beta1, Double(t)))), Float(1 / (1 - pow(beta2, Double(t)))))
    }

    /// The layer-wise trust ratio numerator/denominator rule: 1 when either norm is 0.
    @inline(__always)
    public static func ratio(_ numerator: Double, _ denominator: Double) -> Double {
        numerator > 0 && denominator > 0 ? numerator / denominator : 1
    }
}

#if canImport(Glibc)
import Glibc
#endif
