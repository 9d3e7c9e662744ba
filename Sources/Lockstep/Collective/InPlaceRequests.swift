// Non-blocking in-place float sums over a communicator, for an exchange that starts pieces of
// one buffer while backward still runs (Train/BucketedExchange.swift): start, test (Open MPI
// moves a non-blocking collective only inside MPI calls) and wait. A fixed number of request
// slots, allocated once: starting and testing allocate nothing.

import CMPI

final class InPlaceRequests {
    private let comm: Communicator
    private let requests: UnsafeMutablePointer<MPI_Request?>
    private let capacity: Int
    /// Requests started since the last `waitAll`.
    private(set) var started = 0

    init(comm: Communicator, capacity: Int) {
        self.comm = comm
        self.capacity = capacity
        requests = .allocate(capacity: max(capacity, 1))
        requests.initialize(repeating: nil, count: max(capacity, 1))
    }

    deinit { requests.deallocate() }

    /// Starts the sum over ranks of `count` floats at `buffer`, in place (nothing on 1 rank).
    func startSum(_ buffer: UnsafeMutablePointer<Float>, count: Int) {
        guard comm.size > 1, count > 0 else { return }
        precondition(started < capacity, "more requests than slots")
        comm.check(MPI_Iallreduce(lockstep_in_place(), buffer, Int32(count), lockstep_type_float(),
                                  lockstep_op_sum(), comm.comm, requests + started), "MPI_Iallreduce")
        started += 1
    }

    /// Lets the started requests progress (one MPI_Testall).
    func test() {
        guard started > 0 else { return }
        var done: Int32 = 0
        comm.check(MPI_Testall(Int32(started), requests, &done, nil), "MPI_Testall")
    }

    /// Counts from zero again (a new pass; every earlier request was waited for by `waitAll`).
    func restart() { started = 0 }

    /// Waits for every started request and frees the slots for the next step.
    func waitAll() {
        if started > 0 { comm.check(MPI_Waitall(Int32(started), requests, nil), "MPI_Waitall") }
        started = 0
    }
}
