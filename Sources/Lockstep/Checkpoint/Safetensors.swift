// The safetensors format (Hugging Face), written natively: an 8-byte little-endian header length
// N, N bytes of JSON header ({"name": {"dtype", "shape", "data_offsets": [begin, end]}, ...,
// "__metadata__": {string: string}}), then the tensors' raw little-endian bytes back to back.
// Keys are sorted, tensors laid out in that order, and the header padded with spaces to a
// multiple of 8 bytes, so every tensor starts 8-byte aligned. Loading one executes nothing.

public struct SafetensorsTensor: Sendable {
    public var name: String
    /// "F32" or "I64".
    public var dtype: String
    public var shape: [Int]
    /// Little-endian element bytes, row-major (C order).
    public var bytes: [UInt8]

    public init(name: String, shape: [Int], floats: UnsafeBufferPointer<Float>) {
        self.name = name
        dtype = "F32"
        self.shape = shape
        bytes = []
        bytes.reserveCapacity(floats.count * 4)
        for value in floats { withUnsafeBytes(of: value.bitPattern.littleEndian) { bytes += $0 } }
    }

    public init(name: String, shape: [Int], int64s: [Int64]) {
        self.name = name
        dtype = "I64"
        self.shape = shape
        bytes = []
        for value in int64s { withUnsafeBytes(of: value.littleEndian) { bytes += $0 } }
    }
}

public enum Safetensors {
    /// The whole file: header length, header, data.
    public static func encode(_ tensors: [SafetensorsTensor], metadata: [String: String]) -> [UInt8] {
        // Byte order of the UTF-8 names, as the safetensors library sorts them.
        let sorted = tensors.sorted { Array($0.name.utf8).lexicographicallyPrecedes(Array($1.name.utf8)) }
        var entries: [(key: String, json: String)] = []
        var offset = 0
        for t in sorted {
            let shape = "[" + t.shape.map(String.init).joined(separator: ",") + "]"
            entries.append((t.name, "{\"dtype\":\"\(t.dtype)\",\"shape\":\(shape),\"data_offsets\":[\(offset),\(offset + t.bytes.count)]}"))
            offset += t.bytes.count
        }
        if !metadata.isEmpty {
            let fields = metadata.sorted { Array($0.key.utf8).lexicographicallyPrecedes(Array($1.key.utf8)) }
                .map { jsonString($0.key) + ":" + jsonString($0.value) }
            entries.append(("__metadata__", "{" + fields.joined(separator: ",") + "}"))
        }
        entries.sort { Array($0.key.utf8).lexicographicallyPrecedes(Array($1.key.utf8)) }
        var header = Array(("{" + entries.map { jsonString($0.key) + ":" + $0.json }.joined(separator: ",") + "}").utf8)
        while header.count % 8 != 0 { header.append(UInt8(ascii: " ")) }
        var file: [UInt8] = []
        file.reserveCapacity(8 + header.count + offset)
        withUnsafeBytes(of: UInt64(header.count).littleEndian) { file += $0 }
        file += header
        for t in sorted { file += t.bytes }
        return file
    }
}
