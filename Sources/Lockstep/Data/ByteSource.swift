// Sequential byte streams the importers read from: a whole file, or one member of a zip archive
// (ZipArchive.swift). Reads fill exactly what is asked; running out early is a usage error
// naming the input, so an importer never sizes anything from a short read.

#if canImport(Glibc)
import Glibc
#endif

protocol ByteSource: AnyObject {
    /// The input, for messages: "x.npy", "data.npz:x_train.npy".
    var name: String { get }
    /// Bytes the stream holds from its current position to its end.
    var remaining: Int { get }
    /// Fills `buffer` completely from the stream; the caller never asks past `remaining`.
    func read(into buffer: UnsafeMutableRawBufferPointer) throws
    /// After a value read from the stream was refused: the error to report instead when the
    /// stream itself is damaged (a zip member's CRC), since garbage values are its symptom.
    func damage() -> LockstepError?
}

extension ByteSource {
    func damage() -> LockstepError? { nil }

    func read(_ count: Int) throws -> [UInt8] {
        var bytes = [UInt8](repeating: 0, count: count)
        try bytes.withUnsafeMutableBytes { try read(into: $0) }
        return bytes
    }
}

/// A file opened read-only, read front to back (pread at an explicit offset, so a ZipArchive can
/// share the descriptor with its members).
final class InputFile {
    let path: String
    let fd: Int32
    let size: Int

    init(_ path: String, what: String = "file") throws {
        self.path = path
        fd = open(path, O_RDONLY | O_CLOEXEC)
        guard fd >= 0 else {
            throw LockstepError.usage("\(path): no such readable \(what) (\(String(cString: strerror(errno))))")
        }
        var st = stat()
        guard fstat(fd, &st) == 0, (st.st_mode & S_IFMT) == S_IFREG else {
            close(fd)
            throw LockstepError.usage("\(path) is not a regular file: give the \(what)'s path")
        }
        size = Int(st.st_size)
    }

    deinit { close(fd) }

    /// Fills `buffer` from byte `offset`; a file that is shorter than that (it shrank) is an error.
    func read(at offset: Int, into buffer: UnsafeMutableRawBufferPointer) throws {
        var done = 0
        while done < buffer.count {
            let n = pread(fd, buffer.baseAddress! + done, buffer.count - done, off_t(offset + done))
            if n < 0 && errno == EINTR { continue }
            guard n > 0 else {
                if n < 0 { throw LockstepError.runtime("cannot read \(path): \(String(cString: strerror(errno)))") }
                throw LockstepError.usage("\(path) ends at byte \(offset + done), before the \(buffer.count) bytes wanted at \(offset) (truncated, or changed while being imported)")
            }
            done += n
        }
    }

    func read(at offset: Int, count: Int) throws -> [UInt8] {
        var bytes = [UInt8](repeating: 0, count: count)
        try bytes.withUnsafeMutableBytes { try read(at: offset, into: $0) }
        return bytes
    }
}

/// A whole file as a stream.
final class FileByteSource: ByteSource {
    let file: InputFile
    private var offset = 0
    var name: String { file.path }
    var remaining: Int { file.size - offset }

    init(_ file: InputFile) { self.file = file }

    func read(into buffer: UnsafeMutableRawBufferPointer) throws {
        precondition(buffer.count <= remaining, "read past the end")
        try file.read(at: offset, into: buffer)
        offset += buffer.count
    }
}
