// The header of a NumPy .npy file (format versions 1.0, 2.0 and 3.0): magic, version, length,
// then a Python dict literal {'descr': '<f4', 'fortran_order': False, 'shape': (N, ...), }.
// Everything in it is input: the dict is parsed by a small strict parser (never evaluated), the
// shape's element and byte counts are checked arithmetic, and what Lockstep cannot store
// (bool, complex, strings, objects, structured dtypes, Fortran order) is a one-line usage error.

public struct NPYHeader: Equatable, Sendable {
    public enum Kind: Equatable, Sendable { case signed, unsigned, float }

    public let kind: Kind
    /// Bytes per element.
    public let size: Int
    public let bigEndian: Bool
    public let shape: [Int]
    /// Bytes before the data: magic, version, length field and the dict with its padding.
    public let dataOffset: Int
    /// The descr as written ("<f4"), for messages.
    public let descr: String

    /// Elements and data bytes the header promises (checked when parsed: they fit an Int).
    public var count: Int { IDXImporter.elementCount(shape)! }
    public var byteCount: Int { count * size }
    /// numpy's name for messages: "float32", "uint8".
    public var dtypeName: String {
        switch kind {
        case .signed: return "int\(size * 8)"
        case .unsigned: return "uint\(size * 8)"
        case .float: return "float\(size * 8)"
        }
    }

    static let magic: [UInt8] = [0x93] + Array("NUMPY".utf8)
    /// numpy itself refuses headers over 10000 bytes by default; this bounds what is read.
    public static let maxHeaderBytes = 1 << 20

    /// The header's total size (dataOffset) from its first bytes: 10 for version 1.0, 12 for
    /// 2.0 and 3.0 (`prefix` must hold that many; `prefixLength(version:)` says how many).
    public static func prefixLength(_ first: [UInt8], source: String) throws -> Int {
        guard first.count >= 8, Array(first[0..<6]) == magic else {
            throw LockstepError.usage("\(source) is not a NumPy .npy file (no \\x93NUMPY magic): save it with numpy.save")
        }
        switch first[6] {
        case 1: return 10
        case 2, 3: return 12
        default:
            throw LockstepError.usage("\(source): .npy format version \(first[6]).\(first[7]) is not supported (1.0, 2.0, 3.0 are): save it with numpy.save")
        }
    }

    /// Parses a complete header: `bytes` holds at least the first `dataOffset` bytes of the file.
    /// Returns nil when `bytes` is too short (the caller reads `needed` bytes and tries again).
    public static func parse(_ bytes: [UInt8], source: String) throws -> (header: NPYHeader?, needed: Int) {
        guard bytes.count >= 8 else { return (nil, 8) }
        let prefix = try prefixLength(bytes, source: source)
        guard bytes.count >= prefix else { return (nil, prefix) }
        var length = 0
        for i in (8..<prefix).reversed() { length = length << 8 | Int(bytes[i]) }   // little-endian u16 or u32
        guard length <= maxHeaderBytes else {
            throw LockstepError.usage("\(source): the .npy header claims \(length) bytes, more than any real header: the file is corrupt; save it again with numpy.save")
        }
        let total = prefix + length
        guard bytes.count >= total else { return (nil, total) }
        let text = Array(bytes[prefix..<total])
        var parser = DictParser(text, source: source)
        let dict = try parser.parse()
        return (try NPYHeader(dict, dataOffset: total, source: source), total)
    }

    init(_ dict: [String: DictParser.Value], dataOffset: Int, source: String) throws {
        guard case .string(let descr)? = dict["descr"] else {
            if dict["descr"] != nil {
                throw LockstepError.usage("\(source) holds a structured (record) array: save each field as its own array")
            }
            throw LockstepError.usage("\(source): the .npy header has no 'descr': the file is corrupt; save it again with numpy.save")
        }
        guard case .bool(let fortran)? = dict["fortran_order"] else {
            throw LockstepError.usage("\(source): the .npy header has no 'fortran_order': the file is corrupt; save it again with numpy.save")
        }
        guard case .tuple(let shape)? = dict["shape"] else {
            throw LockstepError.usage("\(source): the .npy header has no 'shape' tuple: the file is corrupt; save it again with numpy.save")
        }
        self.descr = descr
        self.dataOffset = dataOffset
        self.shape = shape
        let chars = Array(descr.utf8)
        guard chars.count >= 3, let size = Int(String(decoding: chars[2...], as: UTF8.self)) else {
            throw LockstepError.usage("\(source): dtype '\(descr)' is not supported: save it as float32, float64, uint8 or another integer type")
        }
        switch chars[0] {
        case UInt8(ascii: "<"), UInt8(ascii: "|"), UInt8(ascii: "="): bigEndian = false
        case UInt8(ascii: ">"): bigEndian = true
        default: throw LockstepError.usage("\(source): dtype '\(descr)' is not supported: save it as float32, float64, uint8 or another integer type")
        }
        self.size = size
        switch (chars[1], size) {
        case (UInt8(ascii: "i"), 1), (UInt8(ascii: "i"), 2), (UInt8(ascii: "i"), 4), (UInt8(ascii: "i"), 8): kind = .signed
        case (UInt8(ascii: "u"), 1), (UInt8(ascii: "u"), 2), (UInt8(ascii: "u"), 4), (UInt8(ascii: "u"), 8): kind = .unsigned
        case (UInt8(ascii: "f"), 2), (UInt8(ascii: "f"), 4), (UInt8(ascii: "f"), 8): kind = .float
        case (UInt8(ascii: "b"), 1):
            throw LockstepError.usage("\(source) holds booleans ('\(descr)'): save x.astype(numpy.uint8) instead")
        default:
            throw LockstepError.usage("\(source): dtype '\(descr)' is not supported: save it as float32, float64, uint8 or another integer type (x.astype(numpy.float32))")
        }
        guard !shape.isEmpty else {
            throw LockstepError.usage("\(source) holds a scalar (shape ()): give an array of rows, shape (N, ...)")
        }
        // One-dimensional arrays are the same in either order; anything else would be transposed.
        guard !fortran || shape.filter({ $0 != 1 }).count <= 1 else {
            throw LockstepError.usage("\(source) is stored in Fortran order: save numpy.ascontiguousarray(x) instead")
        }
        guard let count = IDXImporter.elementCount(shape), case (_, false) = count.multipliedReportingOverflow(by: size) else {
            throw LockstepError.usage("\(source): the .npy header claims shape \(shape), more bytes than any file can hold: the file is corrupt")
        }
    }
}

/// A strict parser for the Python literals a .npy header uses: a dict of string keys to strings,
/// True/False, and tuples of non-negative integers. A list (a structured dtype's descr) parses as
/// `.other`, so that the caller can say what it is.
struct DictParser {
    enum Value: Equatable {
        case string(String)
        case bool(Bool)
        case tuple([Int])
        case other
    }

    private let b: [UInt8]
    private var i = 0
    private let source: String

    init(_ bytes: [UInt8], source: String) {
        b = bytes
        self.source = source
    }

    private func corrupt(_ why: String) -> LockstepError {
        .usage("\(source): unreadable .npy header (\(why)): the file is corrupt; save it again with numpy.save")
    }

    private mutating func skipSpace() {
        while i < b.count, [32, 9, 10, 13].contains(b[i]) { i += 1 }
    }

    private mutating func expect(_ c: Character) throws {
        skipSpace()
        guard i < b.count, b[i] == c.asciiValue! else { throw corrupt("expected '\(c)' at byte \(i)") }
        i += 1
    }

    private mutating func peek(_ c: Character) -> Bool {
        skipSpace()
        return i < b.count && b[i] == c.asciiValue!
    }

    mutating func parse() throws -> [String: Value] {
        var dict: [String: Value] = [:]
        try expect("{")
        while !peek("}") {
            let key = try string()
            try expect(":")
            dict[key] = try value()
            if !peek("}") { try expect(",") }
        }
        try expect("}")
        return dict
    }

    private mutating func string() throws -> String {
        skipSpace()
        guard i < b.count, b[i] == 39 || b[i] == 34 else { throw corrupt("expected a string at byte \(i)") }
        let quote = b[i]
        i += 1
        let start = i
        while i < b.count, b[i] != quote {
            guard b[i] != 92 else { throw corrupt("escapes in strings") }       // no '\' in real headers
            i += 1
        }
        guard i < b.count else { throw corrupt("an unterminated string") }
        defer { i += 1 }
        return String(decoding: b[start..<i], as: UTF8.self)
    }

    private mutating func value() throws -> Value {
        skipSpace()
        guard i < b.count else { throw corrupt("a missing value") }
        switch b[i] {
        case 39, 34: return .string(try string())
        case UInt8(ascii: "("):
            i += 1
            var items: [Int] = []
            while !peek(")") {
                items.append(try integer())
                if !peek(")") { try expect(",") }
            }
            try expect(")")
            return .tuple(items)
        case UInt8(ascii: "["):
            // Skip a list, nested or not, as a whole: only its presence matters.
            var depth = 0
            repeat {
                guard i < b.count else { throw corrupt("an unterminated list") }
                if b[i] == UInt8(ascii: "[") { depth += 1 }
                if b[i] == UInt8(ascii: "]") { depth -= 1 }
                i += 1
            } while depth > 0
            return .other
        default:
            for (word, v) in [("True", true), ("False", false)] where b[i...].starts(with: word.utf8) {
                i += word.utf8.count
                return .bool(v)
            }
            throw corrupt("an unexpected value at byte \(i)")
        }
    }

    private mutating func integer() throws -> Int {
        skipSpace()
        var value = 0
        var digits = 0
        while i < b.count, b[i] >= 48, b[i] <= 57 {
            let (t, o1) = value.multipliedReportingOverflow(by: 10)
            let (s, o2) = t.addingReportingOverflow(Int(b[i] - 48))
            guard !o1 && !o2 else { throw corrupt("a dimension past any real array's") }
            value = s
            digits += 1
            i += 1
        }
        guard digits > 0 else { throw corrupt("a shape entry that is not a non-negative integer at byte \(i)") }
        if i < b.count, b[i] == UInt8(ascii: "L") { i += 1 }       // Python 2's long suffix
        return value
    }
}
