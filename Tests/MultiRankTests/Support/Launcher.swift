// Runs the built `lockstep` binary for real: as a plain process (an MPI singleton) or under
// `mpirun -n N --oversubscribe`, with a wall-clock limit so a hang fails the test instead of CI.

import Foundation

struct Launch {
    let exitCode: Int32
    let stdout: String
    let stderr: String
    let seconds: Double
    let timedOut: Bool

    /// stderr lines written by lockstep itself (mpirun adds its own banner lines).
    var lockstepErrors: [String] { stderr.split(separator: "\n").map(String.init).filter { $0.hasPrefix("lockstep:") } }
}

enum Launcher {
    /// The package root (two folders above this file's folder).
    static let packageRoot: URL = URL(fileURLWithPath: #filePath)
        .deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()

    /// The `lockstep` built alongside this test bundle (same configuration), or $LOCKSTEP_BIN.
    static let binary: String = {
        if let path = ProcessInfo.processInfo.environment["LOCKSTEP_BIN"] { return path }
        let exe = URL(fileURLWithPath: "/proc/self/exe").resolvingSymlinksInPath()
        return exe.deletingLastPathComponent().appendingPathComponent("lockstep").path
    }()

    /// Runs `lockstep args...`, under `mpirun -n ranks` when `ranks` is given. With
    /// `deliverSignals`, through a wrapper that unblocks every signal first: the test runner's
    /// children inherit a mask that blocks most signals, and mpirun must see SIGUSR1 to forward it
    /// as it does when a shell or SLURM starts it.
    static func run(ranks: Int?, _ args: [String], timeout: Double = 120, environment extra: [String: String] = [:],
                    deliverSignals: Bool = false) throws -> Launch {
        var command: [String]
        if let ranks {
            command = ["/usr/bin/mpirun", "-n", String(ranks), "--oversubscribe", "--timeout", String(Int(timeout)), binary] + args
        } else {
            command = [binary] + args
        }
        if deliverSignals {
            command = ["/usr/bin/python3", "-c",
                       "import os, signal, sys; signal.pthread_sigmask(signal.SIG_SETMASK, []); os.execv(sys.argv[1], sys.argv[1:])"] + command
        }
        // mpirun's own --timeout fires first; the extra 15 s catch a launcher that hangs itself.
        return try execute(command, timeout: timeout + 15, environment: extra)
    }

    /// Runs any `command` (a script, a wrapper) with the clean environment from the package
    /// root, killing its process group after `timeout` seconds so a hang fails the test, not CI.
    static func execute(_ command: [String], timeout: Double, environment extra: [String: String] = [:]) throws -> Launch {
        let process = Process()
        process.executableURL = URL(fileURLWithPath: command[0])
        process.arguments = Array(command.dropFirst())
        process.currentDirectoryURL = packageRoot
        process.environment = environment(extra)
        let out = Pipe(), err = Pipe()
        // Close-on-exec for our copies of the pipes: a process the test runner execs meanwhile
        // (the orted that MPI_Init starts for the in-process tests running in parallel) would
        // otherwise inherit the write ends and hold them open, so the reads below never saw EOF.
        // The child still gets them as its stdout/stderr (dup2 clears the flag on the copy).
        for handle in [out.fileHandleForReading, out.fileHandleForWriting, err.fileHandleForReading, err.fileHandleForWriting] {
            _ = fcntl(handle.fileDescriptor, F_SETFD, FD_CLOEXEC)
        }
        process.standardOutput = out
        process.standardError = err
        let started = Date()
        try process.run()
        // Drain both pipes while the process runs, so a chatty child never blocks on a full pipe.
        let group = DispatchGroup()
        nonisolated(unsafe) var outData = Data(), errData = Data()
        DispatchQueue.global().async(group: group) { outData = out.fileHandleForReading.readDataToEndOfFile() }
        DispatchQueue.global().async(group: group) { errData = err.fileHandleForReading.readDataToEndOfFile() }
        var timedOut = false
        while process.isRunning {
            if Date().timeIntervalSince(started) > timeout {
                timedOut = true
                process.terminate()
                kill(-process.processIdentifier, SIGKILL)
                break
            }
            usleep(20_000)
        }
        process.waitUntilExit()
        group.wait()
        return Launch(exitCode: process.terminationStatus,
                      stdout: String(decoding: outData, as: UTF8.self),
                      stderr: String(decoding: errData, as: UTF8.self),
                      seconds: Date().timeIntervalSince(started), timedOut: timedOut)
    }

    /// The parent's environment without MPI launcher variables (a child mpirun that inherits a
    /// singleton's OMPI_*/PMIX_* variables fails silently), plus what a root container needs.
    static func environment(_ extra: [String: String]) -> [String: String] {
        var env = ProcessInfo.processInfo.environment.filter { key, _ in
            !["OMPI_", "ORTE_", "OPAL_", "PMIX_", "PMI_"].contains { key.hasPrefix($0) }
        }
        env["OMPI_ALLOW_RUN_AS_ROOT"] = "1"
        env["OMPI_ALLOW_RUN_AS_ROOT_CONFIRM"] = "1"
        env["OMPI_MCA_rmaps_base_oversubscribe"] = "1"
        env["OMPI_MCA_btl_vader_single_copy_mechanism"] = "none"
        env["OPENBLAS_NUM_THREADS"] = "1"
        for (k, v) in extra { env[k] = v }
        return env
    }
}
