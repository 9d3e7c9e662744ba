// HDF5File's messages for files it cannot use, each made for real by h5py (/usr/bin/python3 with
// Debian's python3-h5py): locked by a writer, truncated, compressed with a filter this HDF5
// lacks (LZF), dangling soft links and external links to missing files.
import Foundation
import Testing
import Lockstep

extension Subprocess {
    static let python = "/usr/bin/python3"

    /// Runs an h5py script; fails the test (with Python's output) unless it succeeds.
    static func h5py(_ script: String, sourceLocation: SourceLocation = #_sourceLocation) throws {
        let result = try run([python, "-c", "import h5py, numpy as np\n" + script])
        try #require(result.exited && result.status == 0,
                     "h5py script failed (needs python3-h5py for \(python)): \(result.output)", sourceLocation: sourceLocation)
    }
}

extension FileTests {
    @Suite struct HDF5DiagnosticsTests {
        @Test func fileOpenForWritingByAnotherProcessSaysItIsLocked() throws {
            let dir = try TemporaryDirectory()
            let path = dir.file("busy.h5")
            // The writer prints "ready" once the file exists and holds it open until its stdin closes.
            let writer = Process()
            writer.executableURL = URL(fileURLWithPath: Subprocess.python)
            writer.arguments = ["-c", """
                import sys, h5py, numpy as np
                f = h5py.File(sys.argv[1], "w")
                f["x"] = np.arange(3)
                f.flush()
                print("ready", flush=True)
                sys.stdin.read()
                f.close()
                """, path]
            let output = Pipe(), input = Pipe()
            writer.standardOutput = output
            writer.standardInput = input
            try writer.run()
            let ready = String(decoding: output.fileHandleForReading.availableData, as: UTF8.self)
            defer {
                try? input.fileHandleForWriting.close()
                writer.waitUntilExit()
            }
            try #require(ready.contains("ready"), "the h5py writer did not start (needs python3-h5py for \(Subprocess.python))")

            let message = expectUsage([path, "locked by another process", "wait for that writer", "HDF5_USE_FILE_LOCKING=FALSE"]) {
                try HDF5File.open(path)
            }
            #expect(message?.contains("corrupt") == false && message?.contains("truncated") == false)
            // A dataset file names the job key that turns the lock off, next to the variable...
            expectUsage([path, "locked by another process", "data.file_locking = false", "HDF5_USE_FILE_LOCKING=FALSE"]) {
                try HDF5File.open(path, lockingKey: "data.file_locking")
            }
            // ...and with the key set to false the same file opens and reads while the writer holds it.
            #expect(try HDF5File.open(path, fileLocking: false, lockingKey: "data.file_locking").read("/x", as: Int64.self) == [0, 1, 2])

            try input.fileHandleForWriting.close()
            writer.waitUntilExit()
            #expect(writer.terminationStatus == 0)
            #expect(try HDF5File.open(path).read("/x", as: Int64.self) == [0, 1, 2])   // the writer is gone: it opens
        }

        @Test func truncatedFileSaysSoWithBothSizes() throws {
            let dir = try TemporaryDirectory()
            let path = dir.file("cut.h5")
            try Subprocess.h5py("""
                with h5py.File("\(path)", "w") as f:
                    f["train/x"] = np.arange(100000, dtype=np.float32)
                """)
            let full = try readBytes(path)
            try writeBytes(Array(full.prefix(full.count / 2)), to: path)
            expectUsage([path, "is truncated", "it has \(full.count / 2) bytes", "recorded \(full.count)", "copy or write the file again"]) {
                try HDF5File.open(path)
            }
            // A file that is not HDF5 at all is not called truncated or corrupt.
            try writeBytes(Array(repeating: 7, count: 4096), to: dir.file("noise.h5"))
            let message = expectUsage([dir.file("noise.h5"), "not an HDF5 file"]) { try HDF5File.open(dir.file("noise.h5")) }
            #expect(message?.contains("truncated") == false && message?.contains("corrupt") == false)
        }

        @Test func damagedMetadataSaysCorrupt() throws {
            let dir = try TemporaryDirectory()
            let path = dir.file("damaged.h5")
            try Subprocess.h5py("""
                with h5py.File("\(path)", "w") as f:
                    f["train/x"] = np.arange(10, dtype=np.float32)
                """)
            // Break the signature of the local heap that holds the group members' names.
            var bytes = try readBytes(path)
            let heap = Array("HEAP".utf8)
            let at = try #require((0...(bytes.count - 4)).first { Array(bytes[$0..<($0 + 4)]) == heap }, "no local heap in h5py's file")
            bytes.replaceSubrange(at..<(at + 4), with: Array("JUNK".utf8))
            try writeBytes(bytes, to: path)
            expectUsage([path, "is corrupt", "signature", "copy or write the file again"]) { try HDF5File.open(path).read("/train/x", as: Float.self) }
        }

        @Test func datasetCompressedWithAMissingFilterNamesItBeforeReading() throws {
            let dir = try TemporaryDirectory()
            let path = dir.file("lzf.h5")
            try Subprocess.h5py("""
                with h5py.File("\(path)", "w") as f:
                    f.create_dataset("train/x", data=np.arange(60, dtype=np.float32).reshape(10, 6), compression="lzf")
                    f.create_dataset("train/y", data=np.arange(10, dtype=np.int64), compression="gzip", shuffle=True)
                """)
            let file = try HDF5File.open(path)
            let fragments = [path, "/train/x", "lzf filter", "32000", "compression=\"gzip\""]
            expectUsage(fragments) { try file.info("/train/x") }
            expectUsage(fragments) { try file.read("/train/x", as: Float.self) }
            expectUsage(fragments) {
                try Dataset(file: file, xPath: "/train/x", yPath: "/train/y", classes: 10, name: "train")
            }
            // gzip (deflate) and shuffle are built into HDF5: the labels read, and both are listed.
            #expect(try file.read("/train/y", as: Int64.self) == Array(0..<10))
            #expect(file.datasetPaths() == ["/train/x", "/train/y"])
        }

        @Test func danglingSoftLinkSaysWhereItPoints() throws {
            let dir = try TemporaryDirectory()
            let path = dir.file("soft.h5")
            try Subprocess.h5py("""
                with h5py.File("\(path)", "w") as f:
                    f["train/y"] = np.arange(4, dtype=np.int64)
                    f["train/x"] = h5py.SoftLink("/nowhere")
                    f["train/alias"] = h5py.SoftLink("/train/y")
                    f["deep"] = h5py.SoftLink("/missing/group")
                """)
            let file = try HDF5File.open(path)
            let fragments = [path, "/train/x is a soft link to /nowhere, which does not exist"]
            expectUsage(fragments) { try file.info("/train/x") }
            expectUsage(fragments) { try file.read("/train/x", as: Float.self) }
            expectUsage(fragments) { try Dataset(file: file, xPath: "/train/x", yPath: "/train/y", classes: 4, name: "train") }
            // Through a dangling link to a group, the message names the link, not the missing leaf.
            expectUsage(["/deep is a soft link to /missing/group, which does not exist"]) { try file.info("/deep/x") }
            // A soft link that resolves reads like the dataset it names.
            #expect(try file.read("/train/alias", as: Int64.self) == [0, 1, 2, 3])
            #expect(!file.datasetPaths().contains("/train/x"))
        }

        @Test func externalLinkToAMissingFileNamesTheFileAndWhereItWasLookedFor() throws {
            let dir = try TemporaryDirectory()
            let path = dir.file("linking.h5")
            try Subprocess.h5py("""
                with h5py.File("\(path)", "w") as f:
                    f["train/y"] = np.arange(4, dtype=np.int64)
                    f["train/x"] = h5py.ExternalLink("other.h5", "/x")
                """)
            let file = try HDF5File.open(path)
            let fragments = [path, "/train/x is an external link to other.h5:/x", "other.h5 cannot be opened",
                             dir.file("other.h5"), "relative to the linking file's folder"]
            expectUsage(fragments) { try file.info("/train/x") }
            expectUsage(fragments) { try file.read("/train/x", as: Float.self) }

            // The target file exists but lacks the object: that is what the message says then.
            try Subprocess.h5py("""
                with h5py.File("\(dir.file("other.h5"))", "w") as f:
                    f["y"] = np.arange(3, dtype=np.float32)
                """)
            expectUsage(["/train/x is an external link to other.h5:/x", dir.file("other.h5"), "has no readable /x"]) {
                try file.info("/train/x")
            }
            // Once it has /x, the link resolves next to the linking file (this test runs elsewhere).
            try Subprocess.h5py("""
                with h5py.File("\(dir.file("other.h5"))", "w") as f:
                    f["x"] = np.arange(3, dtype=np.float32)
                """)
            #expect(try HDF5File.open(path).read("/train/x", as: Float.self) == [0, 1, 2])
        }
    }
}
