// `lockstep import cifar10|cifar100`: converts the official binary CIFAR archives, read straight
// from the .tar.gz (TarReader), into Lockstep's layout: /train/x uint8 [N, 3, 32, 32] (the
// records' own channel-major order), /train/y uint8 [N], and the same under /test.
//
// The archive is read twice: once for the members' sizes, then again straight into output
// arrays of the right size at each batch's place. The members are not in batch order inside the
// official tarballs, so one pass would have to hold every batch apart and copy them together
// (twice the memory); inflating again costs about a second.

public enum CIFARImporter {
    /// Which of CIFAR-100's two labels becomes /y.
    public enum Labels: String, CaseIterable, Sendable {
        case fine, coarse
    }

    /// What one archive holds and how its records are laid out.
    public struct Format: Sendable {
        public let name: String            // for messages: "CIFAR-10", "CIFAR-100 (fine labels)"
        public let archive: String         // the official file name, for messages
        public let train: [String]         // members, in the order their records go into /train
        public let test: [String]
        public let labelBytes: Int         // label bytes before each image's pixels
        public let labelIndex: Int         // which of them is kept
        public let classes: Int

        public var recordSize: Int { labelBytes + CIFARImporter.pixels }

        public static let cifar10 = Format(
            name: "CIFAR-10", archive: "cifar-10-binary.tar.gz",
            train: (1...5).map { "cifar-10-batches-bin/data_batch_\($0).bin" },
            test: ["cifar-10-batches-bin/test_batch.bin"],
            labelBytes: 1, labelIndex: 0, classes: 10)

        /// CIFAR-100's records carry the coarse label (20 superclasses), then the fine one (100).
        public static func cifar100(_ labels: Labels) -> Format {
            Format(name: "CIFAR-100 (\(labels.rawValue) labels)", archive: "cifar-100-binary.tar.gz",
                   train: ["cifar-100-binary/train.bin"], test: ["cifar-100-binary/test.bin"],
                   labelBytes: 2, labelIndex: labels == .coarse ? 0 : 1, classes: labels == .coarse ? 20 : 100)
        }
    }

    public static let imageShape = [3, 32, 32]
    public static let pixels = 3 * 32 * 32

    /// One split being filled: images and labels for all its members, each member's first record.
    fileprivate struct Split {
        var x: [UInt8]
        var y: [UInt8]
        var first: [String: Int]
        var count: Int { y.count }
    }

    /// Imports `input` into the HDF5 file `output` (written by `writeImportedFile`: nothing is
    /// left behind on failure). Every record is read and checked before anything is written.
    /// Returns the training and test sample counts.
    public static func importArchive(_ input: String, format: Format, output: String,
                                     layout: StorageLayout = .contiguous) throws -> (train: Int, test: Int) {
        let sizes = try memberSizes(input, format)
        var train = try layOut(format.train, sizes, input, format)
        var test = try layOut(format.test, sizes, input, format)
        try fill(&train, &test, input, format, sizes)
        try writeImportedFile(output) { file in
            for (name, split) in [("train", train), ("test", test)] {
                try file.write("/\(name)/x", split.x, shape: [split.count] + imageShape, layout: layout, role: .features)
                try file.write("/\(name)/y", split.y, shape: [split.count], layout: layout, role: .labels)
            }
        }
        return (train.count, test.count)
    }

    /// First pass: the size of every member the format needs (which also proves the whole
    /// archive inflates and parses). A member given twice would make "which one" a guess.
    private static func memberSizes(_ input: String, _ format: Format) throws -> [String: Int] {
        let wanted = Set(format.train + format.test)
        var sizes: [String: Int] = [:]
        let tar = try TarReader(path: input)
        while let member = try tar.next() {
            guard wanted.contains(member.name) else { continue }
            guard sizes.updateValue(member.size, forKey: member.name) == nil else {
                throw LockstepError.usage("\(input): \(member.name) appears twice in the archive: give the official \(format.archive)")
            }
        }
        try tar.finish()
        if let missing = (format.train + format.test).first(where: { sizes[$0] == nil }) {
            throw LockstepError.usage("\(input) has no \(missing): give the official \(format.name) binary archive \(format.archive) (not the python or matlab version)")
        }
        return sizes
    }

    /// Sizes one split from its members' byte counts, with checked arithmetic throughout: each
    /// member must be a whole, non-zero number of records.
    private static func layOut(_ members: [String], _ sizes: [String: Int], _ input: String, _ format: Format) throws -> Split {
        var first: [String: Int] = [:]
        var total = 0
        for name in members {
            let size = sizes[name]!
            guard size > 0, size % format.recordSize == 0 else {
                throw LockstepError.usage("\(input): \(name) has \(size) bytes, not a whole number of \(format.recordSize)-byte records (\(format.labelBytes) label byte\(format.labelBytes == 1 ? "" : "s") + \(pixels) pixels): the archive is corrupt or not \(format.name) binary; download \(format.archive) again")
            }
            first[name] = total
            total += size / format.recordSize           // ≤ the archive's size: cannot overflow
        }
        guard case (let bytes, false) = total.multipliedReportingOverflow(by: pixels) else {
            throw LockstepError.usage("\(input): \(total) images are more than any file can hold: the archive is corrupt")
        }
        return Split(x: [UInt8](repeating: 0, count: bytes), y: [UInt8](repeating: 0, count: total), first: first)
    }

    /// Second pass: each needed member's records, a chunk at a time, into their split's arrays.
    /// Labels are checked as they land; a member whose size changed since the first pass (the
    /// file was replaced meanwhile) is refused rather than half-used.
    private static func fill(_ train: inout Split, _ test: inout Split, _ input: String, _ format: Format,
                             _ sizes: [String: Int]) throws {
        let recordsPerChunk = 256                                       // about 0.8 MB
        var chunk = [UInt8](repeating: 0, count: recordsPerChunk * format.recordSize)
        var seen: Set<String> = []
        let changed = LockstepError.usage("\(input) changed while it was being imported: import it again once nothing writes to it")
        let tar = try TarReader(path: input)
        while let member = try tar.next() {
            let isTrain = train.first[member.name] != nil
            guard isTrain || test.first[member.name] != nil else { continue }
            guard member.size == sizes[member.name], seen.insert(member.name).inserted else { throw changed }
            let records = member.size / format.recordSize
            var done = 0
            while done < records {
                let n = min(recordsPerChunk, records - done)
                try tar.read(into: &chunk, count: n * format.recordSize)
                let bad = isTrain ? train.place(chunk, n, from: member.name, done, format)
                                  : test.place(chunk, n, from: member.name, done, format)
                if let bad {
                    let label = chunk[bad * format.recordSize + format.labelIndex]
                    throw LockstepError.usage("\(input): \(member.name) record \(done + bad + 1) of \(records) has label \(label), but \(format.name) has \(format.classes) classes (0...\(format.classes - 1)): the archive is corrupt or not \(format.name); download \(format.archive) again")
                }
                done += n
            }
        }
        try tar.finish()
        guard seen.count == sizes.count else { throw changed }
    }
}

extension CIFARImporter.Split {
    /// Copies `n` records of `chunk` (records `done...` of `member`) to their images: the kept
    /// label byte, and the 3072 pixels as they are (1024 red, 1024 green, 1024 blue, each 32 rows
    /// of 32: already CHW). Returns the chunk index of the first record whose label is out of
    /// range, copying nothing, or nil.
    fileprivate mutating func place(_ chunk: [UInt8], _ n: Int, from member: String, _ done: Int,
                                    _ format: CIFARImporter.Format) -> Int? {
        let size = format.recordSize
        if let bad = (0..<n).first(where: { Int(chunk[$0 * size + format.labelIndex]) >= format.classes }) { return bad }
        let start = first[member]! + done
        for i in 0..<n { y[start + i] = chunk[i * size + format.labelIndex] }
        let pixels = CIFARImporter.pixels
        chunk.withUnsafeBufferPointer { c in
            x.withUnsafeMutableBufferPointer { x in
                for i in 0..<n {
                    (x.baseAddress! + (start + i) * pixels).update(from: c.baseAddress! + i * size + format.labelBytes, count: pixels)
                }
            }
        }
        return nil
    }
}
