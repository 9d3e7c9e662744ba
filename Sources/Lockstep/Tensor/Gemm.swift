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
        cblas_sgemm(CblasRowMajor,
                    transA ? CblasTrans : CblasNoTrans, transB ? CblasTrans : CblasNoTrans,
                    Int32(m), Int32(n), Int32(k), alpha, a, Int32(lda), b, Int32(ldb), beta, c, Int32(ldc))
    }

    /// Pins OpenBLAS to `n` threads. Under MPI each rank should use one (ranks already fill the cores).
    public static func setThreads(_ n: Int) { openblas_set_num_threads(Int32(n)) }
}
