// Matrix products, all through OpenBLAS's cblas_sgemm. Row-major throughout.
import CBLAS

public enum Gemm {
    /// C[m×n] = alpha · op(A) · op(B) + beta · C, row-major; op(X) = Xᵀ when `transX`.
    /// A is m×k after op, B is k×n after op; leading dimensions are those of the stored matrices.
    @inline(__always)
    public static func sgemm(
        transA: Bool, transB: Bool, m: Int, n: Int, k: Int,
        alpha: Float, a: UnsafePointer<Float>, lda: Int,
        b: UnsafePointer<Float>, ldb: Int,
        beta: Float, c: UnsafeMutablePointer<Float>, ldc: Int
    ) {
        // OpenBLAS 0.3.21's AVX-512 small-matrix kernel for this case (sgemm_small_kernel_nn,
        // taken when m·n·k ≤ 100³) mallocs a buffer on every call whose row-major n leaves 1–8
        // columns past a multiple of 16 and k ≥ 32. Those last columns are done here instead
        // (each column of C depends only on its column of B, so the split changes no value's
        // sum order more than another kernel would), and OpenBLAS gets the rest.
        if !transA && !transB && k >= 32 && (1...8).contains(n % 16) && Double(m) * Double(n) * Double(k) <= 1e6 {
            let head = n - n % 16
            if head > 0 {
                cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, Int32(m), Int32(head), Int32(k),
                            alpha, a, Int32(lda), b, Int32(ldb), beta, c, Int32(ldc))
            }
            for i in 0..<m {
                let row = a + i * lda
                for j in head..<n {
                    var sum: Float = 0
                    for p in 0..<k { sum += row[p] * b[p * ldb + j] }
                    c[i * ldc + j] = alpha * sum + (beta == 0 ? 0 : beta * c[i * ldc + j])
                }
            }
            return
        }
        cblas_sgemm(CblasRowMajor,
                    transA ? CblasTrans : CblasNoTrans, transB ? CblasTrans : CblasNoTrans,
                    Int32(m), Int32(n), Int32(k), alpha, a, Int32(lda), b, Int32(ldb), beta, c, Int32(ldc))
    }

    /// Pins OpenBLAS to `n` threads. Under MPI each rank should use one (ranks already fill the cores).
    public static func setThreads(_ n: Int) { openblas_set_num_threads(Int32(n)) }

    /// The threads OpenBLAS uses now.
    public static var threads: Int { Int(openblas_get_num_threads()) }
}
