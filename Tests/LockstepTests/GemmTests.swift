// Gemm.sgemm (row-major, all four transpose combinations, leading dimensions) against a Float64 triple loop.
import Testing
import Lockstep

@Suite struct GemmTests {
    struct Case: CustomTestStringConvertible, Sendable {
        let transA: Bool, transB: Bool, m: Int, n: Int, k: Int
        var testDescription: String { "transA=\(transA) transB=\(transB) m=\(m) n=\(n) k=\(k)" }
    }

    static let cases: [Case] = [(false, false), (false, true), (true, false), (true, true)].flatMap { ta, tb in
        [Case(transA: ta, transB: tb, m: 7, n: 5, k: 9),
         Case(transA: ta, transB: tb, m: 1, n: 13, k: 3),
         Case(transA: ta, transB: tb, m: 16, n: 1, k: 17)]
    }

    @Test(arguments: cases)
    func matchesFloat64Reference(_ c: Case) {
        var rng = Xoshiro256(seed: 2024, stream: UInt64(c.m * 10_000 + c.n * 100 + c.k) &* 4 &+ (c.transA ? 2 : 0) &+ (c.transB ? 1 : 0))
        // Stored shapes (row-major): A is m×k, or k×m when transposed; B is k×n, or n×k.
        let (aRows, aCols) = c.transA ? (c.k, c.m) : (c.m, c.k)
        let (bRows, bCols) = c.transB ? (c.n, c.k) : (c.k, c.n)
        // Leading dimensions wider than the rows, with padding BLAS must neither read nor write.
        let lda = aCols + 3, ldb = bCols + 2, ldc = c.n + 4
        let sentinel: Float = 12345
        var a = [Float](repeating: .nan, count: aRows * lda)
        var b = [Float](repeating: .nan, count: bRows * ldb)
        var cm = [Float](repeating: sentinel, count: c.m * ldc)
        for i in 0..<aRows { for j in 0..<aCols { a[i * lda + j] = Float(rng.nextUnit() * 2 - 1) } }
        for i in 0..<bRows { for j in 0..<bCols { b[i * ldb + j] = Float(rng.nextUnit() * 2 - 1) } }
        for i in 0..<c.m { for j in 0..<c.n { cm[i * ldc + j] = Float(rng.nextUnit() * 2 - 1) } }
        let c0 = cm
        let alpha: Float = 0.75, beta: Float = -1.25

        func opA(_ i: Int, _ p: Int) -> Double { Double(c.transA ? a[p * lda + i] : a[i * lda + p]) }
        func opB(_ p: Int, _ j: Int) -> Double { Double(c.transB ? b[j * ldb + p] : b[p * ldb + j]) }

        a.withUnsafeBufferPointer { pa in
            b.withUnsafeBufferPointer { pb in
                cm.withUnsafeMutableBufferPointer { pc in
                    Gemm.sgemm(transA: c.transA, transB: c.transB, m: c.m, n: c.n, k: c.k,
                               alpha: alpha, a: pa.baseAddress!, lda: lda, b: pb.baseAddress!, ldb: ldb,
                               beta: beta, c: pc.baseAddress!, ldc: ldc)
                }
            }
        }

        for i in 0..<c.m {
            for j in 0..<c.n {
                var sum = 0.0, magnitude = 0.0
                for p in 0..<c.k {
                    sum += opA(i, p) * opB(p, j)
                    magnitude += abs(opA(i, p) * opB(p, j))
                }
                let reference = Double(alpha) * sum + Double(beta) * Double(c0[i * ldc + j])
                // Float32 accumulation: error ≤ ~k·ε·Σ|terms|; 1e-5 relative to the terms' magnitude
                // (plus 1e-6 absolute) is generous for k ≤ 17 yet far below any indexing mistake.
                let scale = abs(Double(alpha)) * magnitude + abs(Double(beta) * Double(c0[i * ldc + j]))
                let got = Double(cm[i * ldc + j])
                #expect(abs(got - reference) <= 1e-6 + 1e-5 * scale, "C[\(i),\(j)] = \(got), expected \(reference)")
            }
            for j in c.n..<ldc {
                #expect(cm[i * ldc + j] == sentinel, "padding C[\(i),\(j)] was written")
            }
        }
    }

    @Test func betaZeroIgnoresNaNInC() {
        // With beta = 0 the old contents of C must not leak in (BLAS semantics: C is write-only).
        let a: [Float] = [1, 2, 3, 4]          // 2×2
        let b: [Float] = [5, 6, 7, 8]          // 2×2
        var c = [Float](repeating: .nan, count: 4)
        Gemm.sgemm(transA: false, transB: false, m: 2, n: 2, k: 2, alpha: 1, a: a, lda: 2, b: b, ldb: 2,
                   beta: 0, c: &c, ldc: 2)
        #expect(c == [19, 22, 43, 50])
    }
}
