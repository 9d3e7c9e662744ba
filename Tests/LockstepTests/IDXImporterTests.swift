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

        // MARK: header sizes (issue 13)

        /// An IDX header with raw 32-bit dimensions (any value up to 0xFFFFFFFF), then `data`.
        static func rawIDX(_ dims: [UInt32], data: [UInt8] = []) -> [UInt8] {
            var bytes: [UInt8] = [0, 0, 0x08, UInt8(dims.count)]
            for d in dims { bytes += [UInt8(d >> 24), UInt8(d >> 16 & 0xFF), UInt8(d >> 8 & 0xFF), UInt8(d & 0xFF)] }
            return bytes + data
        }

        /// Headers whose dimensions cannot describe the file: each a usage error naming the file,
        /// never a trap, whatever the dimensions multiply to.
        static let lyingHeaders: [(name: String, bytes: [UInt8], mentions: [String])] = [
            // Products past Int.max (2^64 and beyond; the product overflows at different dimensions).
            ("four-max.idx", rawIDX([0xFFFF_FFFF, 0xFFFF_FFFF, 0xFFFF_FFFF, 0xFFFF_FFFF], data: [1, 2, 3]), ["shape [4294967295, 4294967295"]),
            ("two-max.idx", rawIDX([0xFFFF_FFFF, 0xFFFF_FFFF], data: [1]), ["4294967295"]),
            ("2-to-the-64.idx", rawIDX([0x8000_0000, 0x8000_0000, 4]), ["2147483648"]),
            ("late-overflow.idx", rawIDX([1, 1, 0xFFFF_FFFF, 0xFFFF_FFFF, 1]), ["4294967295"]),
            // A product of exactly Int.max (7·7·73·127 · 337·92737 · 649657): adding the header overflows.
            ("sum-overflow.idx", rawIDX([454_279, 31_252_369, 649_657]), ["454279"]),
            // Products that fit but claim more bytes than the file has.
            ("huge-claim.idx", rawIDX([0xFFFF_FFFF, 0xFF_FFFF], data: Array(repeating: 9, count: 10)), ["promises", "has 10"]),
            ("one-short.idx", rawIDX([600, 28, 28], data: Array(repeating: 1, count: 600 * 28 * 28 - 1)), ["470400", "470399"]),
            ("no-data.idx", rawIDX([2, 2]), ["promises 4", "has 0"]),
            // Zero dimensions: no dimensions at all, or an empty one anywhere.
            ("rank-zero.idx", rawIDX([]), ["0 dimensions"]),
            ("zero-first.idx", rawIDX([0, 28, 28]), ["dimension 1 of 3 is 0"]),
            ("zero-last.idx", rawIDX([5, 0]), ["dimension 2 of 2 is 0"]),
            ("zero-with-data.idx", rawIDX([3, 0, 4], data: [1, 2]), ["dimension 2 of 3 is 0"]),
        ]

        @Test func headerDimensionsAreCheckedAgainstTheBytes() throws {
            let dir = try TemporaryDirectory()
            for bad in Self.lyingHeaders {
                try writeBytes(bad.bytes, to: dir.file(bad.name))
                expectUsage([dir.file(bad.name)] + bad.mentions) { try IDXImporter.read(dir.file(bad.name)) }
            }
            #expect(IDXImporter.elementCount([0xFFFF_FFFF, 0xFFFF_FFFF]) == nil)
            #expect(IDXImporter.elementCount([1 << 31, 1 << 31, 2]) == nil)
            #expect(IDXImporter.elementCount([1 << 31, 1 << 31]) == 1 << 62)
            #expect(IDXImporter.elementCount([]) == 1)
        }

        /// Every file in `folder` (names only, "." and ".." left out).
        static func entries(_ folder: String) -> [String] {
            guard let d = opendir(folder) else { return [] }
            defer { closedir(d) }
            var names: [String] = []
            while let entry = readdir(d) {
                let name = withUnsafeBytes(of: entry.pointee.d_name) { String(decoding: $0.prefix { $0 != 0 }, as: UTF8.self) }
                if name != "." && name != ".." { names.append(name) }
            }
            return names.sorted()
        }

        /// A failed import leaves nothing: no `.tmp`, no output, no folder made for it, and an
        /// output that was already there is untouched, whichever of the four files is bad.
        @Test func aFailedImportLeavesNothingBehind() throws {
            let dir = try TemporaryDirectory()
            try writeBytes(Self.idx(shape: [3, 2, 4], data: Self.images), to: dir.file("x.idx"))
            try writeBytes(Self.idx(shape: [3], data: Self.labels), to: dir.file("y.idx"))
            for bad in Self.lyingHeaders + [("labels-of-4.idx", Self.idx(shape: [4], data: [0, 1, 2, 3]), ["give matching files"])] {
                try writeBytes(bad.bytes, to: dir.file(bad.name))
                for position in 0..<4 {
                    var inputs = [dir.file("x.idx"), dir.file("y.idx"), dir.file("x.idx"), dir.file("y.idx")]
                    inputs[position] = dir.file(bad.name)
                    // Into a fresh folder (which must not remain) and over an existing output (which must stay).
                    expectUsage([bad.name]) {
                        try IDXImporter.importFiles(trainImages: inputs[0], trainLabels: inputs[1], testImages: inputs[2],
                                                    testLabels: inputs[3], output: dir.file("new/deeper/d.h5"))
                    }
                    #expect(!fileExists(dir.file("new")), "\(bad.name) at \(position): a folder was left behind")
                    try writeBytes([1, 2, 3], to: dir.file("old.h5"))
                    expectUsage([bad.name]) {
                        try IDXImporter.importFiles(trainImages: inputs[0], trainLabels: inputs[1], testImages: inputs[2],
                                                    testLabels: inputs[3], output: dir.file("old.h5"))
                    }
                    #expect(try readBytes(dir.file("old.h5")) == [1, 2, 3], "\(bad.name) at \(position): the existing output changed")
                }
                unlink(dir.file(bad.name))
                #expect(Self.entries(dir.path) == ["old.h5", "x.idx", "y.idx"], "\(bad.name): left \(Self.entries(dir.path))")
            }
            // Images of one dimension (a labels file given as images) are refused before anything is written.
            try writeBytes(Self.idx(shape: [3], data: [0, 1, 2]), to: dir.file("flat.idx"))
            expectUsage(["flat.idx", "at least 2 dimensions"]) {
                try IDXImporter.importFiles(trainImages: dir.file("x.idx"), trainLabels: dir.file("y.idx"),
                                            testImages: dir.file("flat.idx"), testLabels: dir.file("y.idx"), output: dir.file("new/d.h5"))
            }
            #expect(!fileExists(dir.file("new")))
            unlink(dir.file("flat.idx"))
            // An output under a file is a usage error too, and leaves nothing.
            expectUsage(["x.idx", "not a folder", "--output"]) {
                try IDXImporter.importFiles(trainImages: dir.file("x.idx"), trainLabels: dir.file("y.idx"),
                                            testImages: dir.file("x.idx"), testLabels: dir.file("y.idx"), output: dir.file("x.idx/d.h5"))
            }
            // A failure after the .tmp file is written (here: the rename, onto a folder) removes it too.
            mkdir(dir.file("folder.h5"), 0o755)
            #expect(throws: LockstepError.self) {
                try IDXImporter.importFiles(trainImages: dir.file("x.idx"), trainLabels: dir.file("y.idx"),
                                            testImages: dir.file("x.idx"), testLabels: dir.file("y.idx"), output: dir.file("folder.h5"))
            }
            #expect(Self.entries(dir.path) == ["folder.h5", "old.h5", "x.idx", "y.idx"])
            #expect(Self.entries(dir.file("folder.h5")).isEmpty)
            // And a good import writes the output only, with no .tmp beside it.
            let counts = try IDXImporter.importFiles(trainImages: dir.file("x.idx"), trainLabels: dir.file("y.idx"),
                                                     testImages: dir.file("x.idx"), testLabels: dir.file("y.idx"), output: dir.file("made/d.h5"))
            #expect(counts.train == 3 && counts.test == 3)
            #expect(Self.entries(dir.file("made")) == ["d.h5"])
            #expect(try HDF5File.open(dir.file("made/d.h5")).info("/test/x").shape == [3, 2, 4])
        }
    }
}
