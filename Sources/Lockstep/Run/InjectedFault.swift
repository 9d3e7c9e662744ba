// A test hook for the fault tests: LOCKSTEP_TEST_FAULT="KIND:RANK:STEP" makes one rank misbehave
// at the start of one step, so the tests can show that no fault leaves the job hanging:
//   error — that rank alone throws (the others never see it): the job is aborted naming it;
//   stall — that rank sleeps (outside any collective) until the stall watchdog ends the job.
// Unset (always, outside the tests) it costs one comparison per step.

#if canImport(Glibc)
import Glibc
#endif

struct InjectedFault {
    enum Kind: String { case error, stall }
    let kind: Kind
    let step: Int

    /// The fault for this rank, if the variable names one.
    static func fromEnvironment(rank: Int) -> InjectedFault? {
        guard let raw = getenv("LOCKSTEP_TEST_FAULT") else { return nil }
        let parts = String(cString: raw).split(separator: ":").map(String.init)
        guard parts.count == 3, let kind = Kind(rawValue: parts[0]), let faultRank = Int(parts[1]), let step = Int(parts[2]),
              faultRank == rank else { return nil }
        return InjectedFault(kind: kind, step: step)
    }

    func strike(at step: Int) throws {
        guard step == self.step else { return }
        switch kind {
        case .error:
            throw LockstepError.runtime("injected fault at step \(step) (LOCKSTEP_TEST_FAULT): an error only this rank sees")
        case .stall:
            while true { sleep(3600) }
        }
    }
}
