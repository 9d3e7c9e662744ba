// An exclusive lock on a run directory for a run's lifetime, so two runs never write one
// directory's metrics and checkpoints at once. A POSIX record lock (fcntl) on `<run.out>/.lock`:
// the kernel (or NFS's lock manager) drops it when the holder exits in any way, SIGKILL
// included, so a lock left by a dead run is never in the way. The file stays empty and is
// never rewritten: a run refused for another reason leaves the directory byte-for-byte as it was.

#if canImport(Glibc)
import Glibc
#endif

public final class RunDirectoryLock {
    public static let fileName = ".lock"
    private let descriptor: Int32
    /// Set when the filesystem has no locks: the run goes on unlocked and says so.
    public private(set) var warning: String?

    /// Takes the lock or throws a usage error naming the process that holds it.
    public init(_ runDirectory: String) throws {
        let path = runDirectory + "/" + Self.fileName
        let fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC, 0o644)
        guard fd >= 0 else {
            throw LockstepError.usage("cannot open \(path) to lock the run directory: \(String(cString: strerror(errno))); choose a writable run.out")
        }
        var lock = flock()
        lock.l_type = Int16(F_WRLCK)
        lock.l_whence = Int16(SEEK_SET)
        while fcntl(fd, F_SETLK, &lock) != 0 {
            let reason = errno
            if reason == EINTR { continue }
            defer { close(fd) }
            if reason == ENOLCK || reason == ENOSYS || reason == EOPNOTSUPP {
                // NFS without a lock manager, Lustre without flock: often a cluster's only shared
                // filesystem. Refusing every run there would be worse than running unguarded.
                warning = "warning: \(runDirectory) cannot be locked (\(String(cString: strerror(reason))) on this filesystem): make sure no other run uses it at the same time"
                close(fd)
                descriptor = -1
                return
            }
            guard reason == EACCES || reason == EAGAIN else {
                throw LockstepError.usage("cannot lock \(path): \(String(cString: strerror(reason))); choose another run.out")
            }
            throw LockstepError.usage("\(runDirectory) is in use by another run (\(Self.holder(fd))): wait for it to finish, or choose another run directory (--set run.out=DIR)")
        }
        descriptor = fd
    }

    /// Held until the process exits; closing earlier releases it (tests, `lockstep bench`).
    deinit { if descriptor >= 0 { close(descriptor) } }

    /// "process 1234: lockstep train jobs/x.toml", from F_GETLK and /proc when the holder is local.
    private static func holder(_ fd: Int32) -> String {
        var probe = flock()
        probe.l_type = Int16(F_WRLCK)
        probe.l_whence = Int16(SEEK_SET)
        guard fcntl(fd, F_GETLK, &probe) == 0, probe.l_type != Int16(F_UNLCK), probe.l_pid > 0 else {
            return "its holder is on another host"
        }
        let pid = probe.l_pid
        guard let bytes = readFileBytes("/proc/\(pid)/cmdline"), !bytes.isEmpty else {
            return "process \(pid), on this or another host"
        }
        let command = bytes.split(separator: 0).map { String(decoding: $0, as: UTF8.self) }
        return "process \(pid) on this host: \(command.joined(separator: " "))"
    }
}
