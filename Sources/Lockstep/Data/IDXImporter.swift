// `lockstep import`: converts IDX files (the MNIST/Fashion-MNIST format, gzipped or not) into
// Lockstep's HDF5 dataset layout (/train/x uint8 [N, rows, cols], /train/y uint8 [N], /test/...).
// An IDX header's dimensions are input: their product is computed with checked arithmetic and
// held against the bytes the file really has, so a corrupt header is a usage error, never a trap.

import CZlib
#if canImport(Glibc)
import Glibc
#endif

public enum IDXImporter {
    /// An IDX array: element bytes and its dimensions.
    public struct Array {
        public let shape: [Int]
        public let bytes: [UInt8]
    }

    /// The element count an IDX header's `shape` claims, or nil when the product overflows an Int.
    public static func elementCount(_ shape: [Int]) -> Int? {
        var count = 1
        for d in shape {
            let (product, overflow) = count.multipliedReportingOverflow(by: d)
            if overflow { return nil }
            count = product
        }
        return count
    }

    /// Reads an IDX file of unsigned bytes (type code 0x08); gzip is detected and inflated by zlib.
    public static func read(_ path: String) throws -> Array {
        guard let gz = gzopen(path, "rb") else {
            throw LockstepError.usage("\(path): no such readable file (install Debian's dataset-fashion-mnist, or give the IDX file's path)")
        }
        defer { gzclose(gz) }
        var data: [UInt8] = []
        var chunk = [UInt8](repeating: 0, count: 1 << 20)
        // Once the header is in, what the whole file must hold: reading stops as soon as the file
        // is longer than that, so a lying header never makes us inflate more than it promised.
        var expectedTotal: Int?
        while true {
            let n = chunk.withUnsafeMutableBytes { gzread(gz, $0.baseAddress, UInt32($0.count)) }
            if n < 0 { throw LockstepError.usage("\(path): not a readable IDX file (corrupt gzip data)") }
            if n == 0 { break }
            data.append(contentsOf: chunk[0..<Int(n)])
            if expectedTotal == nil, let header = try header(of: data, path: path) {
                expectedTotal = header.total
            }
            if let expectedTotal, data.count > expectedTotal {
                let shape = try header(of: data, path: path)!.shape
                throw LockstepError.usage("\(path): IDX header promises \(expectedTotal - headerSize(shape)) bytes of data (shape \(shape)) but the file has more than that: the header is corrupt; give an intact IDX file")
            }
        }
        guard let (shape, total) = try header(of: data, path: path) else {
            throw LockstepError.usage("\(path): truncated IDX header (\(data.count) bytes): give a complete IDX file")
        }
        let header = headerSize(shape)
        guard data.count == total else {
            throw LockstepError.usage("\(path): IDX header promises \(total - header) bytes of data (shape \(shape)) but the file has \(data.count - header) (truncated?)")
        }
        return Array(shape: shape, bytes: Swift.Array(data[header...]))
    }

    private static func headerSize(_ shape: [Int]) -> Int { 4 + 4 * shape.count }

    /// The shape and total byte count (header + data) that the header at the start of `data`
    /// claims; nil while `data` is too short to hold the whole header. A header that cannot be
    /// right (bad magic, another element type, no dimensions, a zero dimension, a product past
    /// Int) is a usage error.
    private static func header(of data: [UInt8], path: String) throws -> (shape: [Int], total: Int)? {
        guard data.count >= 4 else { return nil }
        guard data[0] == 0, data[1] == 0 else {
            throw LockstepError.usage("\(path): not an IDX file (bad magic number)")
        }
        guard data[2] == 0x08 else {
            throw LockstepError.usage("\(path): IDX element type 0x\(String(data[2], radix: 16)) is not supported; only unsigned bytes (0x08)")
        }
        let dims = Int(data[3])
        guard dims >= 1 else {
            throw LockstepError.usage("\(path): the IDX header has 0 dimensions: give an IDX file of at least one dimension")
        }
        let header = 4 + 4 * dims                               // dims ≤ 255: at most 1024
        guard data.count >= header else { return nil }
        var shape: [Int] = []
        for d in 0..<dims {
            let o = 4 + 4 * d
            shape.append(Int(data[o]) << 24 | Int(data[o + 1]) << 16 | Int(data[o + 2]) << 8 | Int(data[o + 3]))
        }
        if let zero = shape.firstIndex(of: 0) {
            throw LockstepError.usage("\(path): IDX dimension \(zero + 1) of \(dims) is 0 (shape \(shape)): the array is empty; give a file with data")
        }
        guard let count = elementCount(shape), case (let total, false) = count.addingReportingOverflow(header) else {
            throw LockstepError.usage("\(path): IDX header claims shape \(shape), more bytes than any file can hold: the header is corrupt; give an intact IDX file")
        }
        return (shape, total)
    }

    /// Writes one split's images and labels into `file` under `/split/x` and `/split/y`.
    public static func importSplit(images: String, labels: String, split: String, into file: HDF5File,
                                   layout: StorageLayout = .contiguous) throws -> Int {
        let (x, y) = try readSplit(images: images, labels: labels)
        try write(x, y, split: split, into: file, layout: layout)
        return x.shape[0]
    }

    /// Reads and checks one split: images of at least 2 dimensions, one label per image.
    static func readSplit(images: String, labels: String) throws -> (x: Array, y: Array) {
        let x = try read(images)
        let y = try read(labels)
        guard y.shape.count == 1, x.shape.first == y.shape.first else {
            throw LockstepError.usage("\(images) has \(x.shape.first ?? 0) images but \(labels) has shape \(y.shape): give matching files")
        }
        guard x.shape.count >= 2 else {
            throw LockstepError.usage("\(images): images need at least 2 dimensions (count, then each image's), got shape \(x.shape): give the images file as --train-images/--test-images")
        }
        return (x, y)
    }

    private static func write(_ x: Array, _ y: Array, split: String, into file: HDF5File, layout: StorageLayout) throws {
        try file.write("/\(split)/x", x.bytes, shape: x.shape, layout: layout, role: .features)
        try file.write("/\(split)/y", y.bytes, shape: y.shape, layout: layout, role: .labels)
    }

    /// Imports both splits into the HDF5 file `output`. Every input is read and checked before
    /// anything is written, and `writeImportedFile` leaves nothing behind when the import fails.
    /// Returns the training and test sample counts.
    public static func importFiles(trainImages: String, trainLabels: String, testImages: String, testLabels: String,
                                   output: String, layout: StorageLayout = .contiguous) throws -> (train: Int, test: Int) {
        let train = try readSplit(images: trainImages, labels: trainLabels)
        let test = try readSplit(images: testImages, labels: testLabels)
        try writeImportedFile(output) { file in
            try write(train.x, train.y, split: "train", into: file, layout: layout)
            try write(test.x, test.y, split: "test", into: file, layout: layout)
        }
        return (train.x.shape[0], test.x.shape[0])
    }
}
