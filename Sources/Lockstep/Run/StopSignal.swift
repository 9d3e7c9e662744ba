// SIGUSR1 / SIGTERM → stop at the next step boundary with a checkpoint (exit 75). The handler
// only records the signal (CSignals); the trainer carries each rank's flag in the step's
// allreduce, so every rank learns of a signal that reached any one of them at the same step.

import CSignals
#if canImport(Glibc)
import Glibc
#endif

public enum StopSignal {
    public static func install() { lockstep_install_stop_handlers() }

    /// The signal received so far (0: none).
    public static var received: Int32 { lockstep_stop_signal() }

    public static func name(_ signal: Int32) -> String {
        switch signal {
        case SIGUSR1: return "SIGUSR1"
        case SIGTERM: return "SIGTERM"
        default: return "signal \(signal)"
        }
    }
}
