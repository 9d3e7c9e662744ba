// ZipArchive on archives built byte by byte here: stored and deflated members, the ZIP64 end
// records and extra fields that numpy.savez writes past 4 GiB, and damaged directories and data.
import Testing
import Lockstep
import CZlib

extension FileTests {
    @Suite struct ZipArchiveTests {
        struct Member {
            var name: String
            var data: [UInt8]
            var deflate = false
            var crcOverride: UInt32?
        }

        static func le(_ v: Int, _ bytes: Int) -> [UInt8] { (0..<bytes).map { UInt8(truncatingIfNeeded: v >> (8 * $0)) } }

        static func crc(_ data: [UInt8]) -> UInt32 {
            UInt32(data.withUnsafeBufferPointer { CZlib.crc32(0, $0.baseAddress, UInt32($0.count)) })
        }

        /// Raw deflate (no zlib header), as zip stores it.
        static func deflated(_ data: [UInt8]) -> [UInt8] {
            var stream = z_stream()
            #expect(deflateInit2_(&stream, 6, Z_DEFLATED, -15, 8, Z_DEFAULT_STRATEGY, zlibVersion(), Int32(MemoryLayout<z_stream>.size)) == Z_OK)
            var out = [UInt8](repeating: 0, count: data.count + 1024)
            var input = data
            let produced: Int = input.withUnsafeMutableBufferPointer { i in
                out.withUnsafeMutableBufferPointer { o in
                    stream.next_in = i.baseAddress
                    stream.avail_in = UInt32(i.count)
                    stream.next_out = o.baseAddress
                    stream.avail_out = UInt32(o.count)
                    #expect(deflate(&stream, Z_FINISH) == Z_STREAM_END)
                    return o.count - Int(stream.avail_out)
                }
            }
            deflateEnd(&stream)
            return Array(out[0..<produced])
        }

        /// A zip archive; with `zip64`, every size and offset in the central directory is 0xFFFFFFFF
        /// with the real values in a ZIP64 extra field, and the end records are the ZIP64 ones.
        static func archive(_ members: [Member], zip64: Bool = false) -> [UInt8] {
            var bytes: [UInt8] = [], central: [UInt8] = []
            for m in members {
                let stored = m.deflate ? deflated(m.data) : m.data
                let crc = m.crcOverride ?? crc(m.data)
                let name = Array(m.name.utf8)
                let offset = bytes.count
                bytes += [0x50, 0x4B, 3, 4] + le(20, 2) + le(0, 2) + le(m.deflate ? 8 : 0, 2) + le(0, 4) + le(Int(crc), 4)
                bytes += le(stored.count, 4) + le(m.data.count, 4) + le(name.count, 2) + le(0, 2) + name + stored
                let big = 0xFFFF_FFFF
                let extra = zip64 ? le(1, 2) + le(24, 2) + le(m.data.count, 8) + le(stored.count, 8) + le(offset, 8) : []
                central += [0x50, 0x4B, 1, 2] + le(45, 2) + le(45, 2) + le(0, 2) + le(m.deflate ? 8 : 0, 2) + le(0, 4) + le(Int(crc), 4)
                central += le(zip64 ? big : stored.count, 4) + le(zip64 ? big : m.data.count, 4) + le(name.count, 2) + le(extra.count, 2)
                central += le(0, 2) + le(0, 2) + le(0, 2) + le(0, 4) + le(zip64 ? big : offset, 4) + name + extra
            }
            let cdOffset = bytes.count
            bytes += central
            if zip64 {
                let recordOffset = bytes.count
                bytes += [0x50, 0x4B, 6, 6] + le(44, 8) + le(45, 2) + le(45, 2) + le(0, 4) + le(0, 4)
                bytes += le(members.count, 8) + le(members.count, 8) + le(central.count, 8) + le(cdOffset, 8)
                bytes += [0x50, 0x4B, 6, 7] + le(0, 4) + le(recordOffset, 8) + le(1, 4)
                bytes += [0x50, 0x4B, 5, 6] + le(0, 2) + le(0, 2) + le(0xFFFF, 2) + le(0xFFFF, 2) + le(0xFFFF_FFFF, 4) + le(0xFFFF_FFFF, 4) + le(0, 2)
            } else {
                bytes += [0x50, 0x4B, 5, 6] + le(0, 2) + le(0, 2) + le(members.count, 2) + le(members.count, 2)
                bytes += le(central.count, 4) + le(cdOffset, 4) + le(5, 2) + Array("hello".utf8)       // a comment
            }
            return bytes
        }

        static let text = Array("the quick brown fox jumps over the lazy dog; ".utf8)
        static let members = [
            Member(name: "x.npy", data: (0..<5000).map { UInt8($0 % 251) }),
            Member(name: "y.npy", data: Array(repeating: text, count: 300).flatMap { $0 }, deflate: true),
            Member(name: "empty.npy", data: []),
        ]

        @Test(arguments: [false, true])
        func readsStoredAndDeflatedMembers(zip64: Bool) throws {
            let dir = try TemporaryDirectory()
            try writeBytes(Self.archive(Self.members, zip64: zip64), to: dir.file("a.npz"))
            let zip = try ZipArchive(path: dir.file("a.npz"))
            #expect(zip.entries.map(\.name) == ["x.npy", "y.npy", "empty.npy"])
            #expect(zip.entries.map(\.method) == [0, 8, 0])
            for m in Self.members {
                let entry = try #require(zip.entry(m.name))
                #expect(entry.size == m.data.count)
                #expect(try zip.contents(of: entry) == m.data, "\(m.name)")
            }
            #expect(try #require(zip.entry("y.npy")).compressedSize < Self.members[1].data.count / 10)
        }

        @Test func aDamagedMemberFailsItsCRC() throws {
            let dir = try TemporaryDirectory()
            var bad = Self.members
            bad[1].crcOverride = 12345
            try writeBytes(Self.archive(bad), to: dir.file("a.npz"))
            let zip = try ZipArchive(path: dir.file("a.npz"))
            let error = try #require(throws: LockstepError.self) { try zip.contents(of: zip.entry("y.npy")!) }
            #expect(error.exitCode == 2 && error.message.contains("CRC-32"), "\(error.message)")
            #expect(try zip.contents(of: zip.entry("x.npy")!) == Self.members[0].data)
        }

        @Test func damagedArchivesAreUsageErrors() throws {
            let dir = try TemporaryDirectory()
            let good = Self.archive(Self.members)
            var cases: [(String, [UInt8], String)] = [
                ("not a zip", Array("just text, long enough to hold an end record".utf8), "no end-of-central-directory"),
                ("cut short", Array(good[0..<(good.count - 40)]), "no end-of-central-directory"),
                ("empty", [], "no end-of-central-directory"),
            ]
            // The directory's offset (4 bytes, 16 after the end record's start) pointed past the file.
            var moved = good
            let eocd = good.count - 22 - 5
            moved[eocd + 16] = 0xFF
            moved[eocd + 19] = 0x7F
            cases.append(("moved directory", moved, "past the end"))
            // The compressed data flipped: inflate fails or the CRC does.
            var scrambled = good
            let start = 30 + 5 + Self.members[0].data.count + 30 + 5
            for i in start..<(start + 40) { scrambled[i] ^= 0x5A }
            cases.append(("scrambled", scrambled, "damaged"))
            for (what, bytes, fragment) in cases {
                try writeBytes(bytes, to: dir.file("b.npz"))
                let error = try #require(throws: LockstepError.self, "\(what)") {
                    let zip = try ZipArchive(path: dir.file("b.npz"))
                    _ = try zip.contents(of: try #require(zip.entry("y.npy")))
                }
                #expect(error.exitCode == 2 && error.message.contains(fragment) && !error.message.contains("\n"), "\(what): \(error.message)")
            }
        }
    }
}
