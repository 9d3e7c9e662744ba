// Reads a zip archive the way `lockstep import npz` needs: the central directory (ZIP64 too:
// arrays past 4 GiB), then one member at a time as a stream, stored (numpy.savez) or deflated
// (numpy.savez_compressed) through zlib, its CRC-32 checked at the end. Nothing is extracted and
// the archive is never held in memory. Every count, size and offset is input: checked arithmetic,
// and each range is held against the file's size before it is read.

import CZlib

public final class ZipArchive {
    public struct Entry: Equatable, Sendable {
        public let name: String
        /// 0 stored, 8 deflated.
        public let method: UInt16
        public let flags: UInt16
        public let crc32: UInt32
        public let compressedSize: Int
        public let size: Int
        public let localHeaderOffset: Int
    }

    public let path: String
    public let entries: [Entry]
    let file: InputFile

    public init(path: String) throws {
        self.path = path
        file = try InputFile(path, what: "archive")
        entries = try Self.directory(file)
    }

    public func entry(_ name: String) -> Entry? { entries.first { $0.name == name } }

    private static func corrupt(_ path: String, _ why: String) -> LockstepError {
        .usage("\(path) is not a readable zip archive (\(why)): give an .npz written by numpy.savez or numpy.savez_compressed")
    }

    static func u16(_ b: [UInt8], _ o: Int) -> Int { Int(b[o]) | Int(b[o + 1]) << 8 }
    static func u32(_ b: [UInt8], _ o: Int) -> Int { u16(b, o) | u16(b, o + 2) << 16 }
    /// A little-endian u64, or nil past Int.max.
    static func u64(_ b: [UInt8], _ o: Int) -> Int? {
        let v = UInt64(u32(b, o)) | UInt64(u32(b, o + 4)) << 32
        return Int(exactly: v)
    }

    /// `count` bytes at `offset`, after checking they lie inside the file.
    private static func bytes(_ file: InputFile, at offset: Int, _ count: Int, _ what: String) throws -> [UInt8] {
        guard offset >= 0, count >= 0, case (let end, false) = offset.addingReportingOverflow(count), end <= file.size else {
            throw corrupt(file.path, "\(what) at byte \(offset) lies past the end of the \(file.size)-byte file")
        }
        return try file.read(at: offset, count: count)
    }

    /// The central directory's entries: found from the end-of-central-directory record (the last
    /// 22 bytes plus a comment of up to 65535), through the ZIP64 records when it points there.
    static func directory(_ file: InputFile) throws -> [Entry] {
        let path = file.path
        let tailSize = min(file.size, 22 + 0xFFFF)
        let tail = try bytes(file, at: file.size - tailSize, tailSize, "the end record")
        var eocd: Int?
        if tailSize >= 22 {
            for o in stride(from: tailSize - 22, through: 0, by: -1)
            where tail[o] == 0x50 && tail[o + 1] == 0x4B && tail[o + 2] == 5 && tail[o + 3] == 6 && o + 22 + u16(tail, o + 20) == tailSize {
                eocd = o
                break
            }
        }
        guard let e = eocd else { throw corrupt(path, "no end-of-central-directory record") }
        let eocdOffset = file.size - tailSize + e
        guard u16(tail, e + 4) == 0, u16(tail, e + 6) == 0 else { throw corrupt(path, "a multi-part archive") }
        var count = u16(tail, e + 10)
        var cdSize = u32(tail, e + 12)
        var cdOffset = u32(tail, e + 16)
        // ZIP64: a locator right before the end record points at the ZIP64 end record.
        if eocdOffset >= 20 {
            let locator = try bytes(file, at: eocdOffset - 20, 20, "the ZIP64 locator")
            if locator.starts(with: [0x50, 0x4B, 6, 7]) {
                guard let at = u64(locator, 8) else { throw corrupt(path, "a ZIP64 locator past any file's size") }
                let record = try bytes(file, at: at, 56, "the ZIP64 end record")
                guard record.starts(with: [0x50, 0x4B, 6, 6]) else { throw corrupt(path, "no ZIP64 end record where its locator points") }
                guard let n = u64(record, 32), let s = u64(record, 40), let o = u64(record, 48) else {
                    throw corrupt(path, "ZIP64 sizes past any file's")
                }
                (count, cdSize, cdOffset) = (n, s, o)
            }
        }
        guard count <= cdSize / 46 else { throw corrupt(path, "\(count) entries cannot fit a \(cdSize)-byte central directory") }
        let cd = try bytes(file, at: cdOffset, cdSize, "the central directory")
        var entries: [Entry] = []
        var o = 0
        for k in 0..<count {
            guard o + 46 <= cd.count, cd[o..<(o + 4)].elementsEqual([0x50, 0x4B, 1, 2]) else {
                throw corrupt(path, "central directory entry \(k + 1) of \(count) is damaged")
            }
            let nameLength = u16(cd, o + 28), extraLength = u16(cd, o + 30), commentLength = u16(cd, o + 32)
            let next = o + 46 + nameLength + extraLength + commentLength
            guard next <= cd.count else { throw corrupt(path, "central directory entry \(k + 1) runs past the directory") }
            let name = String(decoding: cd[(o + 46)..<(o + 46 + nameLength)], as: UTF8.self)
            var size = u32(cd, o + 24), compressed = u32(cd, o + 20), local = u32(cd, o + 42)
            // ZIP64 extra field: the 64-bit values of exactly the fields set to 0xFFFFFFFF, in this order.
            if size == 0xFFFF_FFFF || compressed == 0xFFFF_FFFF || local == 0xFFFF_FFFF {
                var x = o + 46 + nameLength
                let end = x + extraLength
                var found = false
                while x + 4 <= end {
                    let id = u16(cd, x), length = u16(cd, x + 2)
                    guard x + 4 + length <= end else { break }
                    if id == 1 {
                        var f = x + 4
                        func take() throws -> Int {
                            guard f + 8 <= x + 4 + length, let v = u64(cd, f) else { throw corrupt(path, "a short ZIP64 field for \(name)") }
                            f += 8
                            return v
                        }
                        if size == 0xFFFF_FFFF { size = try take() }
                        if compressed == 0xFFFF_FFFF { compressed = try take() }
                        if local == 0xFFFF_FFFF { local = try take() }
                        found = true
                        break
                    }
                    x += 4 + length
                }
                guard found else { throw corrupt(path, "\(name) lacks its ZIP64 sizes") }
            }
            entries.append(Entry(name: name, method: UInt16(u16(cd, o + 10)), flags: UInt16(u16(cd, o + 8)),
                                 crc32: UInt32(u32(cd, o + 16)), compressedSize: compressed, size: size, localHeaderOffset: local))
            o = next
        }
        return entries
    }

    /// A stream of `entry`'s uncompressed bytes.
    func open(_ entry: Entry) throws -> ZipMemberSource {
        let label = "\(path):\(entry.name)"
        guard entry.flags & 1 == 0 else { throw LockstepError.usage("\(label) is encrypted: give an unencrypted archive") }
        guard entry.method == 0 || entry.method == 8 else {
            throw LockstepError.usage("\(label) is compressed with zip method \(entry.method); only stored and deflated members (numpy.savez, numpy.savez_compressed) are read")
        }
        let local = try Self.bytes(file, at: entry.localHeaderOffset, 30, "\(entry.name)'s local header")
        guard local.starts(with: [0x50, 0x4B, 3, 4]) else { throw Self.corrupt(path, "no local header for \(entry.name)") }
        let start = entry.localHeaderOffset + 30 + Self.u16(local, 26) + Self.u16(local, 28)    // < Int.max: offset ≤ file size
        guard case (let end, false) = start.addingReportingOverflow(entry.compressedSize), end <= file.size else {
            throw Self.corrupt(path, "\(entry.name)'s data runs past the end of the file (truncated?)")
        }
        if entry.method == 0 && entry.compressedSize != entry.size {
            throw Self.corrupt(path, "stored member \(entry.name) has two sizes")
        }
        return try ZipMemberSource(file: file, entry: entry, start: start, name: label)
    }

    /// A whole member's bytes (small members; tests).
    public func contents(of entry: Entry) throws -> [UInt8] {
        let member = try open(entry)
        let bytes = try member.read(entry.size)
        try member.finish()
        return bytes
    }
}

/// One member's uncompressed bytes, read front to back. `finish` (after the last byte) checks the
/// CRC-32 the directory recorded, so a damaged archive is caught even when every size was right.
final class ZipMemberSource: ByteSource {
    let name: String
    private let file: InputFile
    private let entry: ZipArchive.Entry
    private var position: Int                  // next compressed byte in the file
    private var compressedLeft: Int
    private(set) var remaining: Int
    private var crc: UInt = 0
    private var stream = z_stream()
    private var inflating = false
    private var input = [UInt8](repeating: 0, count: 1 << 18)
    private var inputNext = 0, inputEnd = 0

    init(file: InputFile, entry: ZipArchive.Entry, start: Int, name: String) throws {
        self.file = file
        self.entry = entry
        self.name = name
        position = start
        compressedLeft = entry.compressedSize
        remaining = entry.size
        crc = CZlib.crc32(0, nil, 0)
        if entry.method == 8 {
            // Raw deflate (negative window bits): zip members carry no zlib header.
            guard inflateInit2_(&stream, -15, zlibVersion(), Int32(MemoryLayout<z_stream>.size)) == Z_OK else {
                throw LockstepError.runtime("\(name): zlib cannot start inflating")
            }
            inflating = true
        }
    }

    deinit { if inflating { inflateEnd(&stream) } }

    private func damaged() -> LockstepError {
        .usage("\(name): the compressed data is damaged: write the archive again (numpy.savez_compressed)")
    }

    func read(into buffer: UnsafeMutableRawBufferPointer) throws {
        precondition(buffer.count <= remaining, "read past the member's end")
        guard buffer.count > 0 else { return }
        if entry.method == 0 {
            try file.read(at: position, into: buffer)
            position += buffer.count
            compressedLeft -= buffer.count
        } else {
            var produced = 0
            while produced < buffer.count {
                if inputNext == inputEnd {
                    guard compressedLeft > 0 else { throw damaged() }
                    let n = min(compressedLeft, input.count)
                    try input.withUnsafeMutableBytes { try file.read(at: position, into: UnsafeMutableRawBufferPointer(rebasing: $0[0..<n])) }
                    position += n
                    compressedLeft -= n
                    (inputNext, inputEnd) = (0, n)
                }
                // Pointers into `input` are made afresh for each call; zlib's position is kept as indices.
                let status: Int32 = input.withUnsafeMutableBufferPointer { inBuf in
                    stream.next_in = inBuf.baseAddress! + inputNext
                    stream.avail_in = UInt32(inputEnd - inputNext)
                    stream.next_out = (buffer.baseAddress! + produced).assumingMemoryBound(to: Bytef.self)
                    stream.avail_out = UInt32(min(buffer.count - produced, 1 << 30))
                    let before = stream.avail_out
                    let s = inflate(&stream, Z_NO_FLUSH)
                    produced += Int(before - stream.avail_out)
                    inputNext = inputEnd - Int(stream.avail_in)
                    return s
                }
                if status == Z_STREAM_END {
                    guard produced == buffer.count else { throw damaged() }
                } else if status != Z_OK && !(status == Z_BUF_ERROR && inputNext == inputEnd) {
                    throw damaged()
                }
            }
        }
        var done = 0
        while done < buffer.count {
            let n = min(buffer.count - done, 1 << 30)
            crc = CZlib.crc32(crc, (buffer.baseAddress! + done).assumingMemoryBound(to: Bytef.self), UInt32(n))
            done += n
        }
        remaining -= buffer.count
    }

    /// Reads what is left and checks the CRC-32: the damage error, or nil for an intact member.
    func damage() -> LockstepError? {
        var scratch = [UInt8](repeating: 0, count: 1 << 20)
        do {
            while remaining > 0 {
                let n = min(remaining, scratch.count)
                try scratch.withUnsafeMutableBytes { try read(into: UnsafeMutableRawBufferPointer(rebasing: $0[0..<n])) }
            }
            try finish()
            return nil
        } catch let error as LockstepError {
            return error
        } catch {
            return nil
        }
    }

    /// Checks the CRC-32 once every byte was read.
    func finish() throws {
        precondition(remaining == 0, "finish before the member's end")
        guard UInt32(truncatingIfNeeded: crc) == entry.crc32 else {
            throw LockstepError.usage("\(name): CRC-32 mismatch, the archive is damaged: write it again")
        }
    }
}
