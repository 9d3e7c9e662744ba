// MPI-3 shared memory: one buffer per node that every rank on the node can read and write
// directly (`data.load = "node"`, one copy of a dataset per node). The node's ranks are found
// with MPI_Comm_split_type(MPI_COMM_TYPE_SHARED); the node's first rank allocates the whole
// buffer in MPI_Win_allocate_shared and the others allocate nothing and map it
// (MPI_Win_shared_query). Writes before `fence` are visible to every node rank after it.

import CMPI

public final class NodeSharedMemory {
    /// This rank's place among its node's ranks.
    public let nodeRank: Int
    public let nodeSize: Int
    /// The node's buffer and its size.
    public let base: UnsafeMutableRawPointer
    public let bytes: Int
    /// Bytes of this rank's own segment of the window, as MPI reports it: the whole buffer on the
    /// node's first rank, 0 elsewhere.
    public let ownSegment: Int
    private var window: MPI_Win?
    private var nodeComm: MPI_Comm?
    private let comm: Communicator

    /// Collective over the world: every rank calls it with the same `bytes`.
    public init(comm: Communicator, bytes: Int) {
        self.comm = comm
        self.bytes = bytes
        var node: MPI_Comm?
        comm.check(MPI_Comm_split_type(comm.comm, lockstep_comm_type_shared(), Int32(comm.rank), lockstep_info_null(), &node),
                   "MPI_Comm_split_type")
        var r: Int32 = 0, s: Int32 = 0
        MPI_Comm_rank(node, &r)
        MPI_Comm_size(node, &s)
        nodeRank = Int(r)
        nodeSize = Int(s)
        let asked = nodeRank == 0 ? max(bytes, 1) : 0
        var mine: UnsafeMutableRawPointer?
        var win: MPI_Win?
        comm.check(MPI_Win_allocate_shared(MPI_Aint(asked), 1, lockstep_info_null(), node, &mine, &win), "MPI_Win_allocate_shared")
        var size: MPI_Aint = 0
        var unit: Int32 = 0
        var first: UnsafeMutableRawPointer?
        comm.check(MPI_Win_shared_query(win, 0, &size, &unit, &first), "MPI_Win_shared_query")
        guard let first, Int(size) >= bytes else { comm.abort("MPI_Win_shared_query gave no segment of \(bytes) bytes") }
        base = first
        // What MPI gave this rank's own segment (not what was asked for): the copy count is taken from it.
        var mineSize: MPI_Aint = 0
        var mineBase: UnsafeMutableRawPointer?
        comm.check(MPI_Win_shared_query(win, r, &mineSize, &unit, &mineBase), "MPI_Win_shared_query")
        ownSegment = Int(mineSize)
        window = win
        nodeComm = node
        comm.countCollective()
        // Open the access epoch the fences close.
        comm.check(MPI_Win_fence(0, win), "MPI_Win_fence")
    }

    /// Collective over the node: what the node's ranks wrote is now visible to all of them.
    public func fence() {
        comm.marks.enterCollective()
        defer { comm.marks.leaveCollective() }
        comm.check(MPI_Win_fence(0, window), "MPI_Win_fence")
        comm.countCollective()
    }

    deinit {
        var finalized: Int32 = 0
        MPI_Finalized(&finalized)
        guard finalized == 0 else { return }
        MPI_Win_free(&window)
        MPI_Comm_free(&nodeComm)
    }
}
