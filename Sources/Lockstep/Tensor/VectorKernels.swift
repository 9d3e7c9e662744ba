// Kernels over raw Float32 vectors, shared by the optimizers, L-BFGS, GSNR and the trainer:
// reductions in a fixed order (docs/algorithms.md §8.6), axpy and scale, and the fold of a
// gradient group into the exchange's moments (§2.1). All are `@inline(__always)` plain loops, so
// each call site compiles to the loop it would have written itself (vectorised, no allocation).
// `Norms` and `GradientGroups` keep the names the rest of the code calls them by.

public enum VectorKernels {
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

    /// Euclidean norm of n floats, accumulated in Float64 (the same on every rank for the same data).
    @inline(__always)
    public static func l2(_ x: UnsafePointer<Float>, _ n: Int) -> Double { dot(x, x, n).squareRoot() }

    /// y ← y + a·x (Float32, unfused: a product, then a sum).
    @inline(__always)
    public static func axpy(_ a: Float, _ x: UnsafePointer<Float>, _ y: UnsafeMutablePointer<Float>, _ n: Int) {
        for j in 0..<n { y[j] += a * x[j] }
    }

    /// x ← a·x (Float32).
    @inline(__always)
    public static func scale(_ a: Float, _ x: UnsafeMutablePointer<Float>, _ n: Int) {
        for j in 0..<n { x[j] *= a }
    }

    /// Folds one gradient group into the moments: sum (+)= w, squares (+)= w² (`first` writes
    /// instead of adding). The squares are taken before any reduction, as the variance estimate needs.
    @inline(__always)
    public static func fold(_ work: UnsafePointer<Float>, sum: UnsafeMutablePointer<Float>,
                            squares: UnsafeMutablePointer<Float>, count: Int, first: Bool) {
        if first {
            for j in 0..<count {
                let w = work[j]
                sum[j] = w
                squares[j] = w * w
            }
        } else {
            for j in 0..<count {
                let w = work[j]
                sum[j] += w
                squares[j] += w * w
            }
        }
    }

    /// The same fold of the group shifted by `shift` (identical on every rank): with y = w − a,
    /// sum (+)= y, squares (+)= y² (§2.1), so the variance no longer cancels against ḡ².
    @inline(__always)
    public static func fold(_ work: UnsafePointer<Float>, shift: UnsafePointer<Float>, sum: UnsafeMutablePointer<Float>,
                            squares: UnsafeMutablePointer<Float>, count: Int, first: Bool) {
        if first {
            for j in 0..<count {
                let y = work[j] - shift[j]
                sum[j] = y
                squares[j] = y * y
            }
        } else {
            for j in 0..<count {
                let y = work[j] - shift[j]
                sum[j] += y
                squares[j] += y * y
            }
        }
    }
}

/// The reductions by the name the optimizers, L-BFGS and the trainer use (docs/algorithms.md §8.6).
public enum Norms {
    /// Euclidean norm of n floats, accumulated in Float64 (`VectorKernels.l2`).
    @inline(__always)
    public static func l2(_ x: UnsafePointer<Float>, _ n: Int) -> Double { VectorKernels.l2(x, n) }

    /// aᵀb of n floats, accumulated in Float64 in a fixed order (`VectorKernels.dot`).
    @inline(__always)
    public static func dot(_ a: UnsafePointer<Float>, _ b: UnsafePointer<Float>, _ n: Int) -> Double {
        VectorKernels.dot(a, b, n)
    }
}

/// The GSNR fold by the name the trainer and the bucketed exchange use (docs/algorithms.md §2.1).
public enum GradientGroups {
    /// Folds one group's gradient into the exchange buffer's moments (`VectorKernels.fold`).
    @inline(__always)
    public static func fold(_ work: UnsafePointer<Float>, sum: UnsafeMutablePointer<Float>,
                            squares: UnsafeMutablePointer<Float>, count: Int, first: Bool) {
        VectorKernels.fold(work, sum: sum, squares: squares, count: count, first: first)
    }

    /// Folds one group shifted by the reference `shift` (`VectorKernels.fold(_:shift:...)`).
    @inline(__always)
    public static func fold(_ work: UnsafePointer<Float>, shift: UnsafePointer<Float>, sum: UnsafeMutablePointer<Float>,
                            squares: UnsafeMutablePointer<Float>, count: Int, first: Bool) {
        VectorKernels.fold(work, shift: shift, sum: sum, squares: squares, count: count, first: first)
    }
}
