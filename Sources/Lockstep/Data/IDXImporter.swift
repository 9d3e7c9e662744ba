// `lockstep import`: converts IDX files (the MNIST/Fashion-MNIST format, gzipped or not) into
// Lockstep's HDF5 dataset layout (/train/x uint8 [N, rows, cols], /train/y uint8 [N], /test/...).

import CZlib

public enum IDXImporter {
    /// An IDX array: element bytes and its dimensions.
    public struct Array {
        public let shape: [Int]
        public let bytes: [UInt8]
    }

    /// Reads an IDX file of unsigned bytes (type code 0x08); gzip is detected and inflated by zlib.
    public static func read(_ path: String) throws -> Array {
        guard let gz = gzopen(path, "rb") else {
            throw LockstepError.usage("\(path): no such readable file (install Debian's dataset-fashion-mnist, or give the IDX file's path)")
        }
        defer { gzclose(gz) }
        var data: [UInt8] = []
        var chunk = [UInt8](repeating: 0, count: 1 << 20)
        while true {
            let n = chunk.withUnsafeMutableBytes { gzread(gz, $0.baseAddress, UInt32($0.count)) }
            if n < 0 { throw LockstepError.usage("\(path): not a readable IDX file (corrupt gzip data)") }
            if n == 0 { break }
            data.append(contentsOf: chunk[0..<Int(n)])
        }
        guard data.count >= 4, data[0] == 0, data[1] == 0 else {
            throw LockstepError.usage("\(path): not an IDX file (bad magic number)")
        }
        guard data[2] == 0x08 else {
            throw LockstepError.usage("\(path): IDX element type 0x\(String(data[2], radix: 16)) is not supported; only unsigned bytes (0x08)")
        }
        let dims = Int(data[3])
        guard dims >= 1, data.count >= 4 + 4 * dims else { throw LockstepError.usage("\(path): truncated IDX header") }
        var shape: [Int] = []
        for d in 0..<dims {
            let o = 4 + 4 * d
            shape.append(Int(data[o]) << 24 | Int(data[o + 1]) << 16 | Int(data[o + 2]) << 8 | Int(data[o + 3]))
        }
        let header = 4 + 4 * dims
        let expected = shape.reduce(1, *)
        guard data.count - header == expected else {
            throw LockstepError.usage("\(path): IDX header promises \(expected) bytes of data but the file has \(data.count - header) (truncated?)")
        }
        return Array(shape: shape, bytes: Swift.Array(data[header...]))
    }

    /// Writes one split's images and labels into `file` under `/split/x` and `/split/y`.
    public static func importSplit(images: String, labels: String, split: String, into file: HDF5File) throws -> Int {
        let x = try read(images)
        let y = try read(labels)
        guard y.shape.count == 1, x.shape.first == y.shape.first else {
            throw LockstepError.usage("\(images) has \(x.shape.first ?? 0) images but \(labels) has shape \(y.shape): give matching files")
        }
        try file.write("/\(split)/x", x.bytes, shape: x.shape)
        try file.write("/\(split)/y", y.bytes, shape: y.shape)
        return x.shape[0]
    }
}
