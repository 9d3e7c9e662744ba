// Collective decisions about errors: a step that may fail on some ranks and not others runs
// inside `agree`, and then every rank learns whether any rank failed, so none waits forever
// on a collective that the failed rank will never call.

/// Thrown on every rank when at least one rank failed inside `Communicator.agree`.
public struct CollectiveFailure: Error {
    /// This rank's own error, if it had one.
    public let local: LockstepError?
    /// Whether rank 0 failed too (then rank 0's message is the one to print).
    public let rootFailed: Bool
    /// The exit code every rank uses: usage (2) wins over failure (1).
    public let exitCode: Int32
}

extension Communicator {
    /// Runs `body` on every rank, then agrees collectively whether any rank failed.
    /// One small allreduce; call it at the same point on every rank.
    public func agree<T>(_ body: () throws -> T) throws -> T {
        var result: T?
        var localError: LockstepError?
        do {
            result = try body()
        } catch let e as LockstepError {
            localError = e
        } catch let e as CollectiveFailure {
            // A nested agreement already failed on every rank: all ranks pass it on alike.
            throw e
        } catch {
            localError = .runtime("\(error)")
        }
        var flags: [Int64] = [Int64(localError?.exitCode ?? 0), isRoot ? Int64(localError?.exitCode ?? 0) : 0]
        allreduce(&flags, .max)
        if flags[0] != 0 {
            let code: Int32 = flags[0] == Int64(ExitStatus.usage) ? ExitStatus.usage : ExitStatus.failure
            throw CollectiveFailure(local: localError, rootFailed: flags[1] != 0, exitCode: code)
        }
        return result!
    }
}
