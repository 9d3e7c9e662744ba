// Malformed inputs to `lockstep import npy|npz|csv`, written by Python: each is one line on
// stderr naming the problem, exit status 2, and no output file nor .tmp file left behind; an
// output file that already existed is left as it was.

import Foundation
import Lockstep
import Testing

extension MultiRank {
    @Suite struct ImportErrors {
        struct Case: CustomTestStringConvertible, Sendable {
            let name: String
            /// Python writing the inputs into the current folder.
            let setup: String
            /// `lockstep import` arguments; "@" stands for the folder.
            let args: [String]
            /// What the one line must say.
            let fragment: String
            var testDescription: String { name }
        }

        static let header = "rng = np.random.default_rng(0)\n"
        static let csvSetup = """
            def write(name, rows):
                with open(name, "w", newline="") as f: csv.writer(f).writerows(rows)
            head = ["a", "b", "c", "d", "e", "label"]
            good = [[1, 2, 3, 4, 5, 0]] * 20

            """

        static let cases: [Case] = [
            Case(name: "ragged CSV row", setup: csvSetup + "write('in.csv', [head] + good[:15] + [[1, 2, 3, 4, 0]] + good)",
                 args: ["csv", "--input", "@/in.csv", "--test-fraction", "0.2"], fragment: "line 17 has 5 fields, the header has 6"),
            Case(name: "non-numeric cell", setup: csvSetup + "write('in.csv', [head] + good[:3] + [[1, 'abc', 3, 4, 5, 0]] + good)",
                 args: ["csv", "--input", "@/in.csv", "--test-fraction", "0.2"], fragment: "line 5, column 1 (\"b\"): \"abc\" is not a number"),
            Case(name: "non-integer label", setup: csvSetup + "write('in.csv', [head] + good + [[1, 2, 3, 4, 5, 2.5]])",
                 args: ["csv", "--input", "@/in.csv", "--test-fraction", "0.2"], fragment: "line 22, column 5 (\"label\"): label \"2.5\" is not a whole number"),
            Case(name: "negative label", setup: csvSetup + "write('in.csv', good + [[1, 2, 3, 4, 5, -1]])",
                 args: ["csv", "--input", "@/in.csv", "--test-fraction", "0.2"], fragment: "line 21, column 5: label \"-1\" is negative"),
            Case(name: "ragged test CSV", setup: csvSetup + "write('in.csv', [head] + good); write('t.csv', [head[:5]] + [r[:5] for r in good])",
                 args: ["csv", "--input", "@/in.csv", "--test-input", "@/t.csv"], fragment: "t.csv has 5 columns but the training file has 6"),
            Case(name: "unclosed quote", setup: "open('in.csv', 'w').write('a,label\\n1,0\\n\"2,1\\n3,0\\n')",
                 args: ["csv", "--input", "@/in.csv", "--test-fraction", "0.2"], fragment: "line 3: a quoted field is never closed"),
            Case(name: "label column missing", setup: csvSetup + "write('in.csv', [head] + good)",
                 args: ["csv", "--input", "@/in.csv", "--test-fraction", "0.2", "--label-column", "target"], fragment: "no column of that name"),
            Case(name: "NPZ without the named array", setup: header + "np.savez('a.npz', x=np.ones((4, 2)), y=np.arange(4))",
                 args: ["npz", "--input", "@/a.npz", "--x", "x", "--y", "labels", "--test-fraction", "0.5"], fragment: "a.npz has no array labels (it has arrays x, y)"),
            Case(name: "NPZ without x_train or x", setup: header + "np.savez('a.npz', np.ones((4, 2)), np.arange(4))",
                 args: ["npz", "--input", "@/a.npz", "--test-fraction", "0.5"], fragment: "has no x_train and y_train (nor x and y) but arrays arr_0, arr_1"),
            Case(name: "NPZ of mismatched lengths", setup: header + "np.savez_compressed('a.npz', x_train=np.ones((6, 2)), y_train=np.arange(5), x_test=np.ones((2, 2)), y_test=np.arange(2))",
                 args: ["npz", "--input", "@/a.npz"], fragment: "has 6 rows but"),
            Case(name: "NPY of mismatched lengths", setup: header + "np.save('x.npy', rng.standard_normal((10, 3))); np.save('y.npy', np.arange(9))",
                 args: ["npy", "--x", "@/x.npy", "--y", "@/y.npy", "--test-fraction", "0.2"], fragment: "x.npy has 10 rows but"),
            Case(name: "truncated NPY", setup: header + "np.save('x.npy', np.ones((10, 3))); np.save('y.npy', np.arange(10)); open('x.npy', 'r+b').truncate(200)",
                 args: ["npy", "--x", "@/x.npy", "--y", "@/y.npy", "--test-fraction", "0.2"], fragment: "(truncated?)"),
            Case(name: "Fortran-order NPY", setup: header + "np.save('x.npy', np.asfortranarray(np.ones((10, 3)))); np.save('y.npy', np.arange(10))",
                 args: ["npy", "--x", "@/x.npy", "--y", "@/y.npy", "--test-fraction", "0.2"], fragment: "Fortran order"),
            Case(name: "negative NPY label", setup: header + "np.save('x.npy', np.ones((10, 3))); np.save('y.npy', np.arange(10) - 3)",
                 args: ["npy", "--x", "@/x.npy", "--y", "@/y.npy", "--test-fraction", "0.2"], fragment: "label -3 at row 0 is negative"),
            Case(name: "non-finite NPY feature", setup: header + "x = np.ones((10, 3)); x[7, 1] = np.nan; np.save('x.npy', x); np.save('y.npy', np.arange(10))",
                 args: ["npy", "--x", "@/x.npy", "--y", "@/y.npy", "--test-fraction", "0.2"], fragment: "row 7 holds nan"),
            Case(name: "damaged NPZ", setup: header + "np.savez_compressed('a.npz', x=rng.standard_normal((100, 30)), y=np.arange(100)); b = bytearray(open('a.npz', 'rb').read()); b[300:340] = bytes(40); open('a.npz', 'wb').write(b)",
                 args: ["npz", "--input", "@/a.npz", "--test-fraction", "0.2"], fragment: "damaged"),
            Case(name: "bad test fraction", setup: header + "np.save('x.npy', np.ones((10, 3))); np.save('y.npy', np.arange(10))",
                 args: ["npy", "--x", "@/x.npy", "--y", "@/y.npy", "--test-fraction", "20%"], fragment: "--test-fraction must be a decimal between 0 and 1"),
            Case(name: "gzip with a bad level of chunking", setup: header + "np.save('x.npy', np.ones((10, 3))); np.save('y.npy', np.arange(10))",
                 args: ["npy", "--x", "@/x.npy", "--y", "@/y.npy", "--test-fraction", "0.2", "--chunk-rows", "0", "--compression", "gzip"],
                 fragment: "--chunk-rows must be at least 1"),
        ]

        @Test(arguments: cases)
        func malformedInputIsOneLineExitTwoNoOutput(_ c: Case) throws {
            let dir = try Scratch.folder("imp-bad")
            try ImportRoundTrips.python(Self.header + c.setup, in: dir)
            let before = try FileManager.default.contentsOfDirectory(atPath: dir).sorted()
            let args = c.args.map { $0.replacingOccurrences(of: "@", with: dir) } + ["-o", dir + "/out/data.h5"]
            let launch = try Launcher.run(ranks: nil, ["import"] + args, timeout: 60)
            #expect(launch.exitCode == 2, "\(c.name): exit \(launch.exitCode): \(launch.stderr)")
            let lines = launch.stderr.split(separator: "\n")
            #expect(lines.count == 1, "\(c.name): \(launch.stderr)")
            #expect(launch.lockstepErrors.first?.contains(c.fragment) == true, "\(c.name): \(launch.stderr)")
            // Nothing written: no output, no .tmp, not even the folder made for it.
            #expect(try FileManager.default.contentsOfDirectory(atPath: dir).sorted() == before, "\(c.name)")
        }

        @Test func aFailedImportLeavesAnExistingOutputAsItWas() throws {
            let dir = try Scratch.folder("imp-keep")
            try ImportRoundTrips.python(Self.csvSetup + """
                write('good.csv', [head] + good)
                write('bad.csv', [head] + good + [[1, 2, 3, 4, 5, 'cat']])
                """, in: dir)
            try ImportRoundTrips.importing(["csv", "--input", dir + "/good.csv", "--test-fraction", "0.25", "-o", dir + "/data.h5"])
            let kept = try Data(contentsOf: URL(fileURLWithPath: dir + "/data.h5"))
            let launch = try Launcher.run(ranks: nil, ["import", "csv", "--input", dir + "/bad.csv", "--test-fraction", "0.25", "-o", dir + "/data.h5"])
            #expect(launch.exitCode == 2)
            #expect(launch.lockstepErrors == ["lockstep: \(dir)/bad.csv: line 22, column 5 (\"label\"): label \"cat\" is not a number; labels must be class indices 0, 1, 2, …: fix it, or choose the label column with --label-column"])
            #expect(try Data(contentsOf: URL(fileURLWithPath: dir + "/data.h5")) == kept)
            #expect(!FileManager.default.fileExists(atPath: dir + "/data.h5.tmp"))
        }
    }
}
