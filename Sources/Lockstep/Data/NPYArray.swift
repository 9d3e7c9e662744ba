// One .npy array as a stream of rows (a file, or a member of an .npz), converted block by block
// into what Lockstep stores: features as uint8 (from uint8) or float32 (from anything else),
// labels as int64 (integral and ≥ 0). Memory is one block, whatever the array's size.

final class NPYArray {
    let header: NPYHeader
    let source: ByteSource
    private let end: () throws -> Void
    var name: String { source.name }
    var rows: Int { header.shape[0] }
    /// One row's shape: a 1-D array is rows of one value.
    var rowShape: [Int] { header.shape.count == 1 ? [1] : Array(header.shape.dropFirst()) }
    /// Elements per row (fits an Int: the whole count did when the header was parsed).
    var rowElements: Int { IDXImporter.elementCount(rowShape)! }

    /// Reads the header from `source` and checks that the data that follows is exactly what it
    /// promises. `end` runs after the last byte (a zip member's CRC check).
    init(_ source: ByteSource, end: @escaping () throws -> Void = {}) throws {
        self.source = source
        self.end = end
        var bytes: [UInt8] = []
        while true {
            let (header, needed) = try NPYHeader.parse(bytes, source: source.name)
            if let header {
                self.header = header
                break
            }
            guard needed - bytes.count <= source.remaining else {
                throw LockstepError.usage("\(source.name) ends inside its .npy header (\(source.remaining + bytes.count) bytes): give a complete file written by numpy.save")
            }
            bytes += try source.read(needed - bytes.count)
        }
        guard source.remaining == header.byteCount else {
            throw LockstepError.usage("\(source.name): the .npy header promises \(header.byteCount) bytes of \(header.dtypeName) (shape \(header.shape)) but the file holds \(source.remaining)\(source.remaining < header.byteCount ? " (truncated?)" : ""): save it again with numpy.save")
        }
        guard rows > 0 else { throw LockstepError.usage("\(source.name) has no rows (shape \(header.shape)): give an array with data") }
    }

    /// What the features are stored as: uint8 stays uint8, everything else becomes float32.
    var featureType: StoredType { header.kind == .unsigned && header.size == 1 ? .uint8 : .float32 }

    /// Checks that this array can be labels: one per row, shape (N,) or (N, 1).
    func requireLabels() throws {
        guard header.shape.count == 1 || (header.shape.count == 2 && header.shape[1] == 1) else {
            throw LockstepError.usage("\(name) has shape \(header.shape); labels must be one class index per row, shape (N,)")
        }
    }

    /// Streams every row, converted, to `router` (features) in blocks of about 4 MiB.
    func writeFeatures(to router: RowRouter) throws {
        try stream(outputSize: featureType.size) { raw, out, firstRow, n in
            try self.convertFeatures(raw, out, firstRow: firstRow, count: n)
        } write: { try router.append($0) }
    }

    /// Streams every label, as int64, to `router`.
    func writeLabels(to router: RowRouter) throws {
        try stream(outputSize: 8) { raw, out, firstRow, n in
            try self.convertLabels(raw, out, firstRow: firstRow, count: n)
        } write: { try router.append($0) }
    }

    private func stream(outputSize: Int,
                        convert: (UnsafeMutableRawBufferPointer, UnsafeMutableRawBufferPointer, Int, Int) throws -> Void,
                        write: (UnsafeRawBufferPointer) throws -> Void) throws {
        let width = rowElements
        let rowBytes = max(width * max(header.size, outputSize), 1)
        let blockRows = max(1, min(rows, (4 << 20) / rowBytes))
        var raw = [UInt8](repeating: 0, count: blockRows * width * header.size)
        var out = [UInt8](repeating: 0, count: blockRows * width * outputSize)
        var row = 0
        while row < rows {
            let n = min(blockRows, rows - row)
            try raw.withUnsafeMutableBytes { r in
                let r = UnsafeMutableRawBufferPointer(rebasing: r[0..<(n * width * header.size)])
                try source.read(into: r)
                try out.withUnsafeMutableBytes { o in
                    let o = UnsafeMutableRawBufferPointer(rebasing: o[0..<(n * width * outputSize)])
                    do { try convert(r, o, row, n * width) } catch { throw source.damage() ?? error }
                    try write(UnsafeRawBufferPointer(o))
                }
            }
            row += n
        }
        try end()
    }

    /// Reverses each element's bytes in place (a big-endian array).
    private func swapBytes(_ raw: UnsafeMutableRawBufferPointer) {
        let size = header.size
        guard header.bigEndian, size > 1 else { return }
        for e in stride(from: 0, to: raw.count, by: size) {
            for k in 0..<(size / 2) { raw.swapAt(e + k, e + size - 1 - k) }
        }
    }

    /// Integer element i of `raw`, exactly; `tooLarge` for a uint64 past Int64.max.
    @inline(__always)
    private func integer(_ raw: UnsafeMutableRawBufferPointer, _ i: Int) -> (value: Int64, tooLarge: Bool) {
        let o = i * header.size
        switch (header.kind, header.size) {
        case (.signed, 1): return (Int64(raw.loadUnaligned(fromByteOffset: o, as: Int8.self)), false)
        case (.signed, 2): return (Int64(raw.loadUnaligned(fromByteOffset: o, as: Int16.self)), false)
        case (.signed, 4): return (Int64(raw.loadUnaligned(fromByteOffset: o, as: Int32.self)), false)
        case (.signed, _): return (raw.loadUnaligned(fromByteOffset: o, as: Int64.self), false)
        case (.unsigned, 1): return (Int64(raw.loadUnaligned(fromByteOffset: o, as: UInt8.self)), false)
        case (.unsigned, 2): return (Int64(raw.loadUnaligned(fromByteOffset: o, as: UInt16.self)), false)
        case (.unsigned, 4): return (Int64(raw.loadUnaligned(fromByteOffset: o, as: UInt32.self)), false)
        default:
            let v = raw.loadUnaligned(fromByteOffset: o, as: UInt64.self)
            return (Int64(truncatingIfNeeded: v), v > UInt64(Int64.max))
        }
    }

    @inline(__always)
    private func float(_ raw: UnsafeMutableRawBufferPointer, _ i: Int) -> Double {
        let o = i * header.size
        switch header.size {
        case 2: return Double(Float(Float16(bitPattern: raw.loadUnaligned(fromByteOffset: o, as: UInt16.self))))
        case 4: return Double(raw.loadUnaligned(fromByteOffset: o, as: Float.self))
        default: return raw.loadUnaligned(fromByteOffset: o, as: Double.self)
        }
    }

    /// `count` elements from row `firstRow` on, into uint8 (a byte copy) or float32.
    private func convertFeatures(_ raw: UnsafeMutableRawBufferPointer, _ out: UnsafeMutableRawBufferPointer,
                                 firstRow: Int, count: Int) throws {
        swapBytes(raw)
        if featureType == .uint8 {
            out.copyMemory(from: UnsafeRawBufferPointer(raw))
            return
        }
        let f = out.bindMemory(to: Float.self)
        if header.kind == .float {
            for i in 0..<count {
                let v = header.size == 4 ? raw.loadUnaligned(fromByteOffset: 4 * i, as: Float.self) : Float(float(raw, i))
                guard v.isFinite else {
                    let row = firstRow + i / rowElements
                    let what = float(raw, i).isFinite ? "\(float(raw, i)), past float32's range" : "\(float(raw, i))"
                    throw LockstepError.usage("\(name): row \(row) holds \(what); features must be finite float32 values: clean or rescale the data")
                }
                f[i] = v
            }
        } else {
            for i in 0..<count {
                let (v, big) = integer(raw, i)
                f[i] = big ? Float(raw.loadUnaligned(fromByteOffset: 8 * i, as: UInt64.self)) : Float(v)
            }
        }
    }

    /// `count` labels from row `firstRow` on, into int64: integral and ≥ 0.
    private func convertLabels(_ raw: UnsafeMutableRawBufferPointer, _ out: UnsafeMutableRawBufferPointer,
                               firstRow: Int, count: Int) throws {
        swapBytes(raw)
        let y = out.bindMemory(to: Int64.self)
        for i in 0..<count {
            let label: Int64
            if header.kind == .float {
                let v = float(raw, i)
                guard v.isFinite, v.rounded() == v, v >= 0, v < 0x1p63 else {
                    throw badLabel("\(v)", firstRow + i, v < 0 ? "negative" : "not a whole number")
                }
                label = Int64(v)
            } else {
                let (v, big) = integer(raw, i)
                guard !big else { throw badLabel("\(raw.loadUnaligned(fromByteOffset: 8 * i, as: UInt64.self))", firstRow + i, "too large") }
                guard v >= 0 else { throw badLabel("\(v)", firstRow + i, "negative") }
                label = v
            }
            y[i] = label
        }
    }

    private func badLabel(_ text: String, _ row: Int, _ why: String) -> LockstepError {
        .usage("\(name): label \(text) at row \(row) is \(why); labels must be class indices 0, 1, 2, …: fix the labels")
    }
}
