// How every `lockstep import` writes its HDF5 file: to `output.tmp`, flushed, fsynced and renamed,
// so that a failed or interrupted import never leaves a file that looks complete.

#if canImport(Glibc)
import Glibc
#endif

/// Creates the HDF5 file `output` with what `body` writes into it. The file is written as
/// `output.tmp`, finished (a full disk is an error here, not a bad file later), fsynced and
/// renamed; on any error the `.tmp` file and any folder made for it are removed, so a failed
/// import leaves nothing behind and an existing `output` is untouched.
public func writeImportedFile(_ output: String, _ body: (HDF5File) throws -> Void) throws {
    let folder = output.lastIndex(of: "/").map { String(output[..<$0]) } ?? ""
    let created = folder.isEmpty ? [] : try makeMissingDirectories(folder, hint: "choose a writable --output")
    let temporary = output + ".tmp"
    var wrote = false
    do {
        let file = try HDF5File.create(temporary)
        wrote = true
        defer { file.close() }
        try body(file)
        try file.finish()
        try syncToDisk(temporary)
        guard rename(temporary, output) == 0 else {
            throw LockstepError.runtime("cannot rename \(temporary) to \(output): \(String(cString: strerror(errno)))")
        }
        try syncToDisk(folder.isEmpty ? "." : folder)
    } catch {
        if wrote { unlink(temporary) }
        removeDirectories(created)
        throw error
    }
}
