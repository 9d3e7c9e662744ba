// `data.validation`: how many of the training split's last rows are held out for validation, read
// from the job and resolved against the file's row count (docs/data.md).

extension Job {
    /// `data.validation = N` (rows) or `= f` (a fraction in (0, 1)); absent: none held out.
    static func heldOut(_ d: TOMLReader) throws -> HeldOut {
        guard d.has("validation") else { return .none }
        if d.holdsInteger("validation") { return .rows(try d.int("validation", min: 1)) }
        let fraction = try d.double("validation", min: 0)
        guard fraction > 0 && fraction < 1 else {
            throw LockstepError.usage("data.validation = \(fraction): a fraction must lie strictly between 0 and 1 (or give a row count, e.g. data.validation = 5000)")
        }
        return .fraction(fraction)
    }
}

extension Job.Data {
    /// The rows `validation` holds out of `trainRows` training rows (0 for none): N, or ⌈f·N⌉.
    /// At least one row must be left to train on.
    public func heldOutRows(of trainRows: Int) throws -> Int {
        let held: Int
        switch validation {
        case .none: return 0
        case .rows(let n): held = n
        case .fraction(let f): held = max(1, Int((f * Double(trainRows)).rounded(.up)))
        }
        guard held < trainRows else {
            throw LockstepError.usage("data.validation holds out \(held) of the \(trainRows) training rows of \(file), leaving none to train on: hold out fewer")
        }
        return held
    }

    /// What the run's first lines say about the validation split.
    func describeValidation(rows: Int, fromFile: Bool) -> String {
        fromFile ? "validation: \(rows) samples from \(file):\(validationX)"
                 : "validation: the last \(rows) of the training rows of \(file), held out (never trained on)"
    }
}

extension Job {
    /// The resolved config's validation keys: only those the job set (the defaults read back the same).
    func validationLines(_ q: (String) -> String) -> [String] {
        var lines: [String] = []
        switch data.validation {
        case .none: break
        case .rows(let n): lines.append("validation = \(n)")
        case .fraction(let f): lines.append("validation = \(f)")
        }
        if data.validationPathsGiven { lines += ["validation_x = \(q(data.validationX))", "validation_y = \(q(data.validationY))"] }
        return lines
    }
}
