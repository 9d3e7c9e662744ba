// `lockstep bench`'s exchange measurement: the gradient exchange as the trainer makes it
// (Communicator.allreduce, in place, with its progress marks) against a bare MPI_Allreduce loop
// on the same buffer, ranks and MPI library, interleaved round by round so both see the same
// machine noise. The ratio says what Lockstep's layer costs over MPI itself.

import CMPI

public enum ExchangeBenchmark {
    public struct Result: Sendable {
        /// Median seconds per allreduce over the rounds.
        public var lockstep: Double
        public var raw: Double
        public var bytes: Int
        /// raw / lockstep: ≥ 1 means Lockstep is as fast as a bare MPI loop.
        public var ratio: Double { raw / lockstep }
    }

    /// `rounds` rounds of `calls` allreduces of `count` floats each way. Collective.
    public static func run(comm: Communicator, count: Int, rounds: Int = 7, calls: Int = 20) -> Result {
        let buffer = FloatBuffer(count: count)
        buffer.fill(1e-3)
        var ours: [Double] = [], theirs: [Double] = []
        // One untimed call each way: connection setup and first-touch costs.
        comm.allreduce(buffer.buffer)
        rawAllreduce(comm, buffer)
        for _ in 0..<rounds {
            comm.barrier()
            var start = Clock.now()
            for _ in 0..<calls { comm.allreduce(buffer.buffer) }
            ours.append(slowest(comm, Clock.now() - start) / Double(calls))
            comm.barrier()
            start = Clock.now()
            for _ in 0..<calls { rawAllreduce(comm, buffer) }
            theirs.append(slowest(comm, Clock.now() - start) / Double(calls))
        }
        return Result(lockstep: median(ours), raw: median(theirs), bytes: count * MemoryLayout<Float>.size)
    }

    private static func rawAllreduce(_ comm: Communicator, _ buffer: FloatBuffer) {
        guard comm.size > 1 else { return }
        MPI_Allreduce(lockstep_in_place(), buffer.pointer, Int32(buffer.count), lockstep_type_float(), lockstep_op_sum(), comm.comm)
    }

    /// The slowest rank's time: a collective is as fast as its last rank.
    private static func slowest(_ comm: Communicator, _ seconds: Double) -> Double { comm.allreduce(seconds, .max) }

    private static func median(_ values: [Double]) -> Double { values.sorted()[values.count / 2] }
}
