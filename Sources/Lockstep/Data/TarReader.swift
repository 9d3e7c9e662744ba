// Reads a gzip-compressed tar archive (.tar.gz) front to back as a stream, member by member,
// through zlib: nothing is extracted to disk and only a header block and a skip buffer are held.
// Every size in a header is input, so it is parsed with checked arithmetic; a damaged archive is
// a usage error naming the file, never a trap.

import CZlib

final class TarReader {
    /// A regular file in the archive; its data is what `read` returns until the next `next()`.
    struct Member {
        let name: String
        let size: Int
    }

    let path: String
    private let gz: gzFile
    /// Unread data bytes of the current member, and the zero padding that follows them (tar
    /// stores each member in whole 512-byte blocks).
    private var remaining = 0
    private var padding = 0
    private var ended = false
    /// Bytes of the decompressed stream consumed so far: where a bad header is, for the message.
    private var offset = 0
    private var block = [UInt8](repeating: 0, count: 512)
    private var scratch = [UInt8](repeating: 0, count: 1 << 16)

    init(path: String) throws {
        self.path = path
        guard let gz = gzopen(path, "rb") else {
            throw LockstepError.usage("\(path): no such readable file: give the archive's path")
        }
        self.gz = gz
        gzbuffer(gz, 1 << 17)
        // zlib reads a file that is not gzip as it is; a .tar.gz is asked for, so say what this is.
        // (Thrown once every property is set, so deinit runs and closes the file.)
        if gzdirect(gz) != 0 {
            throw LockstepError.usage("\(path): not a gzip file: give the .tar.gz archive as downloaded, not an extracted or re-packed copy")
        }
    }

    deinit { gzclose(gz) }

    /// The next regular file, skipping what is left of the current one and any directory, link or
    /// extended header; nil at the end of the archive.
    func next() throws -> Member? {
        var longName: String?
        while !ended {
            try skip(remaining + padding)
            remaining = 0
            padding = 0
            let at = offset
            guard try fill(&block, upTo: 512) == 512 else {
                // A stream that ends cleanly between members is a complete archive without the
                // end blocks; one that ends inside a header is not.
                if offset == at {
                    if at == 0 { throw LockstepError.usage("\(path): the gzip stream is empty: give the .tar.gz archive as downloaded") }
                    ended = true
                    return nil
                }
                throw truncated("inside a tar header at byte \(at)")
            }
            if block.allSatisfy({ $0 == 0 }) {
                ended = true           // the end-of-archive block; what follows is padding
                return nil
            }
            let header = try Header(block, path: path, at: at)
            remaining = header.size
            padding = (512 - header.size % 512) % 512
            switch header.type {
            case 0, UInt8(ascii: "0"), UInt8(ascii: "7"):       // regular (and "contiguous") files
                defer { longName = nil }
                return Member(name: normalized(longName ?? header.name), size: header.size)
            case UInt8(ascii: "L"):                           // GNU long name of the next member
                guard header.size <= 1 << 16 else {
                    throw LockstepError.usage("\(path): a GNU long-name entry of \(header.size) bytes at byte \(at): the archive is corrupt; download it again")
                }
                var name = [UInt8](repeating: 0, count: header.size)
                try read(into: &name)
                longName = String(decoding: name.prefix { $0 != 0 }, as: UTF8.self)
            default:
                longName = nil         // a long name belongs to the entry right after it only
            }
        }
        return nil
    }

    /// Fills the first `count` bytes of `buffer` (all of it by default) from the current member's
    /// data; asking for more than it has left is a programmer error (reads are sized from
    /// `Member.size`).
    func read(into buffer: inout [UInt8], count: Int? = nil) throws {
        let count = count ?? buffer.count
        precondition(count <= remaining && count <= buffer.count, "read past the member's end")
        guard try fill(&buffer, upTo: count) == count else { throw truncated("inside a member's data") }
        remaining -= count
    }

    /// Reads to the end of the stream, so that zlib checks the gzip trailer (its CRC and length)
    /// and a cut-off or corrupt file is reported even when the members were all complete.
    func finish() throws {
        while try fill(&scratch, upTo: scratch.count) == scratch.count {}
    }

    /// Reads up to `count` bytes into the start of `buffer`, fewer only at the end of the stream;
    /// a stream that ends before its gzip trailer, or corrupt compressed data, is an error.
    private func fill(_ buffer: inout [UInt8], upTo count: Int) throws -> Int {
        var got = 0
        while got < count {
            let n = buffer.withUnsafeMutableBytes { gzread(gz, $0.baseAddress! + got, UInt32(count - got)) }
            if n < 0 {
                throw LockstepError.usage("\(path): corrupt gzip data (\(zlibError())): download the archive again")
            }
            if n == 0 {
                var code: Int32 = 0
                _ = gzerror(gz, &code)
                // Z_BUF_ERROR at the end: the input stopped in the middle of a gzip stream.
                if code == Z_BUF_ERROR { throw truncated("in the middle of the gzip stream") }
                if code != Z_OK { throw LockstepError.usage("\(path): corrupt gzip data (\(zlibError())): download the archive again") }
                break
            }
            got += Int(n)
        }
        offset += got
        return got
    }

    private func skip(_ count: Int) throws {
        var left = count
        while left > 0 {
            let n = min(left, scratch.count)
            guard try fill(&scratch, upTo: n) == n else { throw truncated("inside a member's data") }
            left -= n
        }
    }

    private func zlibError() -> String {
        var code: Int32 = 0
        return gzerror(gz, &code).map { String(cString: $0) } ?? "zlib error \(code)"
    }

    private func truncated(_ place: String) -> LockstepError {
        .usage("\(path): the archive ends \(place) (truncated download?): download it again")
    }

    /// "./a/b" and "a/b" name the same member.
    private func normalized(_ name: String) -> String {
        name.hasPrefix("./") ? String(name.dropFirst(2)) : name
    }
}

/// The fields of a ustar (or older v7/GNU) header block that a reader of regular files needs.
private struct Header {
    let name: String
    let size: Int
    let type: UInt8

    init(_ b: [UInt8], path: String, at offset: Int) throws {
        // The checksum is what tells a tar header from anything else: the sum of the block's bytes
        // with its own 8-byte field counted as spaces.
        let stored = Self.octal(b[148..<156])
        let sum = b.indices.reduce(0) { $0 + ((148..<156).contains($1) ? 32 : Int(b[$1])) }
        guard stored == sum else {
            throw LockstepError.usage("\(path): not a tar archive (bad header checksum at byte \(offset) of the decompressed data): give the .tar.gz archive as downloaded")
        }
        guard let size = Self.size(b[124..<136]) else {
            throw LockstepError.usage("\(path): unreadable member size in the tar header at byte \(offset): the archive is corrupt; download it again")
        }
        self.size = size
        type = b[156]
        var name = Self.string(b[0..<100])
        // ustar splits long paths into a prefix and a name.
        if b[257..<262].elementsEqual("ustar".utf8) {
            let prefix = Self.string(b[345..<500])
            if !prefix.isEmpty { name = prefix + "/" + name }
        }
        self.name = name
    }

    private static func string(_ field: ArraySlice<UInt8>) -> String {
        String(decoding: field.prefix { $0 != 0 }, as: UTF8.self)
    }

    /// An octal field (leading spaces, digits, then NUL or space); nil when it has no digits, a
    /// stray character or overflows.
    static func octal(_ field: ArraySlice<UInt8>) -> Int? {
        var value = 0
        var digits = 0
        for c in field.drop(while: { $0 == 32 }) {
            if c == 0 || c == 32 { break }
            guard c >= 48, c <= 55 else { return nil }
            let (times8, o1) = value.multipliedReportingOverflow(by: 8)
            let (next, o2) = times8.addingReportingOverflow(Int(c - 48))
            if o1 || o2 { return nil }
            value = next
            digits += 1
        }
        return digits > 0 ? value : nil
    }

    /// The size field: octal, or GNU's base-256 (high bit of the first byte set) for sizes that
    /// do not fit 11 octal digits. nil when negative or past what the buffer can hold.
    static func size(_ field: ArraySlice<UInt8>) -> Int? {
        guard let first = field.first, first & 0x80 != 0 else { return octal(field) }
        guard first & 0x40 == 0 else { return nil }                  // negative
        var value = Int(first & 0x3F)
        for c in field.dropFirst() {
            let (shifted, o1) = value.multipliedReportingOverflow(by: 256)
            let (next, o2) = shifted.addingReportingOverflow(Int(c))
            if o1 || o2 { return nil }
            value = next
        }
        // Rounding up to whole blocks must still fit an Int.
        return value <= Int.max - 511 ? value : nil
    }
}
