// The errors Lockstep reports to a user, and the exit codes they map to.
// A user mistake is `.usage` (exit 2); anything else that goes wrong at run time is `.runtime` (exit 1).

/// An error with a one-line message that says what was wrong and what to do about it.
public enum LockstepError: Error, CustomStringConvertible, Equatable {
    /// Bad configuration, file, shape, dtype, label or command-line input: exit code 2.
    case usage(String)
    /// A failure while running that the user did not cause by their input: exit code 1.
    case runtime(String)

    public var message: String {
        switch self {
        case .usage(let m), .runtime(let m): return m
        }
    }

    public var exitCode: Int32 {
        switch self {
        case .usage: return ExitStatus.usage
        case .runtime: return ExitStatus.failure
        }
    }

    public var description: String { message }
}

/// Process exit codes, documented in README.md. A SLURM script keys on these.
public enum ExitStatus {
    public static let success: Int32 = 0
    public static let failure: Int32 = 1
    public static let usage: Int32 = 2
    /// Stopped on SIGUSR1 or SIGTERM after writing a checkpoint: run it again with --resume
    /// (EX_TEMPFAIL; the SLURM scripts requeue on it).
    public static let interrupted: Int32 = 75
}
