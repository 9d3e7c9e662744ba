// HDF5File: datasets and root attributes written, reopened and read back; bad files and paths are
// usage errors; a disk that fills up while writing is reported with the OS's reason, and crashes nothing.
import Foundation
import Testing
import Lockstep
#if canImport(Glibc)
import Glibc
#endif

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

        /// Fills a 256 KiB tmpfs as a checkpoint write would, three ways: many tiny datasets (the
        /// object headers outgrow the disk, so finish()'s flush and close fail: HDF5 1.10 then
        /// keeps a freed file's id), many 4 KB ones (their data waits in HDF5's sieve buffer and
        /// fails in H5Dclose), and one larger than the disk (H5Dwrite fails). Then, in the same
        /// process, a file elsewhere works; and a fresh process does it all again and exits, where
        /// HDF5's exit handler used to segfault closing that freed file.
        @Test func fullDiskIsReportedWithTheOSReasonAndCrashesNothing() throws {
            let disk = try SmallFilesystem(size: "256k")
            Self.fillDisk(disk.path)

            let child = try Subprocess.run(["/proc/self/exe", "--testing-library", "swift-testing", "--filter", "fullDiskChildProcess"],
                                           environment: ["LOCKSTEP_FULL_DISK_DIR": disk.path])
            #expect(child.exited && child.status == 0, "the child process \(child.exited ? "exited with \(child.status)" : "died of signal \(child.status)"): \(child.output.suffix(2000))")
            #expect(child.output.contains("fullDiskChildProcess() passed"), "\(child.output.suffix(2000))")
        }

        @Test(.enabled(if: Self.childDisk != nil, "runs only as fullDiskIsReportedWithTheOSReasonAndCrashesNothing's child process"))
        func fullDiskChildProcess() throws {
            Self.fillDisk(try #require(Self.childDisk))
        }

        static var childDisk: String? {
            getenv("LOCKSTEP_FULL_DISK_DIR").map { String(cString: $0) }
        }

        static func fillDisk(_ folder: String, sourceLocation: SourceLocation = #_sourceLocation) {
            let rounds: [(elements: Int, datasets: Int)] = [(16, 20_000), (1000, 1000), (512 * 1024, 1)]
            for (round, (elements, datasets)) in rounds.enumerated() {
                let path = folder + "/step-0000002\(round).h5.tmp"
                let values = [Float](repeating: 0.25, count: elements)
                var writeErrors: [String] = []
                do {
                    let file = try HDF5File.create(path)
                    for i in 0..<datasets {
                        do {
                            try file.write("/model/dense\(i)/weight", values, shape: [elements])
                        } catch {
                            writeErrors.append(Self.runtimeMessage(error, sourceLocation: sourceLocation))
                            break
                        }
                    }
                    do {
                        try file.finish()
                        Issue.record("round \(round): finish() succeeded on a full disk", sourceLocation: sourceLocation)
                    } catch {
                        let message = Self.runtimeMessage(error, sourceLocation: sourceLocation)
                        #expect(message.hasPrefix("cannot finish writing \(path): ") && message.hasSuffix("No space left on device"),
                                "round \(round): \(message)", sourceLocation: sourceLocation)
                    }
                    file.close()                                            // no second H5Fclose: no crash
                    #expect(throws: LockstepError.self, sourceLocation: sourceLocation) { try file.finish() }
                } catch {
                    Issue.record("round \(round): \(error)", sourceLocation: sourceLocation)
                }
                if round > 0 {
                    #expect(writeErrors.count == 1, "round \(round): no write failed", sourceLocation: sourceLocation)
                }
                for message in writeErrors {
                    #expect(message.hasPrefix("cannot write dataset /model/dense"), "\(message)", sourceLocation: sourceLocation)
                    #expect(message.hasSuffix(" to \(path): No space left on device"), "\(message)", sourceLocation: sourceLocation)
                }
                if round == 0 {
                    // What the full disk left behind (its object headers never written) is called corrupt.
                    expectUsage([path, "is corrupt", "copy or write the file again"], sourceLocation: sourceLocation) {
                        try HDF5File.open(path).read("/model/dense0/weight", as: Float.self)
                    }
                }
                unlink(path)
            }
            let small = [Float](repeating: 0.5, count: 1000)

            // The process is still fine: a file on a filesystem with room writes and reads back.
            do {
                let dir = try TemporaryDirectory()
                let file = try HDF5File.create(dir.file("after.h5"))
                try file.write("/model/w", small, shape: [10, 100])
                try file.setAttribute("step", Int64(20))
                try file.finish()
                let back = try HDF5File.open(dir.file("after.h5"))
                #expect(try back.read("/model/w", as: Float.self) == small, sourceLocation: sourceLocation)
                #expect(try back.int64Attribute("step") == 20, sourceLocation: sourceLocation)
            } catch {
                Issue.record("writing a second file after the full disk failed: \(error)", sourceLocation: sourceLocation)
            }
        }

        static func runtimeMessage(_ error: any Error, sourceLocation: SourceLocation) -> String {
            guard let error = error as? LockstepError, case .runtime(let message) = error else {
                Issue.record("expected LockstepError.runtime, got \(error)", sourceLocation: sourceLocation)
                return "\(error)"
            }
            #expect(!message.contains("\n"), "not one line: \(message)", sourceLocation: sourceLocation)
            return message
        }
    }
}

/// A tmpfs of `size` mounted on a fresh folder (mount -t tmpfs -o size=SIZE tmpfs DIR), unmounted
/// when released. Where mounting is not permitted, the test is cancelled, saying so.
final class SmallFilesystem {
    private let folder: TemporaryDirectory
    var path: String { folder.path }

    init(size: String) throws {
        let folder = try TemporaryDirectory()
        try Self.mount(folder.path, size: size)
        self.folder = folder
    }

    private static func mount(_ path: String, size: String) throws {
        guard Glibc.mount("tmpfs", path, "tmpfs", 0, "size=\(size)") != 0 else { return }
        let code = errno
        let reason = String(cString: strerror(code))
        if code == EPERM || code == EACCES {
            try Test.cancel("needs to mount a \(size) tmpfs to fill a disk, and mount is not permitted here (\(reason)): run as root with CAP_SYS_ADMIN")
        }
        throw LockstepError.runtime("cannot mount a tmpfs on \(path): \(reason)")
    }

    // Lazily, so a file still open somewhere cannot keep the mount; the folder goes after.
    deinit { umount2(folder.path, Int32(MNT_DETACH)) }
}

/// Runs child processes for the HDF5 tests: this test binary itself, h5py scripts.
enum Subprocess {
    struct Result {
        let status: Int32
        /// False when the process was killed by a signal (status is then the signal).
        let exited: Bool
        let output: String
    }

    /// Runs `arguments[0]` to completion with stdout and stderr together.
    static func run(_ arguments: [String], environment: [String: String] = [:]) throws -> Result {
        let process = Process()
        process.executableURL = URL(fileURLWithPath: arguments[0])
        process.arguments = Array(arguments.dropFirst())
        process.environment = ProcessInfo.processInfo.environment.merging(environment) { $1 }
        let pipe = Pipe()
        process.standardOutput = pipe
        process.standardError = pipe
        process.standardInput = FileHandle.nullDevice
        try process.run()
        let data = pipe.fileHandleForReading.readDataToEndOfFile()
        process.waitUntilExit()
        return Result(status: process.terminationStatus, exited: process.terminationReason == .exit,
                      output: String(decoding: data, as: UTF8.self))
    }
}
