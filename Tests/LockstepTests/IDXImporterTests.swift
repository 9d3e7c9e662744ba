// IDXImporter: reading plain and gzipped IDX files, importing a split into HDF5, and bad-file errors.
import Testing
import Lockstep
#if canImport(Glibc)
import Glibc
#endif

extension FileTests {
    @Suite struct IDXImporterTests {
        /// An IDX file of unsigned bytes: 0, 0, 0x08, rank, big-endian dimensions, data.
        static func idx(shape: [Int], data: [UInt8], type: UInt8 = 0x08) -> [UInt8] {
            var bytes: [UInt8] = [0, 0, type, UInt8(shape.count)]
            for d in shape { bytes += [UInt8(d >> 24 & 0xFF), UInt8(d >> 16 & 0xFF), UInt8(d >> 8 & 0xFF), UInt8(d & 0xFF)] }
            return bytes + data
        }

        static let images: [UInt8] = (0..<(3 * 2 * 4)).map { UInt8($0 * 11 % 256) }
        static let labels: [UInt8] = [2, 0, 1]

        static var gzip: String? {
            ["/usr/bin/gzip", "/bin/gzip", "/usr/local/bin/gzip"].first { access($0, X_OK) == 0 }
        }

        /// Runs `gzip -k -f path`, producing path.gz next to it.
        static func gzipFile(_ path: String) throws {
            let tool = try #require(gzip)
            var pid: pid_t = 0
            let args = [tool, "-k", "-f", path]
            var argv: [UnsafeMutablePointer<CChar>?] = args.map { strdup($0) } + [nil]
            defer { argv.forEach { free($0) } }
            // Safe only because FileTests is serialized: the child inherits every open descriptor, and
            // an HDF5 file's descriptor carries its flock(), which would make a concurrent H5Fopen fail.
            #expect(posix_spawn(&pid, tool, nil, nil, &argv, nil) == 0)
            var status: Int32 = 0
            waitpid(pid, &status, 0)
            #expect(status == 0, "gzip exit status \(status)")
        }

        @Test func readsPlainIDX() throws {
            let dir = try TemporaryDirectory()
            try writeBytes(Self.idx(shape: [3, 2, 4], data: Self.images), to: dir.file("images.idx"))
            let array = try IDXImporter.read(dir.file("images.idx"))
            #expect(array.shape == [3, 2, 4])
            #expect(array.bytes == Self.images)
            // Dimensions above 255 exercise the big-endian decoding.
            let long = [UInt8](repeating: 7, count: 300)
            try writeBytes(Self.idx(shape: [300], data: long), to: dir.file("long.idx"))
            #expect(try IDXImporter.read(dir.file("long.idx")).shape == [300])
        }

        @Test(.enabled(if: gzip != nil, "needs the gzip command"))
        func readsGzippedIDX() throws {
            let dir = try TemporaryDirectory()
            let path = dir.file("images-idx3-ubyte")
            try writeBytes(Self.idx(shape: [3, 2, 4], data: Self.images), to: path)
            try Self.gzipFile(path)
            let compressed = try readBytes(path + ".gz")
            #expect(compressed.starts(with: [0x1F, 0x8B]), "gzip wrote a gzip file")
            let array = try IDXImporter.read(path + ".gz")
            #expect(array.shape == [3, 2, 4] && array.bytes == Self.images)
            // A gzip stream cut short is an error, never a silently shorter array.
            try writeBytes(Array(compressed[0..<(compressed.count - 12)]), to: dir.file("cut.gz"))
            expectUsage([dir.file("cut.gz")]) { try IDXImporter.read(dir.file("cut.gz")) }
        }

        @Test func importsASplitThatDatasetLoads() throws {
            let dir = try TemporaryDirectory()
            try writeBytes(Self.idx(shape: [3, 2, 4], data: Self.images), to: dir.file("x.idx"))
            try writeBytes(Self.idx(shape: [3], data: Self.labels), to: dir.file("y.idx"))
            do {
                let file = try HDF5File.create(dir.file("d.h5"))
                #expect(try IDXImporter.importSplit(images: dir.file("x.idx"), labels: dir.file("y.idx"), split: "train", into: file) == 3)
            }
            let file = try HDF5File.open(dir.file("d.h5"))
            #expect(try file.info("/train/x").shape == [3, 2, 4])
            #expect(try file.info("/train/x").dtypeName == "uint8")
            #expect(try file.read("/train/x", as: UInt8.self) == Self.images)
            #expect(try file.read("/train/y", as: UInt8.self) == Self.labels)
            let data = try Dataset(file: file, xPath: "/train/x", yPath: "/train/y", classes: 3, name: "train")
            #expect(data.count == 3 && data.labels == [2, 0, 1])

            try writeBytes(Self.idx(shape: [2], data: [0, 1]), to: dir.file("y2.idx"))
            let other = try HDF5File.create(dir.file("e.h5"))
            expectUsage(["x.idx", "y2.idx"]) {
                try IDXImporter.importSplit(images: dir.file("x.idx"), labels: dir.file("y2.idx"), split: "train", into: other)
            }
        }

        @Test func badFilesAreUsageErrors() throws {
            let dir = try TemporaryDirectory()
            var bad = Self.idx(shape: [3], data: Self.labels)
            bad[0] = 0x50                                                   // "P": not IDX
            try writeBytes(bad, to: dir.file("magic.idx"))
            expectUsage(["magic.idx", "magic"]) { try IDXImporter.read(dir.file("magic.idx")) }

            try writeBytes(Self.idx(shape: [3, 2, 4], data: Array(Self.images.dropLast(5))), to: dir.file("short.idx"))
            expectUsage(["short.idx", "24", "19"]) { try IDXImporter.read(dir.file("short.idx")) }

            try writeBytes(Self.idx(shape: [3], data: Self.labels + [9]), to: dir.file("long.idx"))
            expectUsage(["long.idx"]) { try IDXImporter.read(dir.file("long.idx")) }

            try writeBytes(Array(Self.idx(shape: [3, 2, 4], data: []).prefix(9)), to: dir.file("header.idx"))
            expectUsage(["header.idx", "header"]) { try IDXImporter.read(dir.file("header.idx")) }

            try writeBytes(Self.idx(shape: [2], data: [0, 0, 0, 0, 0, 0, 0, 0], type: 0x0D), to: dir.file("float.idx"))
            expectUsage(["float.idx", "0xd"]) { try IDXImporter.read(dir.file("float.idx")) }

            try writeBytes([0, 0], to: dir.file("tiny.idx"))
            expectUsage(["tiny.idx"]) { try IDXImporter.read(dir.file("tiny.idx")) }

            expectUsage([dir.file("absent.idx")]) { try IDXImporter.read(dir.file("absent.idx")) }
        }
    }
}
