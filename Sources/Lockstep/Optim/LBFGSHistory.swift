// The limited-memory BFGS core (docs/algorithms.md §5): the last `capacity` curvature pairs (s, y)
// in preallocated buffers, the curvature guard, and the two-loop recursion d = −H·g with
// H0 = (sᵀy / yᵀy)·I. Every scalar comes from dot products of data that is identical on all
// ranks (allreduced gradients), so all ranks compute the same direction. `LBFGS` drives it.
//
// The pairs are kept oldest first in slots 0..<size: dropping the oldest rotates the buffer
// references (no copy), so a checkpoint of the slots is the whole state. An empty slot is all
// zeros (a kept pair has s ≠ 0), which is how `restored()` finds `size` again.

public final class LBFGSHistory {
    public let capacity: Int
    public let count: Int
    /// Pairs kept so far (at most `capacity`), in slots 0..<size, oldest first.
    public private(set) var size = 0
    private var s: [FloatBuffer]
    private var y: [FloatBuffer]
    /// ρ_i = 1 / s_iᵀy_i, recomputed from the slots after a restore.
    private var rho: [Double]
    private var alpha: [Double]

    public init(capacity: Int, count: Int) {
        precondition(capacity >= 1)
        self.capacity = capacity
        self.count = count
        s = (0..<capacity).map { _ in FloatBuffer(count: count) }
        y = (0..<capacity).map { _ in FloatBuffer(count: count) }
        rho = [Double](repeating: 0, count: capacity)
        alpha = rho
    }

    /// The slots by name, for checkpoints ("lbfgs_s0" is the oldest pair's s).
    public var stateBuffers: [(name: String, buffer: FloatBuffer)] {
        (0..<capacity).map { ("lbfgs_s\($0)", s[$0]) } + (0..<capacity).map { ("lbfgs_y\($0)", y[$0]) }
    }

    /// Rebuilds `size` and ρ after the slots were overwritten from a checkpoint.
    public func restored() {
        size = 0
        while size < capacity && !isZero(s[size]) {
            rho[size] = 1 / Norms.dot(s[size].pointer, y[size].pointer, count)
            size += 1
        }
    }

    /// Forgets every pair (after a non-finite direction or iterate).
    public func clear() {
        for i in 0..<size {
            s[i].fill(0)
            y[i].fill(0)
        }
        size = 0
    }

    /// Keeps (s, y) if sᵀy > ε·‖s‖·‖y‖ (the curvature guard), dropping the oldest pair past
    /// `capacity`. Returns whether the pair was kept.
    @discardableResult
    public func offer(s sNew: UnsafePointer<Float>, y yNew: UnsafePointer<Float>, epsilon: Double = 1e-10) -> Bool {
        let sy = Norms.dot(sNew, yNew, count)
        let ss = Norms.dot(sNew, sNew, count), yy = Norms.dot(yNew, yNew, count)
        guard sy.isFinite, ss > 0, sy > epsilon * (ss * yy).squareRoot() else { return false }
        if size == capacity {
            // The oldest slot's buffers become the newest slot.
            s.append(s.removeFirst())
            y.append(y.removeFirst())
            rho.append(rho.removeFirst())
            size -= 1
        }
        s[size].pointer.update(from: sNew, count: count)
        y[size].pointer.update(from: yNew, count: count)
        rho[size] = 1 / sy
        size += 1
        return true
    }

    /// d = −H·g by the two-loop recursion over the kept pairs (d = −g with no pairs).
    public func direction(gradient g: UnsafePointer<Float>, into d: UnsafeMutablePointer<Float>) {
        d.update(from: g, count: count)
        // First loop, newest to oldest: α_i = ρ_i·s_iᵀq; q ← q − α_i·y_i.
        for i in stride(from: size - 1, through: 0, by: -1) {
            let a = rho[i] * Norms.dot(s[i].pointer, d, count)
            alpha[i] = a
            VectorKernels.axpy(Float(-a), y[i].pointer, d, count)
        }
        // H0 = γ·I with γ = sᵀy / yᵀy of the newest pair.
        if size > 0 {
            let newest = size - 1
            let gamma = (1 / rho[newest]) / Norms.dot(y[newest].pointer, y[newest].pointer, count)
            VectorKernels.scale(Float(gamma), d, count)
        }
        // Second loop, oldest to newest: β = ρ_i·y_iᵀr; r ← r + s_i·(α_i − β).
        for i in 0..<size {
            let b = rho[i] * Norms.dot(y[i].pointer, d, count)
            VectorKernels.axpy(Float(alpha[i] - b), s[i].pointer, d, count)
        }
        VectorKernels.scale(-1, d, count)
    }

    private func isZero(_ buffer: FloatBuffer) -> Bool {
        for j in 0..<count where buffer.pointer[j] != 0 { return false }
        return true
    }
}
