// CIFARImporter and TarReader: synthetic CIFAR-10/100 binary archives built here (tar blocks in
// Swift, gzip through zlib), imported and checked pixel by pixel; damaged archives are usage errors.
import Testing
import Lockstep
import CZlib
#if canImport(Glibc)
import Glibc
#endif

extension FileTests {
    @Suite struct CIFARImporterTests {
        // MARK: building archives

        /// A tar member: a regular file ("0"), directory ("5"), or GNU long name ("L").
        struct Entry {
            var name: String
            var data: [UInt8] = []
            var type: UInt8 = UInt8(ascii: "0")
            var prefix = ""
        }

        /// A 512-byte ustar header, checksum included.
        static func header(_ e: Entry) -> [UInt8] {
            var b = [UInt8](repeating: 0, count: 512)
            func put(_ s: String, at o: Int) { for (i, c) in s.utf8.enumerated() { b[o + i] = c } }
            func octal(_ v: Int, width: Int) -> String {
                let digits = String(v, radix: 8)
                return String(repeating: "0", count: width - 1 - digits.count) + digits
            }
            put(e.name, at: 0)
            put(octal(0o644, width: 8), at: 100)
            put(octal(0, width: 8), at: 108)
            put(octal(0, width: 8), at: 116)
            put(octal(e.data.count, width: 12), at: 124)
            put(octal(0, width: 12), at: 136)
            b[156] = e.type
            put("ustar", at: 257)
            put("00", at: 263)
            put(e.prefix, at: 345)
            let sum = b.reduce(0) { $0 + Int($1) } + 8 * 32          // the checksum field counts as spaces
            put(octal(sum, width: 7), at: 148)
            b[155] = 32
            return b
        }

        /// The archive: each entry's header and data padded to 512, then the two zero end blocks.
        static func tar(_ entries: [Entry]) -> [UInt8] {
            var bytes: [UInt8] = []
            for e in entries {
                bytes += header(e) + e.data
                bytes += [UInt8](repeating: 0, count: (512 - e.data.count % 512) % 512)
            }
            return bytes + [UInt8](repeating: 0, count: 1024)
        }

        /// Writes `bytes` gzip-compressed to `path` (zlib's gzwrite: the format the importer reads).
        static func writeGzip(_ bytes: [UInt8], to path: String) throws {
            let gz = try #require(gzopen(path, "wb"))
            let written = bytes.withUnsafeBytes { gzwrite(gz, $0.baseAddress, UInt32($0.count)) }
            #expect(gzclose(gz) == Z_OK)
            try #require(Int(written) == bytes.count)
        }

        /// Pixel (c, h, w) of global sample g: a different value per channel, row and column, so a
        /// swapped channel, transposed image or shifted sample cannot match.
        static func pixel(_ g: Int, _ c: Int, _ h: Int, _ w: Int) -> UInt8 {
            UInt8(truncatingIfNeeded: g * 37 + c * 85 + h * 32 + w)
        }

        /// The 3072 pixels of sample g as a record stores them: R plane, G plane, B plane, rows of 32.
        static func image(_ g: Int) -> [UInt8] {
            var p: [UInt8] = []
            for c in 0..<3 { for h in 0..<32 { for w in 0..<32 { p.append(pixel(g, c, h, w)) } } }
            return p
        }

        static func label10(_ g: Int) -> UInt8 { UInt8(g * 3 % 10) }
        static func coarseLabel(_ g: Int) -> UInt8 { UInt8(g * 7 % 20) }
        static func fineLabel(_ g: Int) -> UInt8 { UInt8((g * 41 + 5) % 100) }

        /// CIFAR-10 records for global samples `range` (labels from `label10` unless `labels` says).
        static func records10(_ range: Range<Int>, labels: [Int: UInt8] = [:]) -> [UInt8] {
            range.flatMap { [labels[$0] ?? label10($0)] + image($0) }
        }

        /// A CIFAR-10 archive: batch k holds k samples (train 0..<15 in batch order), the test batch
        /// samples 100..<103. The members are out of order, as in the official tarball, and reached
        /// every way a name can be spelled: plain, ustar prefix, GNU long name, "./".
        static func cifar10(dropping: String? = nil, replacing: [String: [UInt8]] = [:]) -> [UInt8] {
            let dir = "cifar-10-batches-bin/"
            func batch(_ k: Int) -> [UInt8] {
                let start = (1..<k).reduce(0, +)
                return records10(start..<(start + k))
            }
            var entries = [
                Entry(name: "cifar-10-batches-bin", type: UInt8(ascii: "5")),
                Entry(name: dir + "data_batch_3.bin", data: batch(3)),
                Entry(name: dir + "batches.meta.txt", data: Array("airplane\nautomobile\n".utf8)),
                Entry(name: "././@LongLink", data: Array((dir + "data_batch_2.bin").utf8) + [0], type: UInt8(ascii: "L")),
                Entry(name: "trimmed-by-the-long-name", data: batch(2)),
                Entry(name: dir + "test_batch.bin", data: records10(100..<103)),
                Entry(name: "data_batch_4.bin", data: batch(4), prefix: "cifar-10-batches-bin"),
                Entry(name: "./" + dir + "data_batch_1.bin", data: batch(1)),
                Entry(name: dir + "data_batch_5.bin", data: batch(5)),
                Entry(name: dir + "readme.html", data: Array(repeating: 60, count: 700)),
            ]
            entries.removeAll { $0.name.hasSuffix(dropping ?? "\0") }
            for (i, e) in entries.enumerated() {
                for (suffix, data) in replacing where e.name.hasSuffix(suffix) { entries[i].data = data }
            }
            return tar(entries)
        }

        /// A CIFAR-100 archive: train samples 0..<4, test 200..<202; records are coarse, fine, pixels.
        static func cifar100(coarseOverride: [Int: UInt8] = [:]) -> [UInt8] {
            func records(_ r: Range<Int>) -> [UInt8] { r.flatMap { [coarseOverride[$0] ?? coarseLabel($0), fineLabel($0)] + image($0) } }
            return tar([
                Entry(name: "cifar-100-binary/coarse_label_names.txt", data: Array("aquatic_mammals\n".utf8)),
                Entry(name: "cifar-100-binary/test.bin", data: records(200..<202)),
                Entry(name: "cifar-100-binary/train.bin", data: records(0..<4)),
            ])
        }

        /// Checks one split of `file` sample by sample against the generators.
        static func expectSplit(_ file: HDF5File, _ split: String, samples: [Int], label: (Int) -> UInt8) throws {
            #expect(try file.info("/\(split)/x").shape == [samples.count, 3, 32, 32])
            #expect(try file.info("/\(split)/x").dtypeName == "uint8")
            #expect(try file.info("/\(split)/y").shape == [samples.count])
            #expect(try file.info("/\(split)/y").dtypeName == "uint8")
            let x = try file.read("/\(split)/x", as: UInt8.self)
            let y = try file.read("/\(split)/y", as: UInt8.self)
            for (n, g) in samples.enumerated() {
                #expect(y[n] == label(g), "\(split) sample \(n)")
                #expect(Array(x[(n * 3072)..<((n + 1) * 3072)]) == image(g), "\(split) sample \(n)'s pixels")
            }
            // CHW spelled out for one pixel: x[n, c, h, w] sits at ((n·3 + c)·32 + h)·32 + w.
            #expect(x[((1 * 3 + 2) * 32 + 5) * 32 + 7] == pixel(samples[1], 2, 5, 7))
        }

        // MARK: imports

        @Test func importsCIFAR10InBatchOrder() throws {
            let dir = try TemporaryDirectory()
            try Self.writeGzip(Self.cifar10(), to: dir.file("cifar-10-binary.tar.gz"))
            let counts = try CIFARImporter.importArchive(dir.file("cifar-10-binary.tar.gz"), format: .cifar10, output: dir.file("out/c10.h5"))
            #expect(counts.train == 15 && counts.test == 3)
            #expect(IDXImporterTests.entries(dir.file("out")) == ["c10.h5"])
            let file = try HDF5File.open(dir.file("out/c10.h5"))
            try Self.expectSplit(file, "train", samples: Array(0..<15), label: Self.label10)
            try Self.expectSplit(file, "test", samples: Array(100..<103), label: Self.label10)
            // What training opens: the labels are in range for 10 classes.
            let data = try Dataset(file: file, xPath: "/test/x", yPath: "/test/y", classes: 10, name: "test")
            #expect(data.count == 3)
        }

        @Test func h5pyReadsTheCIFAR10Layout() throws {
            let dir = try TemporaryDirectory()
            try Self.writeGzip(Self.cifar10(), to: dir.file("c.tar.gz"))
            _ = try CIFARImporter.importArchive(dir.file("c.tar.gz"), format: .cifar10, output: dir.file("c.h5"))
            // The same generators in numpy: x[n, c, h, w] = 37g + 85c + 32h + w (mod 256), y = 3g mod 10.
            try Subprocess.h5py("""
                f = h5py.File("\(dir.file("c.h5"))", "r")
                for split, g in (("train", np.arange(15)), ("test", np.arange(100, 103))):
                    x, y = f[split + "/x"], f[split + "/y"]
                    assert x.dtype == np.uint8 and y.dtype == np.uint8 and x.shape == (len(g), 3, 32, 32), (x.dtype, x.shape)
                    c, h, w = np.meshgrid(np.arange(3), np.arange(32), np.arange(32), indexing="ij")
                    want = (g[:, None, None, None] * 37 + c * 85 + h * 32 + w) % 256
                    assert (x[...] == want).all(), split
                    assert (y[...] == g * 3 % 10).all(), split
                """)
        }

        @Test(arguments: [CIFARImporter.Labels.fine, .coarse])
        func importsCIFAR100(_ labels: CIFARImporter.Labels) throws {
            let dir = try TemporaryDirectory()
            try Self.writeGzip(Self.cifar100(), to: dir.file("cifar-100-binary.tar.gz"))
            let counts = try CIFARImporter.importArchive(dir.file("cifar-100-binary.tar.gz"), format: .cifar100(labels), output: dir.file("c100.h5"))
            #expect(counts.train == 4 && counts.test == 2)
            let file = try HDF5File.open(dir.file("c100.h5"))
            let label: (Int) -> UInt8 = labels == .fine ? { Self.fineLabel($0) } : { Self.coarseLabel($0) }
            try Self.expectSplit(file, "train", samples: Array(0..<4), label: label)
            try Self.expectSplit(file, "test", samples: [200, 201], label: label)
            _ = try Dataset(file: file, xPath: "/train/x", yPath: "/train/y", classes: labels == .fine ? 100 : 20, name: "train")
        }

        // MARK: damaged archives

        @Test func truncatedOrForeignInputsAreUsageErrors() throws {
            let dir = try TemporaryDirectory()
            let path = dir.file("c.tar.gz")
            try Self.writeGzip(Self.cifar10(), to: path)
            let whole = try readBytes(path)
            // Cut in the middle of the data, and cut only the gzip trailer (every member is complete,
            // but the stream's CRC and length never arrive).
            for keep in [whole.count / 2, whole.count - 4] {
                try writeBytes(Array(whole.prefix(keep)), to: dir.file("cut.tar.gz"))
                expectUsage([dir.file("cut.tar.gz"), "truncated", "download it again"]) {
                    try CIFARImporter.importArchive(dir.file("cut.tar.gz"), format: .cifar10, output: dir.file("o.h5"))
                }
            }
            // A corrupt byte in the compressed data.
            var flipped = whole
            flipped[whole.count / 3] ^= 0xFF
            try writeBytes(flipped, to: dir.file("flipped.tar.gz"))
            expectUsage([dir.file("flipped.tar.gz")]) {
                try CIFARImporter.importArchive(dir.file("flipped.tar.gz"), format: .cifar10, output: dir.file("o.h5"))
            }
            // The tar without gzip, and gzip of something that is not a tar.
            try writeBytes(Self.cifar10(), to: dir.file("plain.tar"))
            expectUsage(["plain.tar", "not a gzip file"]) {
                try CIFARImporter.importArchive(dir.file("plain.tar"), format: .cifar10, output: dir.file("o.h5"))
            }
            try Self.writeGzip(Self.records10(0..<3), to: dir.file("batch.bin.gz"))
            expectUsage(["batch.bin.gz", "not a tar archive"]) {
                try CIFARImporter.importArchive(dir.file("batch.bin.gz"), format: .cifar10, output: dir.file("o.h5"))
            }
            expectUsage([dir.file("absent.tar.gz")]) {
                try CIFARImporter.importArchive(dir.file("absent.tar.gz"), format: .cifar10, output: dir.file("o.h5"))
            }
            #expect(!fileExists(dir.file("o.h5")) && !fileExists(dir.file("o.h5.tmp")))
        }

        @Test func badMembersAreUsageErrorsThatLeaveNothing() throws {
            let dir = try TemporaryDirectory()
            let cases: [(name: String, archive: [UInt8], format: CIFARImporter.Format, mentions: [String])] = [
                ("missing.tar.gz", Self.cifar10(dropping: "test_batch.bin"), .cifar10,
                 ["has no cifar-10-batches-bin/test_batch.bin", "cifar-10-binary.tar.gz"]),
                ("ragged.tar.gz", Self.cifar10(replacing: ["data_batch_4.bin": Self.records10(6..<10) + [1, 2, 3]]), .cifar10,
                 ["data_batch_4.bin", "12295 bytes", "3073-byte records"]),
                ("empty-batch.tar.gz", Self.cifar10(replacing: ["data_batch_1.bin": []]), .cifar10,
                 ["data_batch_1.bin", "0 bytes"]),
                ("label.tar.gz", Self.cifar10(replacing: ["test_batch.bin": Self.records10(100..<103, labels: [101: 10])]), .cifar10,
                 ["test_batch.bin record 2 of 3", "label 10", "10 classes"]),
                ("coarse.tar.gz", Self.cifar100(coarseOverride: [3: 20]), .cifar100(.coarse),
                 ["train.bin record 4 of 4", "label 20", "20 classes"]),
                ("not-cifar100.tar.gz", Self.cifar10(), .cifar100(.fine), ["has no cifar-100-binary/train.bin"]),
            ]
            try writeBytes([1, 2, 3], to: dir.file("old.h5"))
            for bad in cases {
                try Self.writeGzip(bad.archive, to: dir.file(bad.name))
                expectUsage([dir.file(bad.name)] + bad.mentions) {
                    try CIFARImporter.importArchive(dir.file(bad.name), format: bad.format, output: dir.file("new/deeper/c.h5"))
                }
                #expect(!fileExists(dir.file("new")), "\(bad.name): a folder was left behind")
                expectUsage(bad.mentions) {
                    try CIFARImporter.importArchive(dir.file(bad.name), format: bad.format, output: dir.file("old.h5"))
                }
                #expect(try readBytes(dir.file("old.h5")) == [1, 2, 3], "\(bad.name): the existing output changed")
                unlink(dir.file(bad.name))
            }
            #expect(IDXImporterTests.entries(dir.path) == ["old.h5"])
            // Only the kept label is checked: a coarse label past 19 does not stop a fine import.
            try Self.writeGzip(Self.cifar100(coarseOverride: [3: 20]), to: dir.file("c.tar.gz"))
            #expect(try CIFARImporter.importArchive(dir.file("c.tar.gz"), format: .cifar100(.fine), output: dir.file("f.h5")).train == 4)
        }
    }
}
