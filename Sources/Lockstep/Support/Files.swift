// Small POSIX file helpers (Foundation-free, so the hot binary stays lean and errors are ours).
#if canImport(Glibc)
import Glibc
#endif

/// The whole file's bytes, or nil if it cannot be read.
public func readFileBytes(_ path: String) -> [UInt8]? {
    guard let f = fopen(path, "rb") else { return nil }
    defer { fclose(f) }
    var bytes: [UInt8] = []
    var chunk = [UInt8](repeating: 0, count: 65536)
    while true {
        let n = fread(&chunk, 1, chunk.count, f)
        if n == 0 { break }
        bytes.append(contentsOf: chunk[0..<n])
    }
    return ferror(f) != 0 ? nil : bytes
}

/// The whole file as UTF-8 text, or nil if it cannot be read.
public func readTextFile(_ path: String) -> String? {
    readFileBytes(path).map { String(decoding: $0, as: UTF8.self) }
}

/// Creates `path` and its parents (mkdir -p).
public func makeDirectories(_ path: String) throws {
    var prefix = path.hasPrefix("/") ? "/" : ""
    for part in path.split(separator: "/") {
        prefix += part + "/"
        if mkdir(prefix, 0o755) != 0 && errno != EEXIST {
            throw LockstepError.usage("cannot create folder \(prefix): \(String(cString: strerror(errno))); choose a writable run.out")
        }
    }
    guard access(path, W_OK) == 0 else {
        throw LockstepError.usage("\(path) is not writable: choose a writable run.out")
    }
}

/// Creates `path` and its missing parents (mkdir -p) and returns the folders it created,
/// outermost first, for `removeDirectories` when what was to go in them fails. `hint` ends the
/// message when a folder cannot be made, e.g. "choose a writable --output".
public func makeMissingDirectories(_ path: String, hint: String) throws -> [String] {
    var created: [String] = []
    var prefix = path.hasPrefix("/") ? "/" : ""
    for part in path.split(separator: "/") {
        prefix += part + "/"
        if mkdir(prefix, 0o755) == 0 {
            created.append(prefix)
        } else if errno != EEXIST {
            let why = String(cString: strerror(errno))
            removeDirectories(created)
            throw LockstepError.usage("cannot create folder \(prefix): \(why); \(hint)")
        }
    }
    var status = stat()
    guard stat(path, &status) == 0, status.st_mode & S_IFMT == S_IFDIR else {
        removeDirectories(created)
        throw LockstepError.usage("\(path) is not a folder: \(hint)")
    }
    guard access(path, W_OK) == 0 else {
        removeDirectories(created)
        throw LockstepError.usage("\(path) is not writable: \(hint)")
    }
    return created
}

/// Removes `folders` (from `makeMissingDirectories`), innermost first; only empty ones go.
public func removeDirectories(_ folders: [String]) {
    for folder in folders.reversed() { rmdir(folder) }
}

/// The byte offset of the first byte that does not begin a well-formed UTF-8 sequence, or nil
/// when all of `bytes` is UTF-8.
public func firstInvalidUTF8Offset(_ bytes: [UInt8]) -> Int? {
    var parser = Unicode.UTF8.ForwardParser()
    var iterator = bytes.makeIterator()
    var offset = 0
    while true {
        switch parser.parseScalar(from: &iterator) {
        case .valid(let scalar): offset += scalar.count
        case .emptyInput: return nil
        case .error: return offset
        }
    }
}

/// A text file that must be UTF-8 (a job file).
public enum UTF8FileRead {
    case text(String)
    /// The file could not be read.
    case unreadable
    /// Not UTF-8: the first bad byte, its offset and its line (from 1).
    case invalid(byte: UInt8, offset: Int, line: Int)
}

/// Reads `path` as strict UTF-8: invalid bytes are reported, never replaced.
public func readUTF8File(_ path: String) -> UTF8FileRead {
    guard let bytes = readFileBytes(path) else { return .unreadable }
    if let offset = firstInvalidUTF8Offset(bytes) {
        let line = 1 + bytes[..<offset].reduce(0) { $0 + ($1 == 10 ? 1 : 0) }
        return .invalid(byte: bytes[offset], offset: offset, line: line)
    }
    return .text(String(decoding: bytes, as: UTF8.self))
}

public func fileExists(_ path: String) -> Bool { access(path, F_OK) == 0 }

/// A text file opened for appending whole lines (metrics.jsonl).
public final class LineWriter {
    private let file: UnsafeMutablePointer<FILE>
    public init(path: String, append: Bool) throws {
        guard let f = fopen(path, append ? "a" : "w") else {
            throw LockstepError.usage("cannot open \(path) for writing: \(String(cString: strerror(errno)))")
        }
        file = f
    }
    /// Why a line could not be written (the first failure; e.g. "No space left on device").
    public private(set) var failure: String?
    deinit { fclose(file) }
    /// Appends one line and flushes it, so a killed run keeps every line it logged. A failure
    /// is kept in `failure` for the caller to act on at a point where every rank can agree.
    public func write(_ line: String) {
        guard fputs(line + "\n", file) >= 0, fflush(file) == 0 else {
            if failure == nil { failure = String(cString: strerror(errno)) }
            return
        }
    }
}

/// Writes `text` to `path` atomically (temporary file + rename).
public func writeTextFileAtomically(_ path: String, _ text: String) throws {
    let temporary = path + ".tmp"
    guard let f = fopen(temporary, "w") else {
        throw LockstepError.usage("cannot write \(path): \(String(cString: strerror(errno)))")
    }
    fputs(text, f)
    let ok = fflush(f) == 0 && fsync(fileno(f)) == 0
    fclose(f)
    guard ok, rename(temporary, path) == 0 else {
        unlink(temporary)
        throw LockstepError.runtime("cannot write \(path): \(String(cString: strerror(errno)))")
    }
}

/// fsync of a file or a folder (after a rename, the folder holds the new name).
public func syncToDisk(_ path: String) throws {
    let fd = open(path, O_RDONLY)
    guard fd >= 0 else { throw LockstepError.runtime("cannot open \(path) to fsync it: \(String(cString: strerror(errno)))") }
    defer { close(fd) }
    guard fsync(fd) == 0 else { throw LockstepError.runtime("fsync of \(path) failed: \(String(cString: strerror(errno)))") }
}
