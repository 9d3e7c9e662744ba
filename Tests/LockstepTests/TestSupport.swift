// Shared helpers for the in-process tests: temporary folders, usage-error assertions, random data.
import Testing
import Lockstep
#if canImport(Glibc)
import Glibc
#endif

/// Parent of every suite that touches files through HDF5 or spawns a process. Serialized because a
/// spawned child inherits open HDF5 descriptors and their flock() locks, which makes a concurrent
/// H5Fopen of the same file fail; HDF5 serializes its calls internally anyway, so nothing is lost.
@Suite(.serialized) struct FileTests {}

/// A fresh folder under /tmp (mkdtemp), removed with everything in it when released.
final class TemporaryDirectory {
    let path: String

    init() throws {
        var template = Array("/tmp/lockstep-unit-XXXXXX".utf8CString)
        guard let made = template.withUnsafeMutableBufferPointer({ mkdtemp($0.baseAddress!) }) else {
            throw LockstepError.runtime("mkdtemp failed")
        }
        path = String(cString: made)
    }

    deinit { Self.remove(path) }

    func file(_ name: String) -> String { path + "/" + name }

    private static func remove(_ path: String) {
        if let dir = opendir(path) {
            while let entry = readdir(dir) {
                let name = withUnsafeBytes(of: entry.pointee.d_name) {
                    String(decoding: $0.prefix { $0 != 0 }, as: UTF8.self)
                }
                if name == "." || name == ".." { continue }
                let child = path + "/" + name
                if entry.pointee.d_type == UInt8(DT_DIR) { remove(child) } else { unlink(child) }
            }
            closedir(dir)
        }
        rmdir(path)
    }
}

/// Writes raw bytes to `path` (truncating), for hand-made bad inputs.
func writeBytes(_ bytes: [UInt8], to path: String) throws {
    guard let f = fopen(path, "wb") else { throw LockstepError.runtime("cannot write \(path)") }
    defer { fclose(f) }
    guard fwrite(bytes, 1, bytes.count, f) == bytes.count else { throw LockstepError.runtime("short write \(path)") }
}

/// Reads a whole file's bytes.
func readBytes(_ path: String) throws -> [UInt8] {
    guard let bytes = readFileBytes(path) else { throw LockstepError.runtime("cannot read \(path)") }
    return bytes
}

/// Runs `body`, which must throw `LockstepError.usage` whose message is one line containing every
/// fragment. Returns the message (nil after recording an issue).
@discardableResult
func expectUsage<T>(_ fragments: [String] = [], sourceLocation: SourceLocation = #_sourceLocation,
                    _ body: () throws -> T) -> String? {
    let message: String
    do {
        _ = try body()
        Issue.record("expected LockstepError.usage, nothing was thrown", sourceLocation: sourceLocation)
        return nil
    } catch let error as LockstepError {
        // Exit 2 is what the user sees: check the thrown error's own code, not a new one's.
        #expect(error.exitCode == 2, "exit code \(error.exitCode) for \(error.message)", sourceLocation: sourceLocation)
        guard case .usage(let m) = error else {
            Issue.record("expected LockstepError.usage, got \(error) (\(error.message))", sourceLocation: sourceLocation)
            return nil
        }
        message = m
    } catch {
        Issue.record("expected LockstepError.usage, got \(error)", sourceLocation: sourceLocation)
        return nil
    }
    for fragment in fragments {
        #expect(message.contains(fragment), "message \"\(message)\" does not contain \"\(fragment)\"",
                sourceLocation: sourceLocation)
    }
    #expect(!message.contains("\n") && !message.contains("\r"), "message is not one line: \(message)",
            sourceLocation: sourceLocation)
    #expect(!message.isEmpty, sourceLocation: sourceLocation)
    return message
}

/// Uniform values in [lo, hi) from the project's PRNG (test data is seeded, never entropy).
func uniformFloats(_ count: Int, _ lo: Double, _ hi: Double, rng: inout Xoshiro256) -> [Float] {
    (0..<count).map { _ in Float(lo + (hi - lo) * rng.nextUnit()) }
}

/// |a − b| ≤ abs + rel·|b|.
func isClose(_ a: Double, _ b: Double, abs: Double, rel: Double) -> Bool {
    Swift.abs(a - b) <= abs + rel * Swift.abs(b)
}

/// Checks every parameter's analytic (Float32) gradient against a Float64 central difference of
/// `loss` at `theta` (h = 1e-6: truncation O(h²) and rounding ~1e-10, far below the tolerance of
/// 1e-4 absolute + 1e-3 relative the Float32 gradient gets). Returns how many were checked.
@discardableResult
func expectFiniteDifferences(_ analytic: [Float], theta: [Double], views: [ParameterView], _ label: String = "",
                             loss: ([Double]) -> Double, sourceLocation: SourceLocation = #_sourceLocation) -> Int {
    let h = 1e-6
    var checked = 0
    for view in views {
        for i in view.offset..<(view.offset + view.count) {
            var plus = theta, minus = theta
            plus[i] += h
            minus[i] -= h
            let numeric = (loss(plus) - loss(minus)) / (2 * h)
            #expect(isClose(Double(analytic[i]), numeric, abs: 1e-4, rel: 1e-3),
                    "\(label)d loss / d \(view.path)[\(i - view.offset)]: analytic \(analytic[i]), finite difference \(numeric)",
                    sourceLocation: sourceLocation)
            checked += 1
        }
    }
    return checked
}
