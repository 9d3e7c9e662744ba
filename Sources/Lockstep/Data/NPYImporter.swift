// `lockstep import npy` and `lockstep import npz`: NumPy arrays (files from numpy.save, archives
// from numpy.savez or numpy.savez_compressed) into /train/x, /train/y, /test/x, /test/y, streamed
// block by block. The test split is a second pair of arrays or the last ⌈F·N⌉ rows (TestFraction).

public enum NPYImporter {
    /// Where the test split comes from.
    public enum TestSplit: Sendable {
        /// Test features and labels of their own (files for npy, member names for npz).
        case arrays(x: String, y: String)
        case fraction(TestFraction)
    }

    /// Features and labels of one split, checked to match.
    struct Pair {
        let x: NPYArray
        let y: NPYArray

        init(x: NPYArray, y: NPYArray) throws {
            try y.requireLabels()
            guard x.rows == y.rows else {
                throw LockstepError.usage("\(x.name) has \(x.rows) rows but \(y.name) has \(y.rows) labels: give features and labels of the same length")
            }
            self.x = x
            self.y = y
        }
    }

    /// Imports .npy files. Returns the training and test sample counts.
    public static func importFiles(x: String, y: String, test: TestSplit, output: String,
                                   layout: StorageLayout = .contiguous) throws -> (train: Int, test: Int) {
        func open(_ path: String) throws -> NPYArray { try NPYArray(FileByteSource(InputFile(path, what: ".npy file"))) }
        let train = try Pair(x: open(x), y: open(y))
        switch test {
        case .arrays(let tx, let ty): return try write(train, .pair(try Pair(x: open(tx), y: open(ty))), output, layout)
        case .fraction(let f): return try write(train, .fraction(f), output, layout)
        }
    }

    /// The arrays an .npz import uses: the names given, else x_train/y_train (with x_test/y_test
    /// when present), else x/y.
    public static func importArchive(_ path: String, x: String?, y: String?, test: TestSplit?, output: String,
                                     layout: StorageLayout = .contiguous) throws -> (train: Int, test: Int) {
        let archive = try ZipArchive(path: path)
        let names = archive.entries.compactMap { $0.name.hasSuffix(".npy") ? String($0.name.dropLast(4)) : nil }
        let has = Set(names)
        let listed = names.isEmpty ? "no arrays" : "arrays " + names.joined(separator: ", ")
        let (xName, yName): (String, String)
        switch (x, y) {
        case let (x?, y?): (xName, yName) = (x, y)
        case (nil, nil) where has.contains("x_train") && has.contains("y_train"): (xName, yName) = ("x_train", "y_train")
        case (nil, nil) where has.contains("x") && has.contains("y"): (xName, yName) = ("x", "y")
        case (nil, nil):
            throw LockstepError.usage("\(path) has no x_train and y_train (nor x and y) but \(listed): name the arrays with --x and --y")
        default:
            throw LockstepError.usage("give both --x and --y (the features' and the labels' array names in \(path)), or neither")
        }
        func open(_ name: String) throws -> NPYArray {
            guard let entry = archive.entry(name + ".npy") else {
                throw LockstepError.usage("\(path) has no array \(name) (it has \(listed)): give the name with --x, --y, --test-x or --test-y")
            }
            let member = try archive.open(entry)
            return try NPYArray(member, end: { try member.finish() })
        }
        let train = try Pair(x: open(xName), y: open(yName))
        var test = test
        if test == nil, has.contains("x_test"), has.contains("y_test"), xName != "x_test" {
            test = .arrays(x: "x_test", y: "y_test")
        }
        guard let test else {
            throw LockstepError.usage("\(path): no test split (no x_test and y_test arrays): give --test-fraction F, or --test-x and --test-y")
        }
        switch test {
        case .arrays(let tx, let ty): return try write(train, .pair(try Pair(x: open(tx), y: open(ty))), output, layout)
        case .fraction(let f): return try write(train, .fraction(f), output, layout)
        }
    }

    enum Test {
        case pair(Pair)
        case fraction(TestFraction)
    }

    /// Creates the four datasets and streams the arrays into them.
    static func write(_ train: Pair, _ test: Test, _ output: String, _ layout: StorageLayout) throws -> (train: Int, test: Int) {
        let counts: (train: Int, test: Int)
        switch test {
        case .pair(let t):
            guard t.x.rowShape == train.x.rowShape else {
                throw LockstepError.usage("\(t.x.name) has rows of shape \(t.x.rowShape) but \(train.x.name) has \(train.x.rowShape): give test features shaped like the training ones")
            }
            counts = (train.x.rows, t.x.rows)
        case .fraction(let f):
            counts = try f.split(train.x.rows, what: train.x.name)
        }
        try writeImportedFile(output) { file in
            let type = train.x.featureType
            func writer(_ path: String, _ type: StoredType, _ shape: [Int], _ role: StorageLayout.Role) throws -> HDF5DatasetWriter {
                try HDF5DatasetWriter(file: file, path: path, type: type, shape: shape, layout: layout, role: role)
            }
            let trainX = try writer("/train/x", type, [counts.train] + train.x.rowShape, .features)
            let trainY = try writer("/train/y", .int64, [counts.train], .labels)
            switch test {
            case .pair(let t):
                let testX = try writer("/test/x", t.x.featureType, [counts.test] + t.x.rowShape, .features)
                let testY = try writer("/test/y", .int64, [counts.test], .labels)
                for (pair, x, y) in [(train, trainX, trainY), (t, testX, testY)] {
                    let xs = RowRouter(train: x, test: nil), ys = RowRouter(train: y, test: nil)
                    try pair.x.writeFeatures(to: xs)
                    try pair.y.writeLabels(to: ys)
                    try xs.finish()
                    try ys.finish()
                }
            case .fraction:
                let testX = try writer("/test/x", type, [counts.test] + train.x.rowShape, .features)
                let testY = try writer("/test/y", .int64, [counts.test], .labels)
                let xs = RowRouter(train: trainX, test: testX), ys = RowRouter(train: trainY, test: testY)
                try train.x.writeFeatures(to: xs)
                try train.y.writeLabels(to: ys)
                try xs.finish()
                try ys.finish()
            }
        }
        return counts
    }
}
