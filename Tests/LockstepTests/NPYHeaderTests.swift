// NPYHeader on crafted bytes (versions 1.0, 2.0, 3.0, every dtype it takes and the ones it
// refuses, damaged headers) and TestFraction's exact ⌈F·N⌉.
import Testing
import Lockstep

@Suite struct NPYHeaderTests {
    /// A .npy header as numpy writes it: magic, version, little-endian length, dict padded with
    /// spaces and a newline so that the data starts at a multiple of 64.
    static func header(_ dict: String, major: UInt8 = 1) -> [UInt8] {
        let prefix = major == 1 ? 10 : 12
        var text = Array(dict.utf8)
        let total = (prefix + text.count + 1 + 63) / 64 * 64
        text += [UInt8](repeating: 32, count: total - prefix - text.count - 1) + [10]
        var bytes: [UInt8] = [0x93] + Array("NUMPY".utf8) + [major, 0]
        let n = text.count
        bytes += major == 1 ? [UInt8(n & 0xFF), UInt8(n >> 8)] : [UInt8(n & 0xFF), UInt8(n >> 8 & 0xFF), UInt8(n >> 16 & 0xFF), UInt8(n >> 24)]
        return bytes + text
    }

    static func parse(_ bytes: [UInt8]) throws -> NPYHeader {
        let (header, needed) = try NPYHeader.parse(bytes, source: "a.npy")
        return try #require(header, "needs \(needed) bytes")
    }

    @Test func parsesVersionsOneTwoThree() throws {
        for major: UInt8 in [1, 2, 3] {
            let bytes = Self.header("{'descr': '<f4', 'fortran_order': False, 'shape': (3, 4), }", major: major)
            let h = try Self.parse(bytes)
            #expect(h.shape == [3, 4] && h.kind == .float && h.size == 4 && !h.bigEndian)
            #expect(h.dataOffset == bytes.count && h.dataOffset % 64 == 0)
            #expect(h.byteCount == 48 && h.dtypeName == "float32")
        }
    }

    @Test func asksForMoreBytesUntilTheHeaderIsComplete() throws {
        let bytes = Self.header("{'descr': '|u1', 'fortran_order': False, 'shape': (7,), }")
        #expect(try NPYHeader.parse(Array(bytes[0..<5]), source: "a.npy").header == nil)
        let (none, needed) = try NPYHeader.parse(Array(bytes[0..<10]), source: "a.npy")
        #expect(none == nil && needed == bytes.count)
        let h = try Self.parse(bytes)
        #expect(h.shape == [7] && h.kind == .unsigned && h.size == 1)
    }

    @Test(arguments: [("<i1", NPYHeader.Kind.signed, 1), ("<i2", .signed, 2), ("<i4", .signed, 4), ("<i8", .signed, 8),
                      ("|u1", .unsigned, 1), ("<u2", .unsigned, 2), ("<u4", .unsigned, 4), ("<u8", .unsigned, 8),
                      ("<f2", .float, 2), ("<f8", .float, 8), (">f8", .float, 8), ("=i4", .signed, 4)])
    func takesNumericTypes(_ descr: String, _ kind: NPYHeader.Kind, _ size: Int) throws {
        let h = try Self.parse(Self.header("{'descr': '\(descr)', 'fortran_order': False, 'shape': (2, 1), }"))
        #expect(h.kind == kind && h.size == size && h.bigEndian == descr.hasPrefix(">"))
    }

    @Test func keyOrderSpacingAndEmptyShapesParse() throws {
        let h = try Self.parse(Self.header("{\"shape\":(0,3),\"fortran_order\":False,\"descr\":\"<f4\"}"))
        #expect(h.shape == [0, 3])
        // Fortran order does not matter for one dimension (numpy writes it either way).
        #expect(try Self.parse(Self.header("{'descr': '<f4', 'fortran_order': True, 'shape': (5,), }")).shape == [5])
        #expect(try Self.parse(Self.header("{'descr': '<i8', 'fortran_order': False, 'shape': (5L, 2L), }")).shape == [5, 2])
    }

    @Test(arguments: [
        ("{'descr': '|b1', 'fortran_order': False, 'shape': (3,), }", "booleans"),
        ("{'descr': '<c8', 'fortran_order': False, 'shape': (3,), }", "not supported"),
        ("{'descr': '<U5', 'fortran_order': False, 'shape': (3,), }", "not supported"),
        ("{'descr': '|O', 'fortran_order': False, 'shape': (3,), }", "not supported"),
        ("{'descr': [('a', '<f4'), ('b', '<i8')], 'fortran_order': False, 'shape': (3,), }", "structured"),
        ("{'descr': '<f4', 'fortran_order': True, 'shape': (3, 2), }", "Fortran order"),
        ("{'descr': '<f4', 'fortran_order': False, 'shape': (), }", "scalar"),
        ("{'descr': '<f4', 'fortran_order': False, 'shape': (99999999999, 99999999999), }", "more bytes"),
        ("{'descr': '<f4', 'fortran_order': False, 'shape': (999999999999999999999,), }", "corrupt"),
        ("{'descr': '<f4', 'fortran_order': False}", "no 'shape'"),
        ("{'descr': '<f4', 'fortran_order': False, 'shape': (3, -1), }", "corrupt"),
        ("{'descr': '<f4', 'fortran_order': Maybe, 'shape': (3,), }", "corrupt"),
        ("{'descr': '<f4' 'fortran_order': False, 'shape': (3,), }", "corrupt"),
        ("['descr']", "corrupt"),
    ])
    func refusesWhatItCannotStore(_ dict: String, _ fragment: String) throws {
        let error = try #require(throws: LockstepError.self) { try NPYHeader.parse(Self.header(dict), source: "a.npy") }
        #expect(error.exitCode == 2)
        #expect(error.message.contains(fragment), "\(error.message)")
        #expect(error.message.hasPrefix("a.npy") && !error.message.contains("\n"))
    }

    @Test func refusesBadMagicVersionAndHugeLengths() throws {
        var bytes = Self.header("{'descr': '<f4', 'fortran_order': False, 'shape': (3,), }")
        bytes[1] = UInt8(ascii: "X")
        #expect(throws: LockstepError.usage("a.npy is not a NumPy .npy file (no \\x93NUMPY magic): save it with numpy.save")) {
            try NPYHeader.parse(bytes, source: "a.npy")
        }
        var v4 = Self.header("{'descr': '<f4', 'fortran_order': False, 'shape': (3,), }")
        v4[6] = 4
        let e = try #require(throws: LockstepError.self) { try NPYHeader.parse(v4, source: "a.npy") }
        #expect(e.message.contains("version 4.0"))
        let huge: [UInt8] = [0x93] + Array("NUMPY".utf8) + [2, 0, 0xFF, 0xFF, 0xFF, 0x7F]
        let h = try #require(throws: LockstepError.self) { try NPYHeader.parse(huge, source: "a.npy") }
        #expect(h.message.contains("corrupt"))
    }

    // MARK: TestFraction

    @Test func testFractionIsTheExactCeiling() throws {
        #expect(try TestFraction("0.1").testRows(of: 30) == 3)        // 0.1 × 30 in binary is 3.0000000000000004
        #expect(try TestFraction("0.1").testRows(of: 31) == 4)
        #expect(try TestFraction(".25").testRows(of: 10) == 3)
        #expect(try TestFraction("0.5").testRows(of: 1) == 1)
        #expect(try TestFraction("0.2").split(10, what: "x") == (8, 2))
        #expect(try TestFraction("0.000000000000000001").testRows(of: Int.max) == 10)
        #expect(try TestFraction("0.999999999999999999").testRows(of: Int.max) == Int.max - 9)
        for bad in ["0", "1", "1.0", "0.", "-0.1", "0.1e0", "abc", "0.0", "0.1234567890123456789"] {
            #expect(throws: LockstepError.self, "\(bad)") { try TestFraction(bad) }
        }
        let error = try #require(throws: LockstepError.self) { try TestFraction("0.5").split(1, what: "x.npy") }
        #expect(error.message.contains("no training rows"))
    }
}
