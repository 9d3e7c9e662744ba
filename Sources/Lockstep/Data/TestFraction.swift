// `--test-fraction F` of `lockstep import npy|npz|csv`: the last ⌈F·N⌉ of N rows become the
// test split, in their order, and the rows before them the training split. F is taken as the
// exact decimal written (0.1 is one tenth, not the binary double nearest it), so ⌈0.1·30⌉ is 3.

public struct TestFraction: Sendable, Equatable {
    /// F = numerator / 10^digits, exactly.
    let numerator: Int
    let digits: Int
    public let text: String

    /// Parses a decimal strictly between 0 and 1 ("0.2", ".05"); anything else is a usage error.
    public init(_ text: String) throws {
        self.text = text
        let bad = LockstepError.usage("--test-fraction must be a decimal between 0 and 1 such as 0.1, got \(text)")
        var s = Substring(text)
        if s.hasPrefix("0") { s = s.dropFirst() }
        guard s.hasPrefix("."), s.count >= 2, s.count <= 19 else { throw bad }
        let fraction = s.dropFirst()
        guard fraction.allSatisfy({ $0.isASCII && $0.isNumber }), let n = Int(fraction), n > 0 else { throw bad }
        numerator = n
        digits = fraction.count
    }

    /// The test rows of `count`: ⌈F·count⌉, computed exactly.
    public func testRows(of count: Int) -> Int {
        var denominator = 1
        for _ in 0..<digits { denominator *= 10 }         // ≤ 10^18
        // ⌈n·count / 10^d⌉ without overflow: n < 10^d, so split count into quotient and remainder.
        let (q, r) = count.quotientAndRemainder(dividingBy: denominator)
        let whole = q * numerator                          // ≤ count
        let part = (r.multipliedFullWidth(by: numerator))
        let (pq, pr) = denominator.dividingFullWidth(part)
        return whole + pq + (pr > 0 ? 1 : 0)
    }

    /// (training rows, test rows) of `count`, or a usage error when either would be empty.
    public func split(_ count: Int, what: String) throws -> (train: Int, test: Int) {
        let test = testRows(of: count)
        guard test < count else {
            throw LockstepError.usage("\(what) has \(count) rows: --test-fraction \(text) would leave no training rows; give a smaller fraction or more data")
        }
        return (count - test, test)
    }
}
