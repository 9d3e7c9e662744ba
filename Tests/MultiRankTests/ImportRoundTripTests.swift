// `lockstep import npy|npz|csv` (and the storage options of every importer) end to end: inputs
// written by NumPy and Python's csv module (/usr/bin/python3), the real binary run on them, and
// the output read back with h5py and compared bit for bit: dtype, shape, values, chunks, filter.

import Foundation
import Lockstep
import Testing

extension MultiRank {
    @Suite struct ImportRoundTrips {
        /// Runs a Python script with numpy and h5py imported, in `dir`; fails the test with its output.
        static func python(_ script: String, in dir: String, sourceLocation: SourceLocation = #_sourceLocation) throws {
            let (status, log) = try Interop.runPython("import os, csv, gzip, struct, tarfile, io, numpy as np, h5py\nos.chdir(\(repr(dir)))\n" + script)
            try #require(status == 0, "python failed:\n\(log)", sourceLocation: sourceLocation)
        }

        static func repr(_ s: String) -> String { "'" + s.replacingOccurrences(of: "'", with: "\\'") + "'" }

        /// `lockstep import ARGS`, required to succeed.
        static func importing(_ args: [String], sourceLocation: SourceLocation = #_sourceLocation) throws {
            let launch = try Launcher.run(ranks: nil, ["import"] + args, timeout: 60)
            try #require(launch.exitCode == 0, "lockstep import \(args.joined(separator: " ")): \(launch.stderr)", sourceLocation: sourceLocation)
            #expect(launch.stdout.contains("wrote "), sourceLocation: sourceLocation)
        }

        /// The Python that checks one dataset of the output: dtype, shape, chunks, compression, values.
        static let checker = """
            def same(f, path, want, dtype, chunks=None, compression=None):
                d = f[path]
                assert d.dtype == np.dtype(dtype), (path, d.dtype, dtype)
                assert d.shape == want.shape, (path, d.shape, want.shape)
                assert d.chunks == chunks, (path, d.chunks, chunks)
                assert d.compression == compression, (path, d.compression, compression)
                got = d[...]
                w = np.asarray(want).astype(dtype)
                assert got.tobytes() == w.tobytes(), (path, got.ravel()[:8], w.ravel()[:8])

            """

        @Test func npyRoundTripsBitForBit() throws {
            let dir = try Scratch.folder("imp-npy")
            // uint8 stays uint8; float32 stays float32; float64, big-endian, int16 and float16 become
            // float32 as numpy's astype does (1-D arrays as rows of one value); labels of any integer
            // type (or whole floats) become int64.
            try Self.python("""
                rng = np.random.default_rng(1)
                x8 = rng.integers(0, 256, (37, 2, 3), dtype=np.uint8); np.save("x8.npy", x8)
                xf = rng.standard_normal((37, 2, 3)).astype(np.float32); np.save("xf.npy", xf)
                xd = (rng.standard_normal((37, 5)) * 1e3).astype(">f8"); np.save("xd.npy", xd)
                xi = rng.integers(-30000, 30000, 37, dtype=np.int16); np.save("xi.npy", xi)
                xh = rng.standard_normal(37).astype(np.float16); np.save("xh.npy", xh)
                y = rng.integers(0, 7, 37); np.save("y.npy", y.astype(np.uint8)); np.save("yf.npy", y.astype(np.float64))
                np.save("yi.npy", y.astype(">i4"))
                """, in: dir)
            try Self.importing(["npy", "--x", dir + "/x8.npy", "--y", dir + "/y.npy", "--test-x", dir + "/xf.npy", "--test-y", dir + "/yf.npy",
                                "-o", dir + "/a.h5"])
            try Self.importing(["npy", "--x", dir + "/xd.npy", "--y", dir + "/yi.npy", "--test-fraction", "0.1", "-o", dir + "/b.h5"])
            try Self.importing(["npy", "--x", dir + "/xi.npy", "--y", dir + "/y.npy", "--test-x", dir + "/xh.npy", "--test-y", dir + "/y.npy",
                                "-o", dir + "/c.h5", "--chunk-rows", "5"])
            try Self.python(Self.checker + """
                y = np.load("y.npy").astype(np.int64)
                with h5py.File("a.h5", "r") as f:
                    same(f, "train/x", np.load("x8.npy"), "uint8")
                    same(f, "train/y", y, "int64")
                    same(f, "test/x", np.load("xf.npy"), "float32")
                    same(f, "test/y", y, "int64")
                with h5py.File("b.h5", "r") as f:
                    xd = np.load("xd.npy")
                    # --test-fraction 0.1 of 37: the last ceil(3.7) = 4 rows, in order.
                    same(f, "train/x", xd[:33], "float32")
                    same(f, "test/x", xd[33:], "float32")
                    same(f, "train/y", y[:33], "int64")
                    same(f, "test/y", y[33:], "int64")
                with h5py.File("c.h5", "r") as f:
                    same(f, "train/x", np.load("xi.npy").reshape(37, 1), "float32", chunks=(5, 1))
                    same(f, "test/x", np.load("xh.npy").reshape(37, 1), "float32", chunks=(5, 1))
                    same(f, "train/y", y, "int64")
                """, in: dir)
        }

        @Test(arguments: [false, true])
        func npzFromSavezAndSavezCompressed(compressed: Bool) throws {
            let dir = try Scratch.folder("imp-npz")
            let save = compressed ? "np.savez_compressed" : "np.savez"
            try Self.python("""
                rng = np.random.default_rng(2)
                a = dict(x_train=rng.standard_normal((60, 3, 4)).astype(np.float32), y_train=rng.integers(0, 3, 60),
                         x_test=rng.standard_normal((9, 3, 4)), y_test=rng.integers(0, 3, 9).astype(np.uint16),
                         features=rng.integers(0, 256, (25, 8), dtype=np.uint8), classes=rng.integers(0, 5, 25, dtype=np.int8))
                \(save)("a.npz", **a)
                \(save)("plain.npz", x=a["features"], y=a["classes"])
                """, in: dir)
            try Self.importing(["npz", "--input", dir + "/a.npz", "-o", dir + "/a.h5"])
            try Self.importing(["npz", "--input", dir + "/a.npz", "--x", "features", "--y", "classes", "--test-fraction", "0.2",
                                "-o", dir + "/b.h5", "--compression", "gzip"])
            try Self.importing(["npz", "--input", dir + "/plain.npz", "--test-fraction", ".5", "-o", dir + "/c.h5", "--chunk-rows", "4",
                                "--compression", "gzip"])
            try Self.python(Self.checker + """
                a = np.load("a.npz")
                with h5py.File("a.h5", "r") as f:
                    same(f, "train/x", a["x_train"], "float32")
                    same(f, "train/y", a["y_train"], "int64")
                    same(f, "test/x", a["x_test"], "float32")
                    same(f, "test/y", a["y_test"], "int64")
                with h5py.File("b.h5", "r") as f:
                    # gzip without --chunk-rows: chunks of about 1 MiB of rows, at most the split's rows.
                    same(f, "train/x", a["features"][:20], "uint8", chunks=(20, 8), compression="gzip")
                    same(f, "test/x", a["features"][20:], "uint8", chunks=(5, 8), compression="gzip")
                    same(f, "train/y", a["classes"][:20], "int64", chunks=(20,), compression="gzip")
                    same(f, "test/y", a["classes"][20:], "int64", chunks=(5,), compression="gzip")
                p = np.load("plain.npz")
                with h5py.File("c.h5", "r") as f:
                    same(f, "train/x", p["x"][:12], "uint8", chunks=(4, 8), compression="gzip")
                    same(f, "test/x", p["x"][12:], "uint8", chunks=(4, 8), compression="gzip")
                    same(f, "test/y", p["y"][12:], "int64", chunks=(13,), compression="gzip")
                """, in: dir)
        }

        @Test func csvFromPythonsCsvModule() throws {
            let dir = try Scratch.folder("imp-csv")
            // csv.writer's defaults (\r\n, minimal quoting), a QUOTE_ALL test file, a label column in
            // the middle found by name, float32 values written as Python's repr of their double, ints
            // and exponents; a headerless semicolon file with uint8 pixels and a shape.
            try Self.python("""
                rng = np.random.default_rng(3)
                x = (rng.standard_normal((45, 6)) * np.array([1, 1e-5, 1e6, 1, 3, 100])).astype(np.float32)
                x[:, 4] = np.round(x[:, 4]) + 0.0  # no -0.0: int(-0.0) is written as 0
                y = rng.integers(0, 10, 45)
                np.save("x.npy", x); np.save("y.npy", y)
                def rows(xs, ys):
                    return [[float(v) for v in r[:2]] + [int(l)] + [float(v) for v in r[2:4]] + [int(r[4]), float(r[5])] for r, l in zip(xs, ys)]
                with open("train.csv", "w", newline="") as f:
                    w = csv.writer(f); w.writerow(["a", "b", "label", "c", "d", "e", "f"]); w.writerows(rows(x[:40], y[:40]))
                with open("test.csv", "w", newline="") as f:
                    w = csv.writer(f, quoting=csv.QUOTE_ALL); w.writerow(["a", "b", "label", "c", "d", "e", "f"]); w.writerows(rows(x[40:], y[40:]))
                p = rng.integers(0, 256, (30, 12), dtype=np.uint8); np.save("p.npy", p)
                with open("pixels.csv", "w", newline="") as f:
                    w = csv.writer(f, delimiter=";", lineterminator="\\n")
                    for r, l in zip(p, y[:30]): w.writerow([int(l)] + [int(v) for v in r])
                """, in: dir)
            try Self.importing(["csv", "--input", dir + "/train.csv", "--test-input", dir + "/test.csv", "-o", dir + "/a.h5"])
            try Self.importing(["csv", "--input", dir + "/pixels.csv", "--delimiter", ";", "--label-column", "0", "--features", "uint8",
                                "--shape", "3,2,2", "--test-fraction", "0.1", "-o", dir + "/b.h5", "--chunk-rows", "2"])
            try Self.python(Self.checker + """
                x, y = np.load("x.npy"), np.load("y.npy")
                with h5py.File("a.h5", "r") as f:
                    same(f, "train/x", x[:40], "float32")
                    same(f, "train/y", y[:40], "int64")
                    same(f, "test/x", x[40:], "float32")
                    same(f, "test/y", y[40:], "int64")
                p = np.load("p.npy").reshape(30, 3, 2, 2)
                with h5py.File("b.h5", "r") as f:
                    same(f, "train/x", p[:27], "uint8", chunks=(2, 3, 2, 2))
                    same(f, "test/x", p[27:], "uint8", chunks=(2, 3, 2, 2))
                    same(f, "train/y", y[:27], "int64")
                    same(f, "test/y", y[27:30], "int64")
                """, in: dir)
        }

        @Test func idxAndCIFARTakeChunkRowsAndGzip() throws {
            let dir = try Scratch.folder("imp-idx")
            // Four gzipped IDX files under Fashion-MNIST's names, and a CIFAR-10 binary archive.
            try Self.python("""
                rng = np.random.default_rng(4)
                def idx(name, a):
                    with gzip.open(name, "wb") as f:
                        f.write(struct.pack(">BBBB", 0, 0, 8, a.ndim) + struct.pack(">" + "I" * a.ndim, *a.shape) + a.tobytes())
                for prefix, n in (("train", 20), ("t10k", 6)):
                    im = rng.integers(0, 256, (n, 28, 28), dtype=np.uint8); lb = rng.integers(0, 10, n, dtype=np.uint8)
                    idx(prefix + "-images-idx3-ubyte.gz", im); idx(prefix + "-labels-idx1-ubyte.gz", lb)
                    np.save(prefix + "-im.npy", im); np.save(prefix + "-lb.npy", lb)
                records = {}
                with tarfile.open("cifar-10-binary.tar.gz", "w:gz") as t:
                    for name in ["data_batch_%d.bin" % k for k in range(1, 6)] + ["test_batch.bin"]:
                        r = np.concatenate([rng.integers(0, 10, (3, 1)), rng.integers(0, 256, (3, 3072))], axis=1).astype(np.uint8)
                        records[name] = r
                        info = tarfile.TarInfo("cifar-10-batches-bin/" + name); info.size = r.size
                        t.addfile(info, io.BytesIO(r.tobytes()))
                tr = np.concatenate([records["data_batch_%d.bin" % k] for k in range(1, 6)])
                np.save("c-train.npy", tr); np.save("c-test.npy", records["test_batch.bin"])
                """, in: dir)
            try Self.importing(["fashion-mnist", "--from", dir, "-o", dir + "/f.h5", "--chunk-rows", "3"])
            try Self.importing(["idx", "--train-images", dir + "/train-images-idx3-ubyte.gz", "--train-labels", dir + "/train-labels-idx1-ubyte.gz",
                                "--test-images", dir + "/t10k-images-idx3-ubyte.gz", "--test-labels", dir + "/t10k-labels-idx1-ubyte.gz",
                                "-o", dir + "/i.h5", "--compression", "gzip", "--chunk-rows", "4"])
            try Self.importing(["cifar10", "--input", dir + "/cifar-10-binary.tar.gz", "-o", dir + "/c.h5", "--compression", "gzip"])
            try Self.python(Self.checker + """
                with h5py.File("f.h5", "r") as f:
                    same(f, "train/x", np.load("train-im.npy"), "uint8", chunks=(3, 28, 28))
                    same(f, "train/y", np.load("train-lb.npy"), "uint8")
                    same(f, "test/x", np.load("t10k-im.npy"), "uint8", chunks=(3, 28, 28))
                with h5py.File("i.h5", "r") as f:
                    same(f, "train/x", np.load("train-im.npy"), "uint8", chunks=(4, 28, 28), compression="gzip")
                    same(f, "test/y", np.load("t10k-lb.npy"), "uint8", chunks=(6,), compression="gzip")
                tr, te = np.load("c-train.npy"), np.load("c-test.npy")
                with h5py.File("c.h5", "r") as f:
                    same(f, "train/x", tr[:, 1:].reshape(15, 3, 32, 32), "uint8", chunks=(15, 3, 32, 32), compression="gzip")
                    same(f, "train/y", tr[:, 0], "uint8", chunks=(15,), compression="gzip")
                    same(f, "test/x", te[:, 1:].reshape(3, 3, 32, 32), "uint8", chunks=(3, 3, 32, 32), compression="gzip")
                """, in: dir)
        }

        @Test func aCSVStreamsInMemoryFarBelowItsSize() throws {
            let dir = try Scratch.folder("imp-big")
            // 94 MB of CSV (200000 rows of 39 features and a label); the import's peak resident
            // memory (VmHWM, polled while it runs) must stay far below that: it holds one block.
            try Self.python("""
                import subprocess, time
                with open("big.csv", "w") as f:
                    f.write((",".join(["0.123456789"] * 39) + ",3\\n") * 200000)
                p = subprocess.Popen([\(Self.repr(Launcher.binary)), "import", "csv", "--input", "big.csv", "--test-fraction", "0.1", "-o", "big.h5"],
                                     stdout=subprocess.DEVNULL)
                peak = 0
                while p.poll() is None:
                    try:
                        for line in open("/proc/%d/status" % p.pid):
                            if line.startswith("VmHWM:"): peak = max(peak, int(line.split()[1]))
                    except (FileNotFoundError, ProcessLookupError):
                        pass
                    time.sleep(0.02)
                assert p.returncode == 0, p.returncode
                assert 0 < peak < 64 * 1024, "peak resident memory %d kB" % peak
                with h5py.File("big.h5", "r") as f:
                    assert f["train/x"].shape == (180000, 39) and f["test/y"].shape == (20000,)
                    assert (f["test/x"][-1] == np.float32(0.123456789)).all() and (f["train/y"][:] == 3).all()
                """, in: dir)
            try FileManager.default.removeItem(atPath: dir)
        }

        @Test func aTinyJobTrainsOnAnImportedCSV() throws {
            let dir = try Scratch.folder("imp-train")
            // A learnable set: 20 features, 4 classes from a fixed linear teacher.
            try Self.python("""
                rng = np.random.default_rng(5)
                x = rng.uniform(-1, 1, (300, 20)); w = rng.standard_normal((20, 4))
                y = np.argmax(x @ w, axis=1)
                with open("data.csv", "w", newline="") as f:
                    out = csv.writer(f); out.writerow(["f%d" % i for i in range(20)] + ["label"])
                    out.writerows([list(r) + [int(l)] for r, l in zip(x, y)])
                """, in: dir)
            try Self.importing(["csv", "--input", dir + "/data.csv", "--test-fraction", "0.2", "-o", dir + "/data.h5"])
            try Scratch.job(at: dir + "/job.toml", data: dir + "/data.h5", out: dir + "/run", steps: 20, batch: 24)
            let launch = try Launcher.run(ranks: nil, ["train", dir + "/job.toml"])
            try #require(launch.exitCode == 0, "\(launch.stderr)")
            let losses = try Scratch.losses(dir + "/run")
            #expect(losses.count == 20)
            #expect(losses.allSatisfy { $0.1.isFinite })
            let evals = try Scratch.metrics(dir + "/run").filter { ($0["split"] as? String) == "test" }
            #expect(!evals.isEmpty, "an evaluation on the imported test split")
        }
    }
}
