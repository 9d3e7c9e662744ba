// Per-tensor reductions the optimizers need (LARS/LAMB trust ratios, L-BFGS dot products, the
// gradient norm), and Adam's bias corrections, shared by Adam and LAMB.

#if canImport(Glibc)
import Glibc
#endif

public enum Norms {
    /// Euclidean norm of n floats, accumulated in Float64 (the same on every rank for the same data).
    @inline(__always)
    public static func l2(_ x: UnsafePointer<Float>, _ n: Int) -> Double { dot(x, x, n).squareRoot() }

    /// aᵀb of n floats, accumulated in Float64 over four interleaved partial sums: one running sum
    /// is a chain of dependent adds (one add latency per element), four let the compiler
    /// vectorise. The order is fixed, so every rank gets the same bits for the same data; this
    /// is our own code rather than BLAS's dsdot, whose kernel (and rounding) depends on the CPU.
    @inline(__always)
    public static func dot(_ a: UnsafePointer<Float>, _ b: UnsafePointer<Float>, _ n: Int) -> Double {
        var (s0, s1, s2, s3) = (0.0, 0.0, 0.0, 0.0)
        var i = 0
        while i + 4 <= n {
            s0 += Double(a[i]) * Double(b[i])
            s1 += Double(a[i + 1]) * Double(b[i + 1])
            s2 += Double(a[i + 2]) * Double(b[i + 2])
            s3 += Double(a[i + 3]) * Double(b[i + 3])
            i += 4
        }
        while i < n {
            s0 += Double(a[i]) * Double(b[i])
            i += 1
        }
        return (s0 + s1) + (s2 + s3)
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
