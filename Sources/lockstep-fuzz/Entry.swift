// lockstep-fuzz: fuzz targets over what a user hands Lockstep: job files (JobTarget.swift) and
// HDF5 datasets and checkpoints (DataTarget.swift). docs/fuzzing.md says how to run them.
//
// Two builds of one target:
//
// * The ordinary build (`swift build`, `swift test`) makes a replay tool, no sanitizer:
//     lockstep-fuzz job FILE...     run each file through the job target, say what it did
//     lockstep-fuzz data FILE...    the same for the HDF5 target
//     lockstep-fuzz seeds DIR       write the HDF5 seed files (datasets, checkpoints) into DIR
//   A crash there is the same crash, with Swift's own backtrace.
//
// * scripts/fuzz builds it with `-sanitize=fuzzer,address -DLOCKSTEP_LIBFUZZER` into its own
//   build path: libFuzzer's driver, the target chosen by `--target=job|data` (libFuzzer ignores
//   flags that start with `--`) or LOCKSTEP_FUZZ_TARGET.
//
// SwiftPM links an executable on Linux with `--defsym main=<module>_main`, so the libFuzzer
// build cannot leave `main` to libFuzzer: it defines `lockstep_fuzz_main` itself and hands over
// to libFuzzer's LLVMFuzzerRunDriver.

import Lockstep

#if canImport(Glibc)
import Glibc
#endif

enum FuzzTarget: String, CaseIterable {
    case job, data

    /// Runs one input. Returns what happened, for the replay tool; crashes are the findings.
    func run(_ bytes: UnsafeBufferPointer<UInt8>) -> String {
        switch self {
        case .job: return JobTarget.run(bytes)
        case .data: return DataTarget.run(bytes)
        }
    }
}

/// Fails the input: a finding that is not a crash of the code under test by itself (an error
/// of an unexpected type, a broken documented property). Traps, so libFuzzer saves the input.
func finding(_ message: String) -> Never {
    printError("lockstep-fuzz: FINDING: \(message)")
    fatalError(message)
}

/// One line to standard error (the C `stderr` global is not concurrency-safe in Swift 6).
func printError(_ line: String) {
    var text = line + "\n"
    text.withUTF8 { _ = write(2, $0.baseAddress, $0.count) }
}

#if LOCKSTEP_LIBFUZZER

nonisolated(unsafe) var selectedTarget: FuzzTarget?

@_cdecl("LLVMFuzzerTestOneInput")
public func lockstepFuzzTestOneInput(_ data: UnsafePointer<UInt8>?, _ size: Int) -> CInt {
    guard let target = selectedTarget else { return 0 }
    _ = target.run(UnsafeBufferPointer(start: data, count: size))
    return 0
}

@_silgen_name("LLVMFuzzerRunDriver")
func LLVMFuzzerRunDriver(_ argc: UnsafeMutablePointer<CInt>,
                         _ argv: UnsafeMutablePointer<UnsafeMutablePointer<UnsafeMutablePointer<CChar>?>?>,
                         _ callback: @convention(c) (UnsafePointer<UInt8>?, Int) -> CInt) -> CInt

@_cdecl("lockstep_fuzz_main")
func lockstepFuzzMain(_ argc: CInt, _ argv: UnsafeMutablePointer<UnsafeMutablePointer<CChar>?>?) -> CInt {
    var name = getenv("LOCKSTEP_FUZZ_TARGET").map { String(cString: $0) }
    for i in 0..<Int(argc) {
        guard let arg = argv?[i].map({ String(cString: $0) }) else { continue }
        if arg.hasPrefix("--target=") { name = String(arg.dropFirst("--target=".count)) }
    }
    guard let name, let target = FuzzTarget(rawValue: name) else {
        printError("lockstep-fuzz: choose a target with --target=job or --target=data (or LOCKSTEP_FUZZ_TARGET)")
        return 2
    }
    selectedTarget = target
    // Swift's runtime backtracer takes the fatal signals at startup, over ASan's handlers, and
    // libFuzzer leaves a signal alone when a handler is installed: then a trap would print a
    // Swift backtrace and exit without libFuzzer saving the input. Run again without it.
    if getenv("SWIFT_BACKTRACE").map({ String(cString: $0) }) != "enable=no" {
        setenv("SWIFT_BACKTRACE", "enable=no", 1)
        execv("/proc/self/exe", argv!)
        printError("lockstep-fuzz: cannot re-run itself with SWIFT_BACKTRACE=enable=no; set it yourself")
        return 2
    }
    var c = argc
    var v = argv
    return LLVMFuzzerRunDriver(&c, &v, lockstepFuzzTestOneInput)
}

#else

@main
struct ReplayTool {
    static func main() {
        let args = Array(CommandLine.arguments.dropFirst())
        guard let mode = args.first else { usage() }
        if mode == "seeds" {
            guard args.count == 2 else { usage() }
            do {
                for line in try Seeds.write(into: args[1]) { print(line) }
            } catch {
                printError("lockstep-fuzz: \(error)")
                exit(1)
            }
            return
        }
        guard let target = FuzzTarget(rawValue: mode), args.count >= 2 else { usage() }
        for path in args.dropFirst() {
            guard let bytes = readFileBytes(path) else {
                printError("lockstep-fuzz: cannot read \(path)")
                exit(1)
            }
            print("\(path): ", terminator: "")
            fflush(nil)
            let outcome = bytes.withUnsafeBufferPointer { target.run($0) }
            print(outcome)
        }
    }

    static func usage() -> Never {
        printError("""
        usage: lockstep-fuzz job FILE...    replay job-target inputs
               lockstep-fuzz data FILE...   replay HDF5-target inputs
               lockstep-fuzz seeds DIR      write the HDF5 seed files into DIR
        (the fuzzer itself: scripts/fuzz; see docs/fuzzing.md)
        """)
        exit(2)
    }
}

#endif
