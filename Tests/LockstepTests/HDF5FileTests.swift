// HDF5File: datasets and root attributes written, reopened and read back; bad files and paths are
// usage errors; a failed write is reported with HDF5's reason, and finish() does not hide it.
import Testing
import Lockstep

extension FileTests {
    @Suite struct HDF5FileTests {
        @Test func roundTripsDatasetsAndAttributes() throws {
            let dir = try TemporaryDirectory()
            let path = dir.file("round.h5")
            let floats: [Float] = (0..<24).map { Float($0) * 0.37 - 3 } + []
            let bytes: [UInt8] = [0, 1, 127, 128, 255]
            let ints: [Int64] = [Int64.min, -1, 0, 1, 1 << 40, Int64.max]
            do {
                let file = try HDF5File.create(path)
                try file.write("/a/b/floats", floats, shape: [2, 3, 4])
                try file.write("/bytes", bytes, shape: [5])
                try file.write("/g/ints", ints, shape: [3, 2])
                try file.setAttribute("count", Int64(-42))
                try file.setAttribute("label", "héllo, \"world\"")
                try file.setAttribute("words", [UInt64.max, 0, 0xDEAD_BEEF_CAFE_F00D])
                try file.setAttribute("replaced", Int64(1))
                try file.setAttribute("replaced", Int64(2))     // rewriting an attribute replaces it
                file.close()
            }
            let file = try HDF5File.open(path)
            #expect(try file.read("/a/b/floats", as: Float.self) == floats)
            #expect(try file.read("/bytes", as: UInt8.self) == bytes)
            #expect(try file.read("/g/ints", as: Int64.self) == ints)
            // HDF5 converts on read.
            #expect(try file.read("/bytes", as: Float.self) == bytes.map(Float.init))
            #expect(try file.read("/bytes", as: Int64.self) == bytes.map(Int64.init))

            let info = try file.info("/a/b/floats")
            #expect(info.shape == [2, 3, 4] && info.kind == .float && info.size == 4)
            #expect(try file.info("/a/b/floats").dtypeName == "float32")
            #expect(try file.info("/a/b/floats").count == 24)
            #expect(try file.info("/bytes").shape == [5])
            #expect(try file.info("/bytes").dtypeName == "uint8")
            #expect(try file.info("/g/ints").shape == [3, 2])
            #expect(try file.info("/g/ints").dtypeName == "int64")

            #expect(try file.int64Attribute("count") == -42)
            #expect(try file.stringAttribute("label") == "héllo, \"world\"")
            #expect(try file.attribute("words", as: UInt64.self) == [UInt64.max, 0, 0xDEAD_BEEF_CAFE_F00D])
            #expect(try file.int64Attribute("replaced") == 2)
            #expect(file.hasAttribute("count") && !file.hasAttribute("nope"))

            #expect(file.exists("/a/b/floats") && file.exists("/a/b") && file.exists("/g/ints"))
            #expect(!file.exists("/a/c") && !file.exists("/a/b/floats/x") && !file.exists("/zzz"))
            #expect(file.members(of: "/") == ["a", "bytes", "g"])
            #expect(file.members(of: "/a/b") == ["floats"])
            #expect(file.members(of: "/missing").isEmpty)
        }

        @Test func missingAndNonHDF5FilesAreUsageErrors() throws {
            let dir = try TemporaryDirectory()
            expectUsage([dir.file("absent.h5")]) { try HDF5File.open(dir.file("absent.h5")) }
            try writeBytes(Array("x,y\n1,2\n".utf8), to: dir.file("table.csv"))
            expectUsage([dir.file("table.csv"), "not an HDF5 file"]) { try HDF5File.open(dir.file("table.csv")) }
            try writeBytes([], to: dir.file("empty.h5"))
            expectUsage([dir.file("empty.h5")]) { try HDF5File.open(dir.file("empty.h5")) }
        }

        @Test func missingDatasetAndAttributeNameThePath() throws {
            let dir = try TemporaryDirectory()
            do {
                let file = try HDF5File.create(dir.file("d.h5"))
                try file.write("/train/x", [Float](repeating: 1, count: 4), shape: [2, 2])
                try file.setAttribute("n", Int64(3))
            }
            let file = try HDF5File.open(dir.file("d.h5"))
            expectUsage(["/train/y", "train"]) { try file.read("/train/y", as: Float.self) }
            expectUsage(["/test/x"]) { try file.info("/test/x") }
            expectUsage(["/train"]) { try file.info("/train") }              // a group, not a dataset
            expectUsage(["missing_attr"]) { try file.int64Attribute("missing_attr") }
            expectUsage(["n", "string"]) { try file.stringAttribute("n") }
        }

        @Test func createInMissingFolderFails() {
            #expect(throws: LockstepError.self) { try HDF5File.create("/nonexistent-lockstep-dir/x.h5") }
        }

        @Test func finishClosesTheFileWhateverHappens() throws {
            let dir = try TemporaryDirectory()
            let file = try HDF5File.create(dir.file("done.h5"))
            try file.write("/x", [Float](repeating: 2, count: 6), shape: [2, 3])
            try file.setAttribute("note", "done")
            try file.finish()
            file.close()                                                    // after finish: nothing to do
            #expect(throws: LockstepError.self) { try file.finish() }       // already closed, said so
            #expect(throws: LockstepError.self) { try file.write("/y", [Float](repeating: 0, count: 1), shape: [1]) }
            let reopened = try HDF5File.open(dir.file("done.h5"))
            #expect(try reopened.read("/x", as: Float.self) == [Float](repeating: 2, count: 6))
            #expect(try reopened.stringAttribute("note") == "done")
        }

        @Test func writeErrorsNameTheObjectAndHDF5sReason() throws {
            let dir = try TemporaryDirectory()
            let file = try HDF5File.create(dir.file("w.h5"))
            try file.write("/a", [Int64(1)], shape: [1])
            do {
                try file.write("/a", [Int64(2)], shape: [1])       // the name is taken
                Issue.record("writing /a twice did not fail")
            } catch let error as LockstepError {
                guard case .runtime(let message) = error else { Issue.record("not a runtime error: \(error)"); return }
                #expect(message.hasPrefix("cannot write dataset /a to \(dir.file("w.h5")): "), "\(message)")
                #expect(message.contains("already exists") && !message.contains("\n"), "\(message)")
            }
            try file.write("/b", [Int64(3)], shape: [1])
            // The caught failure still makes the file incomplete: finish() says so, and closes it.
            #expect(throws: LockstepError.runtime("cannot finish writing \(dir.file("w.h5")): writing dataset /a failed earlier: name already exists")) {
                try file.finish()
            }
            #expect(try HDF5File.open(dir.file("w.h5")).read("/b", as: Int64.self) == [3])
        }

    }
}

