// Reads a CSV file record by record through a fixed-size buffer, so any file size streams in
// bounded memory (a record's own bytes, plus 1 MiB). RFC 4180 as Python's csv module writes it:
// a one-byte delimiter, fields in double quotes may hold delimiters, newlines and "" for a quote,
// records end in \n or \r\n; blank lines are skipped (as csv.reader does) and a UTF-8 BOM is ignored.

#if canImport(Glibc)
import Glibc
#endif

final class CSVReader {
    let path: String
    let delimiter: UInt8
    private let file: InputFile
    private var buffer = [UInt8](repeating: 0, count: 1 << 20)
    private var start = 0, end = 0
    private var offset = 0                     // file offset of buffer[end]
    private var atEOF = false
    /// The current record's field bytes (quotes removed) and where each field ends in them.
    private(set) var bytes: [UInt8] = []
    private(set) var ends: [Int] = []
    /// The line the current record starts on (1-based), and the next one.
    private(set) var line = 0
    private var nextLine = 1
    /// A record larger than this is not a CSV row anyone meant: bounds the record buffer.
    static let maxRecordBytes = 1 << 30

    init(path: String, delimiter: UInt8) throws {
        self.path = path
        self.delimiter = delimiter
        file = try InputFile(path, what: "CSV file")
    }

    var fieldCount: Int { ends.count }

    func field(_ i: Int) -> ArraySlice<UInt8> { bytes[(i == 0 ? 0 : ends[i - 1])..<ends[i]] }

    func text(_ i: Int) -> String { String(decoding: field(i), as: UTF8.self) }

    /// The next byte, or nil at the end of the file.
    @inline(__always)
    private func byte() throws -> UInt8? {
        if start == end {
            guard !atEOF else { return nil }
            let n = min(buffer.count, file.size - offset)
            guard n > 0 else {
                atEOF = true
                return nil
            }
            try buffer.withUnsafeMutableBytes { try file.read(at: offset, into: UnsafeMutableRawBufferPointer(rebasing: $0[0..<n])) }
            offset += n
            (start, end) = (0, n)
        }
        defer { start += 1 }
        return buffer[start]
    }

    @inline(__always)
    private func peek() throws -> UInt8? {
        guard let b = try byte() else { return nil }
        start -= 1
        return b
    }

    /// Reads the next non-blank record; false at the end of the file.
    func next() throws -> Bool {
        bytes.removeAll(keepingCapacity: true)
        ends.removeAll(keepingCapacity: true)
        if offset == 0 && start == 0, try peek() == 0xEF {
            // A UTF-8 byte-order mark (spreadsheets write one) is not part of the first field.
            var bom: [UInt8] = []
            for _ in 0..<3 { if let b = try byte() { bom.append(b) } }
            if bom != [0xEF, 0xBB, 0xBF] { bytes += bom }
        }
        while true {
            line = nextLine
            var quoted = false, wasQuoted = false
            while true {
                guard let b = try byte() else {
                    guard !quoted else {
                        throw LockstepError.usage("\(path): line \(line): a quoted field is never closed: add the closing \" or remove the opening one")
                    }
                    if bytes.isEmpty && ends.isEmpty { return false }
                    ends.append(bytes.count)
                    return true
                }
                if quoted {
                    if b == 0x22 {
                        if try peek() == 0x22 { _ = try byte(); bytes.append(0x22) } else { quoted = false }
                    } else {
                        if b == 0x0A { nextLine += 1 }
                        bytes.append(b)
                    }
                } else if b == delimiter {
                    ends.append(bytes.count)
                    wasQuoted = false
                } else if b == 0x0A || b == 0x0D {
                    if b == 0x0D, try peek() == 0x0A { _ = try byte() }
                    nextLine += 1
                    if bytes.isEmpty && ends.isEmpty && !wasQuoted { break }      // a blank line
                    ends.append(bytes.count)
                    return true
                } else if b == 0x22 && bytes.count == (ends.last ?? 0) && !wasQuoted {
                    quoted = true
                    wasQuoted = true
                } else {
                    if wasQuoted {
                        throw LockstepError.usage("\(path): line \(line), field \(ends.count + 1): text after a closing quote: quote the whole field, with \"\" for a quote inside it")
                    }
                    bytes.append(b)
                }
                if bytes.count > Self.maxRecordBytes {
                    throw LockstepError.usage("\(path): the record at line \(line) is over 1 GiB: is this a CSV file (or is a quote never closed)?")
                }
            }
        }
    }

    /// Starts again from the first record (the second pass).
    func rewind() {
        (start, end, offset, atEOF, line, nextLine) = (0, 0, 0, false, 0, 1)
    }
}

/// Parsing one cell's text as a number, as C's strtof/strtod/strtoll do (surrounding spaces
/// allowed, the whole cell consumed), through a scratch buffer that is reused.
struct CellParser {
    private var scratch = [CChar](repeating: 0, count: 256)

    private mutating func withCString<R>(_ cell: ArraySlice<UInt8>, _ body: (UnsafePointer<CChar>, UnsafePointer<CChar>) -> R?) -> R? {
        var s = cell
        while let f = s.first, f == 32 || f == 9 { s = s.dropFirst() }
        while let l = s.last, l == 32 || l == 9 { s = s.dropLast() }
        guard !s.isEmpty else { return nil }
        if scratch.count <= s.count { scratch = [CChar](repeating: 0, count: s.count + 1) }
        return scratch.withUnsafeMutableBufferPointer { buf -> R? in
            var i = 0
            for c in s {
                guard c != 0 else { return nil }
                buf[i] = CChar(bitPattern: c)
                i += 1
            }
            buf[i] = 0
            return body(buf.baseAddress!, buf.baseAddress! + i)
        }
    }

    /// The cell as a float32 rounded once from its text; nil if it is not a number.
    mutating func float(_ cell: ArraySlice<UInt8>) -> Float? {
        withCString(cell) { p, e in
            var stop: UnsafeMutablePointer<CChar>?
            let v = strtof(p, &stop)
            return stop.map { UnsafePointer($0) } == e ? v : nil
        }
    }

    mutating func double(_ cell: ArraySlice<UInt8>) -> Double? {
        withCString(cell) { p, e in
            var stop: UnsafeMutablePointer<CChar>?
            let v = strtod(p, &stop)
            return stop.map { UnsafePointer($0) } == e ? v : nil
        }
    }

    /// A class label: an integer ("3"), or a number that is one ("3.0", as pandas writes them).
    enum Label { case value(Int64), notANumber, notWhole, negative }

    mutating func label(_ cell: ArraySlice<UInt8>) -> Label {
        let exact: Int64?? = withCString(cell) { p, e in
            var stop: UnsafeMutablePointer<CChar>?
            errno = 0
            let v = strtoll(p, &stop, 10)
            return stop.map { UnsafePointer($0) } == e && errno == 0 ? Optional(Int64(v)) : Optional<Int64>.none
        }
        if case let v?? = exact { return v < 0 ? .negative : .value(v) }
        guard let d = double(cell), !d.isNaN else { return .notANumber }
        guard d.isFinite, d.rounded() == d, abs(d) < 0x1p63 else { return .notWhole }
        return d < 0 ? .negative : .value(Int64(d))
    }
}
