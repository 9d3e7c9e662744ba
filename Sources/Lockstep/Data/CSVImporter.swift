// `lockstep import csv`: one row per sample, one column of labels, the others features, into
// /train/x (float32, or uint8 with --features uint8) and /train/y (int64). The file is read
// twice through CSVReader: pass 1 checks every row and counts them (so the datasets' sizes are
// known before they are created, and any mistake is reported before an output file exists),
// pass 2 writes blocks of rows. Memory stays a block, whatever the file's size.

public enum CSVImporter {
    public enum Header: String, Sendable, CaseIterable {
        /// The first line is a header when one of its cells is not a number.
        case auto, yes, no
    }

    public enum Features: String, Sendable, CaseIterable {
        case float32, uint8
    }

    public struct Options: Sendable {
        /// A header name, or a 0-based index (negative counts from the end); nil: a column named
        /// `label` if there is a header, else the last column.
        public var labelColumn: String?
        public var header: Header
        /// Each sample's shape (its product must be the feature column count); nil: [columns − 1].
        public var shape: [Int]?
        public var delimiter: UInt8
        public var features: Features

        public init(labelColumn: String? = nil, header: Header = .auto, shape: [Int]? = nil,
                    delimiter: UInt8 = UInt8(ascii: ","), features: Features = .float32) {
            self.labelColumn = labelColumn
            self.header = header
            self.shape = shape
            self.delimiter = delimiter
            self.features = features
        }
    }

    public enum TestSplit: Sendable {
        /// A second CSV file with the same columns.
        case file(String)
        case fraction(TestFraction)
    }

    /// What pass 1 learned about a file.
    struct Scan {
        let rows: Int
        let columns: Int
        let names: [String]?
        let label: Int
        let sampleShape: [Int]
    }

    /// Imports `path` (and the test file, if one is given) into `output`. Returns the training and
    /// test sample counts.
    public static func importFile(_ path: String, test: TestSplit, options: Options, output: String,
                                  layout: StorageLayout = .contiguous) throws -> (train: Int, test: Int) {
        let reader = try CSVReader(path: path, delimiter: options.delimiter)
        let scan = try self.scan(reader, options, like: nil)
        var testReader: CSVReader?
        let counts: (train: Int, test: Int)
        var testScan: Scan?
        switch test {
        case .file(let testPath):
            let r = try CSVReader(path: testPath, delimiter: options.delimiter)
            let s = try self.scan(r, options, like: scan)
            (testReader, testScan) = (r, s)
            counts = (scan.rows, s.rows)
        case .fraction(let f):
            counts = try f.split(scan.rows, what: path)
        }
        let type: StoredType = options.features == .uint8 ? .uint8 : .float32
        try writeImportedFile(output) { file in
            func writer(_ p: String, _ t: StoredType, _ shape: [Int], _ role: StorageLayout.Role) throws -> HDF5DatasetWriter {
                try HDF5DatasetWriter(file: file, path: p, type: t, shape: shape, layout: layout, role: role)
            }
            let trainX = try writer("/train/x", type, [counts.train] + scan.sampleShape, .features)
            let trainY = try writer("/train/y", .int64, [counts.train], .labels)
            let testX = try writer("/test/x", type, [counts.test] + scan.sampleShape, .features)
            let testY = try writer("/test/y", .int64, [counts.test], .labels)
            if let testReader, let testScan {
                try write(reader, scan, options, x: RowRouter(train: trainX, test: nil), y: RowRouter(train: trainY, test: nil))
                try write(testReader, testScan, options, x: RowRouter(train: testX, test: nil), y: RowRouter(train: testY, test: nil))
            } else {
                try write(reader, scan, options, x: RowRouter(train: trainX, test: testX), y: RowRouter(train: trainY, test: testY))
            }
        }
        return counts
    }

    // MARK: Pass 1

    /// Reads the whole file once, checking every row; `like` is the training file's scan, which
    /// a test file must match column for column.
    static func scan(_ r: CSVReader, _ options: Options, like train: Scan?) throws -> Scan {
        guard try r.next() else { throw LockstepError.usage("\(r.path) is empty: give a CSV file with one row per sample") }
        var cells = CellParser()
        let columns = r.fieldCount
        let isHeader: Bool
        switch options.header {
        case .yes: isHeader = true
        case .no: isHeader = false
        case .auto: isHeader = (0..<columns).contains { cells.double(r.field($0)) == nil }
        }
        let names = isHeader ? (0..<columns).map { r.text($0) } : nil
        guard columns >= 2 else {
            throw LockstepError.usage("\(r.path): line \(r.line) has \(columns) field\(columns == 1 ? "" : "s"): each row needs a label and at least one feature\(options.delimiter == UInt8(ascii: ",") ? " (is the delimiter not a comma? give --delimiter)" : "")")
        }
        let label: Int, sampleShape: [Int]
        if let train {
            guard columns == train.columns else {
                throw LockstepError.usage("\(r.path) has \(columns) columns but the training file has \(train.columns): give a test file with the same columns")
            }
            if let names, let trainNames = train.names, names != trainNames {
                throw LockstepError.usage("\(r.path): its header differs from the training file's: give a test file with the same columns in the same order")
            }
            (label, sampleShape) = (train.label, train.sampleShape)
        } else {
            label = try labelIndex(options.labelColumn, names: names, columns: columns, path: r.path)
            sampleShape = try self.sampleShape(options.shape, features: columns - 1)
        }
        let context = Row(path: r.path, columns: columns, names: names, label: label, features: options.features,
                          headerSaid: names != nil ? "the header has" : "the first row has")
        var rows = 0
        var scratch = [UInt8](repeating: 0, count: (columns - 1) * 4)
        var y: Int64 = 0
        if names == nil {
            try scratch.withUnsafeMutableBytes { try context.parse(r, into: $0.baseAddress!, label: &y, cells: &cells, first: true) }
            rows = 1
        }
        while try r.next() {
            try scratch.withUnsafeMutableBytes { try context.parse(r, into: $0.baseAddress!, label: &y, cells: &cells, first: rows == 0) }
            rows += 1
        }
        guard rows > 0 else { throw LockstepError.usage("\(r.path) has a header but no data rows: give a CSV file with one row per sample") }
        return Scan(rows: rows, columns: columns, names: names, label: label, sampleShape: sampleShape)
    }

    static func labelIndex(_ spec: String?, names: [String]?, columns: Int, path: String) throws -> Int {
        guard let spec else { return names?.firstIndex(of: "label") ?? columns - 1 }
        if let names, let i = names.firstIndex(of: spec) { return i }
        if let i = Int(spec) {
            guard i >= -columns && i < columns else {
                throw LockstepError.usage("--label-column \(spec): \(path) has \(columns) columns, 0 to \(columns - 1) (or -1 for the last)")
            }
            return i < 0 ? columns + i : i
        }
        guard let names else {
            throw LockstepError.usage("--label-column \(spec): \(path) has no header line to find it by name: give the column's index (0 is the first) or --header yes")
        }
        let shown = names.prefix(8).map { show($0) }.joined(separator: ", ") + (names.count > 8 ? ", …" : "")
        throw LockstepError.usage("--label-column \(spec): \(path) has no column of that name (its header has \(shown)): give one of them or an index")
    }

    static func sampleShape(_ shape: [Int]?, features: Int) throws -> [Int] {
        guard let shape else { return [features] }
        guard let product = IDXImporter.elementCount(shape), product == features, shape.allSatisfy({ $0 > 0 }) else {
            throw LockstepError.usage("--shape \(shape.map(String.init).joined(separator: ",")) holds \(IDXImporter.elementCount(shape).map(String.init) ?? "too many") values but each row has \(features) feature columns: give a shape whose product is \(features)")
        }
        return shape
    }

    /// A cell's text for a message: one line, at most 40 characters.
    static func show(_ text: String) -> String {
        var s = String(text.prefix(40).map { $0.isNewline || $0 == "\t" ? " " : $0 })
        if text.count > 40 { s += "…" }
        return "\"" + s + "\""
    }

    // MARK: Pass 2

    /// Reads the file again from the top and writes it in blocks of about 4 MiB.
    static func write(_ r: CSVReader, _ scan: Scan, _ options: Options, x: RowRouter, y: RowRouter) throws {
        r.rewind()
        if scan.names != nil { _ = try r.next() }
        let context = Row(path: r.path, columns: scan.columns, names: scan.names, label: scan.label, features: options.features,
                          headerSaid: scan.names != nil ? "the header has" : "the first row has")
        let rowBytes = x.rowBytes
        let blockRows = max(1, min(scan.rows, (4 << 20) / max(rowBytes, 1)))
        var xs = [UInt8](repeating: 0, count: blockRows * rowBytes)
        var ys = [Int64](repeating: 0, count: blockRows)
        var cells = CellParser()
        var done = 0
        let changed = LockstepError.usage("\(r.path) changed while it was being imported: import it again once nothing writes to it")
        while done < scan.rows {
            let n = min(blockRows, scan.rows - done)
            try xs.withUnsafeMutableBytes { xb in
                for i in 0..<n {
                    guard try r.next() else { throw changed }
                    try context.parse(r, into: xb.baseAddress! + i * rowBytes, label: &ys[i], cells: &cells, first: false)
                }
                try x.append(UnsafeRawBufferPointer(rebasing: xb[0..<(n * rowBytes)]))
            }
            try ys.withUnsafeBytes { try y.append(UnsafeRawBufferPointer(rebasing: $0[0..<(n * 8)])) }
            done += n
        }
        guard try !r.next() else { throw changed }
        try x.finish()
        try y.finish()
    }

    /// How one data row is checked and converted (the same code in both passes, so they agree).
    struct Row {
        let path: String
        let columns: Int
        let names: [String]?
        let label: Int
        let features: Features
        let headerSaid: String

        func column(_ c: Int) -> String {
            "column \(c)" + (names.map { " (\(CSVImporter.show($0[c])))" } ?? "")
        }

        /// Parses the reader's current record: features into `x` (float32 or uint8, in column
        /// order without the label), the label into `label`.
        func parse(_ r: CSVReader, into x: UnsafeMutableRawPointer, label: inout Int64, cells: inout CellParser, first: Bool) throws {
            guard r.fieldCount == columns else {
                throw LockstepError.usage("\(path): line \(r.line) has \(r.fieldCount) field\(r.fieldCount == 1 ? "" : "s"), \(headerSaid) \(columns): every row needs the same number of fields")
            }
            let hint = first && names == nil ? " (if line \(r.line) is a header, give --header yes)" : ""
            var k = 0
            for c in 0..<columns where c != self.label {
                let cell = r.field(c)
                switch features {
                case .float32:
                    guard let v = cells.float(cell) else {
                        throw LockstepError.usage("\(path): line \(r.line), \(column(c)): \(CSVImporter.show(r.text(c))) is not a number: fix the cell\(hint)")
                    }
                    guard v.isFinite else {
                        throw LockstepError.usage("\(path): line \(r.line), \(column(c)): \(CSVImporter.show(r.text(c))) is not a finite float32: features must be finite numbers")
                    }
                    x.storeBytes(of: v, toByteOffset: 4 * k, as: Float.self)
                case .uint8:
                    guard case .value(let v) = cells.label(cell), v <= 255 else {
                        throw LockstepError.usage("\(path): line \(r.line), \(column(c)): \(CSVImporter.show(r.text(c))) is not an integer from 0 to 255 (--features uint8): fix the cell or leave out --features\(hint)")
                    }
                    x.storeBytes(of: UInt8(v), toByteOffset: k, as: UInt8.self)
                }
                k += 1
            }
            let why: String
            switch cells.label(r.field(self.label)) {
            case .value(let v):
                label = v
                return
            case .negative: why = "negative"
            case .notWhole: why = "not a whole number"
            case .notANumber: why = "not a number"
            }
            throw LockstepError.usage("\(path): line \(r.line), \(column(self.label)): label \(CSVImporter.show(r.text(self.label))) is \(why); labels must be class indices 0, 1, 2, …: fix it, or choose the label column with --label-column\(hint)")
        }
    }
}
