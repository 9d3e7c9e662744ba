// The run's checkpoints: writing one at a step boundary (rank 0, agreed by every rank), and
// resuming from the newest under the resume contract (docs/checkpoints.md), broadcast to all.

#if canImport(Glibc)
import Glibc
#endif

extension TrainingRun {
    /// Loads the newest checkpoint on rank 0, holds it to the resume contract (ResumeContract,
    /// the data identity, the position against the job's plan) and broadcasts parameters, the
    /// layers' state (when there is any), optimizer state and position to every rank. Returns the restored position, or nil for a
    /// fresh start.
    static func resume(_ wanted: Bool, from dir: String, comm: Communicator, trainer: Trainer, job: Job,
                               data: DataIdentity) throws -> TrainingPosition? {
        guard wanted else { return nil }
        let network = trainer.network
        let contents = try comm.agree { () -> CheckpointContents? in
            let checkpoints = comm.isRoot ? Checkpoint.list(in: dir) : []
            guard let newest = checkpoints.last else { return nil }
            let older = checkpoints.dropLast().last
            let contents: CheckpointContents
            do {
                contents = try Checkpoint.read(newest, network: network)
            } catch let error as LockstepError where Checkpoint.isDamage(error) {
                // A damaged newest checkpoint: the way on is the one before it, not a new data file.
                let advice = older.map { "delete or move aside \(newest) to resume from \($0)" } ?? "it is the only checkpoint: start the run again without --resume in a new run directory"
                throw LockstepError.usage("newest checkpoint unreadable: \(error.message) — \(advice)")
            }
            try checkContract(contents.header, path: newest, job: job, data: data, trainer: trainer)
            Console.info("resuming from \(newest)" + (contents.header.worldSize != comm.size ? " (written by \(contents.header.worldSize) ranks, now \(comm.size): same data order, summation order differs)" : ""))
            return contents
        }
        var header: [Int64] = [0, 0, 0, 0, 0, 0, 0]
        if let c = contents {
            network.parameters.copy(from: c.parameters)
            if network.stateCount > 0 { network.state.copy(from: c.layerState) }
            for (name, buffer) in trainer.optimizer.stateBuffers { buffer.copy(from: c.state[name]!) }
            header = [1, Int64(c.position.step), Int64(c.position.epoch), Int64(c.position.epochStep), Int64(c.position.samplesSeen),
                      Int64(c.header.optimizerUpdates), Int64(bitPattern: Checkpoint.tensorChecksum(network: network, state: trainer.optimizer.stateBuffers).value)]
        }
        header.withUnsafeMutableBytes { comm.broadcast($0) }
        guard header[0] == 1 else {
            if comm.isRoot { Console.info("no checkpoint in \(dir): starting from step 0") }
            return nil
        }
        comm.broadcast(UnsafeMutableRawBufferPointer(network.parameters.buffer))
        if network.stateCount > 0 { comm.broadcast(UnsafeMutableRawBufferPointer(network.state.buffer)) }
        for (_, buffer) in trainer.optimizer.stateBuffers { comm.broadcast(UnsafeMutableRawBufferPointer(buffer.buffer)) }
        var position = TrainingPosition()
        position.step = Int(header[1])
        position.epoch = Int(header[2])
        position.epochStep = Int(header[3])
        position.samplesSeen = Int(header[4])
        trainer.optimizer.updates = Int(header[5])
        trainer.optimizer.stateRestored()
        // Every rank verifies what it received against rank 0's checksum of the tensors.
        try comm.agree {
            guard Checkpoint.tensorChecksum(network: network, state: trainer.optimizer.stateBuffers).value == UInt64(bitPattern: header[6]) else {
                throw LockstepError.runtime("rank \(comm.rank): the checkpoint's contents arrived corrupted (checksum mismatch after the broadcast): check the interconnect and resume again")
            }
        }
        trainer.restore(position)
        return position
    }

    /// The resume contract (docs/checkpoints.md): errors name the key and both values, warnings
    /// are printed first and the run continues.
    static func checkContract(_ header: CheckpointHeader, path: String, job: Job, data: DataIdentity, trainer: Trainer) throws {
        let stateNames = Set(trainer.optimizer.stateBuffers.map(\.name))
        let differences = ResumeContract.differences(checkpoint: header.config, job: job.resolvedTOML)
        let fresh = "or start a new run directory (--set run.out=DIR)"
        let errors = differences.filter { $0.verdict == .error }
        if !errors.isEmpty {
            let list = errors.map { "\($0.key) (\($0.checkpoint) in the checkpoint, \($0.job) in the job: \($0.why))" }.joined(separator: "; ")
            throw LockstepError.usage("cannot resume \(path) with this job: \(list); resume with the checkpoint's values \(fresh)")
        }
        guard Set(header.optimizerState) == stateNames else {
            throw LockstepError.usage("\(path) holds optimizer state [\(header.optimizerState.sorted().joined(separator: ", "))] but this job's optimizer needs [\(stateNames.sorted().joined(separator: ", "))]: resume with the same optimizer settings \(fresh)")
        }
        let stored = header.data ?? data
        if header.data == nil {
            Console.info("warning: \(path) is in checkpoint format 1, which did not record its data file: make sure data.file is the file it was trained on (its next checkpoint will record it)")
        }
        if data.trainSamples != stored.trainSamples {
            throw LockstepError.usage("cannot resume \(path): it was trained on \(stored.trainSamples) training samples but data.file = \"\(job.data.file)\" has \(data.trainSamples) (the data order depends on them): resume with the checkpoint's data file \(fresh)")
        }
        if data.fingerprint != stored.fingerprint {
            throw LockstepError.usage("cannot resume \(path): the training samples of data.file = \"\(job.data.file)\" are not the ones it was trained on (same count, different content fingerprint): resume with the checkpoint's data file \(fresh)")
        }
        let total = try job.totalSteps(trainSamples: data.trainSamples)
        let p = header.position
        if p.step > total {
            throw LockstepError.usage("\(path) is at step \(p.step), past this job's \(total) steps: raise run.steps or run.epochs to continue it, \(fresh)")
        }
        // Covered by the checksum; still, the position must be the one this job reaches after
        // that many steps, or the data order would be read out of place.
        guard let expected = try job.plan(trainSamples: data.trainSamples).position(afterSteps: p.step), expected == p,
              header.optimizerUpdates <= p.step || job.optimizer.name == .lbfgs else {
            throw LockstepError.usage("\(path): its position (step \(p.step), epoch \(p.epoch), epoch step \(p.epochStep), \(p.samplesSeen) samples) is not where this job stands after \(p.step) steps: the checkpoint does not belong to this job; \(fresh)")
        }
        if data.testSamples != stored.testSamples {
            Console.info("warning: the test split has \(data.testSamples) samples, the checkpoint's had \(stored.testSamples): evaluations are not comparable with the earlier ones")
        }
        for d in differences where d.verdict == .warning {
            Console.info("warning: resuming with \(d.key) = \(d.job) (the checkpoint has \(d.checkpoint)): \(d.why); not the run the checkpoint came from")
        }
    }

    static func writeCheckpoint(job: Job, dir: String, trainer: Trainer, comm: Communicator, data: DataIdentity,
                                        metrics: MetricsLog) throws {
        try comm.agree {
            guard comm.isRoot else { return }
            // Lines lost since the last checkpoint come back on --resume from it (metrics.jsonl is
            // cut to the resumed step), but only if no newer checkpoint is written over them.
            if let failure = metrics.failure {
                let full = Checkpoint.diskFull(job.run.out).map { ": \($0)" } ?? ""
                throw LockstepError.runtime("cannot append to \(job.run.out)/metrics.jsonl (\(failure))\(full); stopped before checkpointing step \(trainer.position.step), so --resume from the last checkpoint logs every lost line again: free space first")
            }
            let path = dir + "/" + Checkpoint.fileName(step: trainer.position.step)
            let header = CheckpointHeader(position: trainer.position, worldSize: comm.size, seed: job.run.seed, config: job.resolvedTOML,
                                          optimizerUpdates: trainer.optimizer.updates,
                                          optimizerState: trainer.optimizer.stateBuffers.map(\.name), data: data)
            try Checkpoint.write(to: path, network: trainer.network, optimizer: trainer.optimizer, header: header)
            // Keep the newest `keep_checkpoints`; older ones go only after the new one is verified.
            for old in Checkpoint.list(in: dir).dropLast(job.run.keepCheckpoints) { unlink(old) }
        }
    }
}
