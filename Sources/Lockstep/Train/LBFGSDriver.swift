// Minibatch L-BFGS steps (docs/algorithms.md §5): the optimizer drives its own evaluations of
// the step's batch (line search, inner iterations), each one pass over the rank's rows and one
// allreduce of [g, loss, tag, stop] straight into L-BFGS's gradient buffer. The tag is each
// rank's evaluation count, so ranks whose line searches took different branches are caught
// here rather than pairing mismatched collectives.

final class LBFGSDriver: StepDriver {
    let lbfgs: LBFGS
    var optimizer: any OptimizerState { lbfgs }
    private let comm: Communicator
    private let network: Network
    private let passes: BatchPasses
    private let single: SingleAllreduce
    private let layout: ExchangeLayout
    private(set) var stopAgreed = false
    private(set) var checkpointAgreed = false
    /// L-BFGS's evaluations are not counted as exchange waits.
    let exchangeWait = 0.0

    init(comm: Communicator, network: Network, lbfgs: LBFGS, passes: BatchPasses) {
        self.comm = comm
        self.network = network
        self.lbfgs = lbfgs
        self.passes = passes
        layout = ExchangeLayout(parameters: network.parameterCount, lbfgs: true, statistics: network.statisticsCount)
        single = SingleAllreduce(comm: comm, reduction: PlainReduction(network: network, layout: layout))
    }

    func evaluate(at position: TrainingPosition, shape: StepShape, lr: Double) throws -> Double {
        var evaluation = 0
        return try lbfgs.step(parameters: network.parameters.pointer, lr: lr) { target in
            evaluation += 1
            return try self.evaluateBatch(into: target, evaluation: evaluation, at: position, shape: shape)
        }
    }

    /// The objective: the averaged gradient of the batch at the current parameters, summed
    /// straight into `target` (P + 3 floats). Returns the batch's mean loss.
    private func evaluateBatch(into target: UnsafeMutablePointer<Float>, evaluation: Int, at position: TrainingPosition,
                               shape: StepShape) throws -> Double {
        let tag = layout.tag!
        _ = passes.localGradient(at: position, shape: shape, exchange: single)
        network.gradients.pointer[tag] = Float(evaluation)
        single.finish(into: target)
        stopAgreed = target[layout.stop] > 0
        checkpointAgreed = target[layout.checkpoint] > 0
        guard target[tag] == Float(evaluation * comm.size) else {
            throw LockstepError.runtime("ranks diverged inside the L-BFGS step at step \(position.step + 1) (evaluation \(evaluation)): a bug; report it with the job file")
        }
        let loss = Double(target[layout.loss]) / Double(shape.global)
        // BatchNorm's running statistics move once per step, with the batch at the step's start
        // (as a first-order step's); the line search's evaluations leave them alone.
        if evaluation == 1 && loss.isFinite { network.commitStatistics(target + layout.statistics.lowerBound) }
        return loss
    }

    func apply(lr: Double) {}

    var gradient: UnsafePointer<Float> { UnsafePointer(network.gradients.pointer) }

    var gradientNorm: Double { lbfgs.report.gradientNorm }

    func appendFields(to fields: inout [(String, Any)], waitsPerStep: StepWaits) {
        if !passes.fullBatch {
            // Mean seconds per step since the previous line spent waiting for the step's rows.
            fields.append(("data_wait", waitsPerStep.data))
        }
        let r = lbfgs.report
        fields += [("evaluations", r.evaluations), ("iterations", r.iterations), ("restarts", r.restarts),
                   ("alpha", r.alpha), ("pairs", lbfgs.history.size)]
    }
}
