// Dataset: loading an HDF5 split, uint8 scaling, standardisation, and the bad-input errors.
import Testing
import Lockstep

extension FileTests {
    @Suite struct DatasetTests {
        static let bytes: [UInt8] = (0..<30).map { UInt8(($0 * 37 + 11) % 256) }     // 5 samples of [2, 3]
        static let labels: [UInt8] = [0, 2, 1, 1, 0]

        /// Writes `body`'s datasets into a fresh file and opens it for reading.
        static func file(_ dir: TemporaryDirectory, _ name: String = "d.h5", _ body: (HDF5File) throws -> Void) throws -> HDF5File {
            do {
                let f = try HDF5File.create(dir.file(name))
                try body(f)
            }
            return try HDF5File.open(dir.file(name))
        }

        static func standard(_ dir: TemporaryDirectory) throws -> HDF5File {
            try file(dir) { f in
                try f.write("/train/x", bytes, shape: [5, 2, 3])
                try f.write("/train/y", labels, shape: [5])
            }
        }

        @Test func loadsAndGathersScaledBytes() throws {
            let dir = try TemporaryDirectory()
            let data = try Dataset(file: Self.standard(dir), xPath: "/train/x", yPath: "/train/y", classes: 3, name: "train")
            #expect(data.count == 5 && data.sampleShape == [2, 3] && data.width == 6 && data.isUInt8)
            #expect(data.labels == Self.labels.map(Int32.init))
            let indices: [Int32] = [4, 0, 2]
            var x = [Float](repeating: .nan, count: 3 * 6)
            var y = [Int32](repeating: -1, count: 3)
            indices.withUnsafeBufferPointer { data.gather($0, x: &x, y: &y) }
            #expect(y == [0, 0, 1])
            for (row, index) in indices.enumerated() {
                for j in 0..<6 {
                    // uint8 → x/255 in Float32: one rounding step of slack (1e-7 absolute on values ≤ 1).
                    let want = Double(Self.bytes[Int(index) * 6 + j]) / 255
                    #expect(isClose(Double(x[row * 6 + j]), want, abs: 1e-7, rel: 0))
                }
            }
            var xr = [Float](repeating: .nan, count: 2 * 6)
            var yr = [Int32](repeating: -1, count: 2)
            data.gather(3..<5, x: &xr, y: &yr)
            #expect(yr == [1, 0])
            #expect(isClose(Double(xr[0]), Double(Self.bytes[18]) / 255, abs: 1e-7, rel: 0))
            // Normalization .none gives the raw bytes.
            data.normalize(.none, stats: nil)
            data.gather(3..<5, x: &xr, y: &yr)
            #expect(xr == Self.bytes[18..<30].map(Float.init))
        }

        @Test func standardizeUsesStatistics() throws {
            let dir = try TemporaryDirectory()
            let data = try Dataset(file: Self.standard(dir), xPath: "/train/x", yPath: "/train/y", classes: 3, name: "train")
            let stats = data.statistics()
            let scaled = Self.bytes.map { Double($0) / 255 }
            let mean = scaled.reduce(0, +) / Double(scaled.count)
            let std = (scaled.reduce(0) { $0 + ($1 - mean) * ($1 - mean) } / Double(scaled.count)).squareRoot()
            // Float64 one-pass vs two-pass moments on 30 values in [0, 1]: 1e-12.
            #expect(isClose(stats.mean, mean, abs: 1e-12, rel: 0) && isClose(stats.std, std, abs: 1e-12, rel: 0))
            data.normalize(.standardize, stats: stats)
            var x = [Float](repeating: .nan, count: 5 * 6)
            var y = [Int32](repeating: 0, count: 5)
            data.gather(0..<5, x: &x, y: &y)
            for (got, value) in zip(x, scaled) {
                // Float32 affine map of values of size ~2: 1e-5 absolute.
                #expect(isClose(Double(got), (value - mean) / std, abs: 1e-5, rel: 0))
            }
            let xs = x.map(Double.init)
            let m2 = xs.reduce(0, +) / 30
            #expect(abs(m2) < 1e-5)
            #expect(abs((xs.reduce(0) { $0 + ($1 - m2) * ($1 - m2) } / 30).squareRoot() - 1) < 1e-5)
        }

        @Test func floatFeaturesAreKeptAsIs() throws {
            let dir = try TemporaryDirectory()
            let values: [Float] = [0.5, -1.25, 3, 1e3, -7, 0]
            let file = try Self.file(dir) { f in
                try f.write("/x", values, shape: [3, 2])
                try f.write("/y", [Int64(1), 0, 1], shape: [3])
            }
            let data = try Dataset(file: file, xPath: "/x", yPath: "/y", classes: 2, name: "t")
            #expect(!data.isUInt8 && data.width == 2 && data.labels == [1, 0, 1])
            var x = [Float](repeating: .nan, count: 6)
            var y = [Int32](repeating: 0, count: 3)
            data.gather(0..<3, x: &x, y: &y)
            #expect(x == values)
            data.normalize(.scale, stats: nil)
            data.gather(0..<3, x: &x, y: &y)
            #expect(x == values, "scale leaves float features unchanged")
        }

        /// Integer features other than uint8 (here int32 and int64, as numpy writes them by
        /// default) are read as float32 values, unscaled: what the dtype message promises.
        @Test func otherIntegerFeaturesAreReadAsFloats() throws {
            let dir = try TemporaryDirectory()
            let values: [Int32] = [-3, 0, 7, 1000, 2, -1]
            let file = try Self.file(dir) { f in
                try f.write("/x32", values, shape: [3, 2])
                try f.write("/x64", values.map(Int64.init), shape: [3, 2])
                try f.write("/y", [UInt8(1), 0, 1], shape: [3])
            }
            for path in ["/x32", "/x64"] {
                let data = try Dataset(file: file, xPath: path, yPath: "/y", classes: 2, name: "t")
                #expect(!data.isUInt8 && data.width == 2)
                data.normalize(.scale, stats: nil)
                var x = [Float](repeating: .nan, count: 6)
                var y = [Int32](repeating: 0, count: 3)
                data.gather(0..<3, x: &x, y: &y)
                #expect(x == values.map(Float.init), "\(path)")
            }
        }

        @Test func badInputsAreUsageErrors() throws {
            let dir = try TemporaryDirectory()
            var n = 0
            func make(_ body: (HDF5File) throws -> Void) throws -> HDF5File {
                n += 1
                return try Self.file(dir, "bad\(n).h5", body)
            }
            let outOfRange = try make { f in
                try f.write("/x", Self.bytes, shape: [5, 2, 3]); try f.write("/y", [UInt8(0), 1, 3, 0, 1], shape: [5])
            }
            expectUsage(["/y", "label 3", "sample 2", "0..<3"]) {
                try Dataset(file: outOfRange, xPath: "/x", yPath: "/y", classes: 3, name: "t")
            }
            let negative = try make { f in
                try f.write("/x", Self.bytes, shape: [5, 2, 3]); try f.write("/y", [Int64(0), 1, 2, -1, 0], shape: [5])
            }
            expectUsage(["label -1", "sample 3"]) { try Dataset(file: negative, xPath: "/x", yPath: "/y", classes: 3, name: "t") }
            let mismatch = try make { f in
                try f.write("/x", Self.bytes, shape: [5, 2, 3]); try f.write("/y", [UInt8(0), 1, 2, 0], shape: [4])
            }
            expectUsage(["/x", "5", "/y", "4", "match"]) { try Dataset(file: mismatch, xPath: "/x", yPath: "/y", classes: 3, name: "t") }
            let nan = try make { f in
                try f.write("/x", [Float(1), 2, .nan, 4], shape: [2, 2]); try f.write("/y", [UInt8(0), 1], shape: [2])
            }
            expectUsage(["/x", "non-finite", "sample 1"]) { try Dataset(file: nan, xPath: "/x", yPath: "/y", classes: 2, name: "t") }
            let floatLabels = try make { f in
                try f.write("/x", [Float](repeating: 0, count: 4), shape: [2, 2]); try f.write("/y", [Float(0), 1], shape: [2])
            }
            expectUsage(["/y", "float32", "integers"]) { try Dataset(file: floatLabels, xPath: "/x", yPath: "/y", classes: 2, name: "t") }
            let flat = try make { f in
                try f.write("/x", [Float](repeating: 0, count: 4), shape: [4]); try f.write("/y", [UInt8](repeating: 0, count: 4), shape: [4])
            }
            expectUsage(["/x", "[N, ...]"]) { try Dataset(file: flat, xPath: "/x", yPath: "/y", classes: 2, name: "t") }
            let matrixLabels = try make { f in
                try f.write("/x", [Float](repeating: 0, count: 4), shape: [2, 2]); try f.write("/y", [UInt8](repeating: 0, count: 4), shape: [2, 2])
            }
            expectUsage(["/y", "shape [N]"]) { try Dataset(file: matrixLabels, xPath: "/x", yPath: "/y", classes: 2, name: "t") }
            let empty = try make { f in
                try f.write("/x", [Float](), shape: [0, 2]); try f.write("/y", [UInt8](), shape: [0])
            }
            expectUsage(["/x", "empty"]) { try Dataset(file: empty, xPath: "/x", yPath: "/y", classes: 2, name: "t") }
            let good = try Self.standard(dir)
            expectUsage(["/test/x"]) { try Dataset(file: good, xPath: "/test/x", yPath: "/train/y", classes: 3, name: "t") }
        }
    }
}
