// The only place that talks to MPI: rank and size, allreduce, broadcast, barrier, abort.
// MPI is initialised once (the first use of `Communicator.world`) and finalised once (`finalize`).
// A plain run without `mpirun` is an MPI singleton: a 1-rank job.

import CMPI
#if canImport(Glibc)
import Glibc
#endif

/// Element types that can travel through an MPI reduction.
public protocol MPIScalar {
    static var mpiType: MPI_Datatype { get }
}
extension Float: MPIScalar { public static var mpiType: MPI_Datatype { lockstep_type_float() } }
extension Double: MPIScalar { public static var mpiType: MPI_Datatype { lockstep_type_double() } }
extension Int64: MPIScalar { public static var mpiType: MPI_Datatype { lockstep_type_int64() } }
extension UInt64: MPIScalar { public static var mpiType: MPI_Datatype { lockstep_type_uint64() } }

/// A reduction operator.
public enum ReduceOp {
    case sum, max, min
    var mpiOp: MPI_Op {
        switch self {
        case .sum: return lockstep_op_sum()
        case .max: return lockstep_op_max()
        case .min: return lockstep_op_min()
        }
    }
}

/// The world communicator. All members are collective unless documented otherwise: every rank
/// must call them in the same order.
public final class Communicator: @unchecked Sendable {
    /// The job's communicator; the first access initialises MPI.
    public static let world = Communicator()

    public let rank: Int
    public let size: Int
    /// Number of collective calls made so far on this rank (tests assert how many a step costs).
    public private(set) var collectiveCalls = 0
    /// Counts a collective made outside these methods (the bucketed exchange's requests).
    func countCollective() { collectiveCalls += 1 }

    /// When collectives start and end, for the stall watchdog.
    public let marks = ProgressMarks()
    let comm: MPI_Comm
    private var finalized = false

    private init() {
        var argc: Int32 = 0
        var initialized: Int32 = 0
        MPI_Initialized(&initialized)
        if initialized == 0 { MPI_Init(&argc, nil) }
        comm = lockstep_comm_world()
        var r: Int32 = 0, s: Int32 = 0
        MPI_Comm_rank(comm, &r)
        MPI_Comm_size(comm, &s)
        rank = Int(r)
        size = Int(s)
    }

    public var isRoot: Bool { rank == 0 }

    /// In-place reduction of a buffer across all ranks; every rank ends with the result.
    public func allreduce<T: MPIScalar>(_ buffer: UnsafeMutableBufferPointer<T>, _ op: ReduceOp = .sum) {
        collectiveCalls += 1
        guard size > 1, let base = buffer.baseAddress else { return }
        marks.enterCollective()
        defer { marks.leaveCollective() }
        check(MPI_Allreduce(lockstep_in_place(), base, Int32(buffer.count), T.mpiType, op.mpiOp, comm), "MPI_Allreduce")
    }

    /// Reduction of `send` into `receive` (same count), leaving `send` as it was: the result lands
    /// where the caller wants it without a copy.
    public func allreduce<T: MPIScalar>(_ send: UnsafeMutableBufferPointer<T>, into receive: UnsafeMutablePointer<T>, _ op: ReduceOp = .sum) {
        collectiveCalls += 1
        guard let base = send.baseAddress else { return }
        guard size > 1 else {
            receive.update(from: base, count: send.count)
            return
        }
        marks.enterCollective()
        defer { marks.leaveCollective() }
        check(MPI_Allreduce(base, receive, Int32(send.count), T.mpiType, op.mpiOp, comm), "MPI_Allreduce")
    }

    /// In-place reduction of an array.
    public func allreduce<T: MPIScalar>(_ values: inout [T], _ op: ReduceOp = .sum) {
        values.withUnsafeMutableBufferPointer { allreduce($0, op) }
    }

    /// Reduction of one value.
    public func allreduce<T: MPIScalar>(_ value: T, _ op: ReduceOp) -> T {
        var v = [value]
        allreduce(&v, op)
        return v[0]
    }

    /// Copies `root`'s bytes into every rank's buffer (all ranks pass a buffer of the same size).
    public func broadcast(_ bytes: UnsafeMutableRawBufferPointer, root: Int = 0) {
        collectiveCalls += 1
        guard size > 1, let base = bytes.baseAddress else { return }
        // MPI counts are Int32: send large buffers in pieces.
        let chunk = 1 << 30
        var offset = 0
        marks.enterCollective()
        defer { marks.leaveCollective() }
        while offset < bytes.count {
            let n = min(chunk, bytes.count - offset)
            check(MPI_Bcast(base + offset, Int32(n), lockstep_type_byte(), Int32(root), comm), "MPI_Bcast")
            offset += n
        }
    }

    /// Broadcasts an array whose length only `root` knows.
    public func broadcast<T>(_ values: inout [T], root: Int = 0) where T: BitwiseCopyable {
        var count = Int64(values.count)
        withUnsafeMutableBytes(of: &count) { broadcast($0, root: root) }
        if rank != root { values = [T](unsafeUninitializedCapacity: Int(count)) { _, n in n = Int(count) } }
        values.withUnsafeMutableBytes { broadcast($0, root: root) }
    }

    /// Broadcasts a string from `root`.
    public func broadcast(_ string: inout String, root: Int = 0) {
        var bytes = Array(string.utf8)
        broadcast(&bytes, root: root)
        string = String(decoding: bytes, as: UTF8.self)
    }

    public func barrier() {
        collectiveCalls += 1
        guard size > 1 else { return }
        marks.enterCollective()
        defer { marks.leaveCollective() }
        check(MPI_Barrier(comm), "MPI_Barrier")
    }

    /// Ends the whole job from any one rank, naming the rank and the reason. Never returns.
    public func abort(_ reason: String, code: Int32 = ExitStatus.failure) -> Never {
        Console.error("rank \(rank): \(reason) (aborting all \(size) ranks)")
        MPI_Abort(comm, code)
        exit(code)
    }

    /// Finalises MPI once; afterwards no collective may be called.
    public func finalize() {
        guard !finalized else { return }
        finalized = true
        MPI_Finalize()
    }

    /// The MPI library's own version line (for `lockstep doctor`-style reports and logs).
    public static var libraryVersion: String {
        var buffer = [CChar](repeating: 0, count: Int(lockstep_max_library_version_string()))
        var length: Int32 = 0
        MPI_Get_library_version(&buffer, &length)
        let text = String(decoding: buffer.prefix { $0 != 0 }.map { UInt8(bitPattern: $0) }, as: UTF8.self)
        let line = text.split(separator: "\n").first.map(String.init) ?? ""
        return line.trimmingCharacters()
    }

    /// Aborts the job when an MPI call returned an error (also for the bucketed exchange's calls).
    func check(_ code: Int32, _ what: String) {
        // MPI's default error handler aborts the job itself; this is the belt to its braces.
        if code != 0 { abort("\(what) failed with MPI error \(code)") }
    }
}

extension String {
    func trimmingCharacters() -> String {
        var s = Substring(self)
        while let c = s.first, c.isWhitespace { s.removeFirst() }
        while let c = s.last, c.isWhitespace { s.removeLast() }
        return String(s)
    }
}
