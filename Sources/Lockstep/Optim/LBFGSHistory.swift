// The limited-memory BFGS core (ALGORITHMS.md §5): the last `capacity` curvature pairs (s, y)
// in preallocated buffers, the curvature guard, and the two-loop recursion d = −H·g with
// H0 = (sᵀy / yᵀy)·I. Every scalar comes from dot products of data that is identical on all
// ranks (allreduced gradients), so all ranks compute the same direction. The line search and
// the trainer-level driver that uses this are not written yet (issue 6).

public final class LBFGSHistory {
    public let capacity: Int
    public let count: Int
    /// Pairs kept so far (at most `capacity`), oldest first in ring order from `oldest`.
    public private(set) var size = 0
    private var oldest = 0
    private let s: [FloatBuffer]
    private let y: [FloatBuffer]
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

    /// Forgets every pair (after a non-finite direction or iterate).
    public func clear() {
        size = 0
        oldest = 0
    }

    /// Keeps (s, y) if sᵀy > ε·‖s‖·‖y‖ (the curvature guard), dropping the oldest pair past
    /// `capacity`. Returns whether the pair was kept.
    @discardableResult
    public func offer(s sNew: UnsafePointer<Float>, y yNew: UnsafePointer<Float>, epsilon: Double = 1e-10) -> Bool {
        let sy = Norms.dot(sNew, yNew, count)
        let ss = Norms.dot(sNew, sNew, count), yy = Norms.dot(yNew, yNew, count)
        guard sy.isFinite, sy > epsilon * (ss * yy).squareRoot() else { return false }
        let slot = size < capacity ? (oldest + size) % capacity : oldest
        if size == capacity { oldest = (oldest + 1) % capacity } else { size += 1 }
        s[slot].pointer.update(from: sNew, count: count)
        y[slot].pointer.update(from: yNew, count: count)
        rho[slot] = 1 / sy
        return true
    }

    /// d = −H·g by the two-loop recursion over the kept pairs (d = −g with no pairs).
    public func direction(gradient g: UnsafePointer<Float>, into d: UnsafeMutablePointer<Float>) {
        d.update(from: g, count: count)
        // First loop, newest to oldest: α_i = ρ_i·s_iᵀq; q ← q − α_i·y_i.
        for k in stride(from: size - 1, through: 0, by: -1) {
            let i = (oldest + k) % capacity
            let a = rho[i] * Norms.dot(s[i].pointer, d, count)
            alpha[i] = a
            Self.axpy(-a, y[i].pointer, d, count)
        }
        // H0 = γ·I with γ = sᵀy / yᵀy of the newest pair.
        if size > 0 {
            let newest = (oldest + size - 1) % capacity
            let gamma = (1 / rho[newest]) / Norms.dot(y[newest].pointer, y[newest].pointer, count)
            Self.scale(gamma, d, count)
        }
        // Second loop, oldest to newest: β = ρ_i·y_iᵀr; r ← r + s_i·(α_i − β).
        for k in 0..<size {
            let i = (oldest + k) % capacity
            let b = rho[i] * Norms.dot(y[i].pointer, d, count)
            Self.axpy(alpha[i] - b, s[i].pointer, d, count)
        }
        Self.scale(-1, d, count)
    }

    @inline(__always)
    static func axpy(_ a: Double, _ x: UnsafePointer<Float>, _ y: UnsafeMutablePointer<Float>, _ n: Int) {
        let af = Float(a)
        for j in 0..<n { y[j] += af * x[j] }
    }

    @inline(__always)
    static func scale(_ a: Double, _ x: UnsafeMutablePointer<Float>, _ n: Int) {
        let af = Float(a)
        for j in 0..<n { x[j] *= af }
    }
}
