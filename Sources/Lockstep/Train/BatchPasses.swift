// The forward/backward passes of a step, of the full-gradient measurement and of evaluation:
// which rows a rank takes, in which passes, and where the gradient goes. A minibatch step takes
// this rank's window of the epoch's permutation from the background loader (split into GSNR
// groups and micro-batches); a full-batch step and the measurements take a contiguous slice of
// the split in chunks. The loss is scaled by 1/B (global), so the sum over ranks is the mean.
//
// The exchange is told when each group's backward is done and when the step's last backward
// begins (after its slots are written), so an overlapped exchange can start during it.

final class BatchPasses {
    private let comm: Communicator
    private let network: Network
    let train: any DataSource
    private let batchSchedule: BatchSchedule
    private let groupsPerRank: Int
    let fullBatch: Bool
    private let stopRequested: @Sendable () -> Bool
    private let checkpointRequested: @Sendable () -> Bool
    /// ε of the training loss (`loss.label_smoothing`); evaluation's loss is unsmoothed.
    private let labelSmoothing: Float
    /// Gathers each step's rows ahead of time (nil with a full batch, which reads as it goes).
    private let loader: BatchLoader?
    private let input: FloatBuffer
    private let labels: UnsafeMutablePointer<Int32>
    /// Rows of the largest pass (and of an evaluation chunk).
    let capacity: Int
    /// Seconds spent waiting for a step's rows, summed over the steps so far.
    private(set) var dataWait = 0.0

    init(comm: Communicator, network: Network, train: any DataSource, configuration c: TrainerConfiguration) {
        self.comm = comm
        self.network = network
        self.train = train
        batchSchedule = c.batchSchedule
        groupsPerRank = c.groupsPerRank
        fullBatch = c.fullBatch
        stopRequested = c.stopRequested
        checkpointRequested = c.checkpointRequested
        labelSmoothing = c.labelSmoothing
        // Augmentation lives in the loader only: full-batch passes, the full-gradient measurement
        // and evaluation read rows as they are (Job refuses [augment] with a full batch).
        precondition(!c.fullBatch || c.augmentation.isIdentity, "validated by Job: no augmentation with a full batch")
        loader = c.fullBatch ? nil : BatchLoader(data: train, seed: c.seed, capacity: c.largestBatch / comm.size,
                                                 augmentation: c.augmentation)
        // Sized once for the largest pass of the run.
        capacity = StepShape.passRows(largestBatch: c.largestBatch, ranks: comm.size, groupsPerRank: c.groupsPerRank,
                                      microBatch: c.microBatch, fullBatch: c.fullBatch)
        input = FloatBuffer(count: capacity * train.width)
        labels = .allocate(capacity: capacity)
        network.reserve(batch: capacity)
        network.pass.seed = c.seed
    }

    deinit {
        loader?.shutdown()
        labels.deallocate()
    }

    /// Forward and backward over this rank's rows of the step at `position`, the gradient left
    /// where `exchange`'s reduction wants it and the slots written. Returns the local loss sum.
    func localGradient(at position: TrainingPosition, shape: StepShape, exchange: any GradientExchange) -> Double {
        let scale = 1 / Float(shape.global)
        network.resetStatistics()
        network.pass.step = position.step
        if fullBatch {
            let start = train.count * comm.rank / comm.size
            let loss = contiguousGradient(rows: start..<(start + shape.local), chunk: shape.micro, scale: scale, exchange: exchange)
            exchange.groupFinished(first: true, last: true)
            return loss
        }
        let window = EpochOrder.localWindow(step: position.epochStep, globalBatch: shape.global, rank: comm.rank, ranks: comm.size)
        let (batch, waited) = loader!.batch(epoch: position.epoch, window: window)
        dataWait += waited
        prefetch(after: position, shape: shape)
        let microPerGroup = shape.local / groupsPerRank / shape.micro
        var localLoss = 0.0
        for group in 0..<groupsPerRank {
            for micro in 0..<microPerGroup {
                let row = (group * microPerGroup + micro) * shape.micro
                let x = batch.x + row * train.width
                // The rows' place in the step's global batch (the window starts at step·B).
                network.pass.firstSample = window.lowerBound - position.epochStep * shape.global + row
                localLoss += forwardLoss(x: x, y: batch.y + row, rows: shape.micro, scale: scale)
                if group == groupsPerRank - 1 && micro == microPerGroup - 1 {
                    lastBackwardBegins(exchange, localLoss: localLoss, firstGroup: group == 0)
                }
                // The first pass writes the gradients, later ones add to them: no zeroing pass needed.
                network.backward(x, dlogits: network.logitGradient, batch: shape.micro, accumulate: micro > 0)
            }
            exchange.groupFinished(first: group == 0, last: group == groupsPerRank - 1)
        }
        return localLoss
    }

    /// The slots are final once the last pass's loss is known: write them, then let the exchange arm.
    private func lastBackwardBegins(_ exchange: (any GradientExchange)?, localLoss: Double, firstGroup: Bool) {
        guard let exchange else { return }
        exchange.reduction.fillSlots(localLoss: localLoss, stop: stopRequested(), checkpoint: checkpointRequested())
        exchange.lastBackwardBegins(firstGroup: firstGroup)
    }

    /// Asks the loader for the rows of the step after `position`, which may be in the next
    /// epoch with another global batch (an increasing schedule). Past the run's last epoch the
    /// gathered rows are simply never used.
    private func prefetch(after position: TrainingPosition, shape: StepShape) {
        var (epoch, step, global) = (position.epoch, position.epochStep + 1, shape.global)
        if step == shape.stepsPerEpoch {
            (epoch, step, global) = (epoch + 1, 0, batchSchedule.batch(epoch: epoch + 1))
            // Job.validate checked the run's epochs only.
            guard global % comm.size == 0, global <= train.count else { return }
        }
        loader?.prefetch(epoch: epoch, window: EpochOrder.localWindow(step: step, globalBatch: global, rank: comm.rank, ranks: comm.size))
    }

    /// Forward and backward over contiguous training rows in chunks of at most `chunk` rows,
    /// the loss scaled by `scale`; with an exchange, its slots are written before the last
    /// chunk's backward. Returns the (scaled) loss sum.
    func contiguousGradient(rows: Range<Int>, chunk: Int, scale: Float, exchange: (any GradientExchange)?) -> Double {
        var lossSum = 0.0
        if rows.isEmpty {
            network.gradients.fill(0)
            lastBackwardBegins(exchange, localLoss: 0, firstGroup: true)
        }
        var chunkStart = rows.lowerBound
        while chunkStart < rows.upperBound {
            let chunkEnd = min(chunkStart + chunk, rows.upperBound)
            train.gather(chunkStart..<chunkEnd, x: input.pointer, y: labels)
            network.pass.firstSample = chunkStart
            lossSum += forwardLoss(x: input.pointer, y: labels, rows: chunkEnd - chunkStart, scale: scale)
            if chunkEnd == rows.upperBound { lastBackwardBegins(exchange, localLoss: lossSum, firstGroup: true) }
            network.backward(input.pointer, dlogits: network.logitGradient, batch: chunkEnd - chunkStart,
                             accumulate: chunkStart > rows.lowerBound)
            chunkStart = chunkEnd
        }
        return lossSum
    }

    /// Forward and the training loss (label-smoothed if the job says so) over `rows` samples x
    /// with labels y, leaving dL/dlogits for backward.
    private func forwardLoss(x: UnsafePointer<Float>, y: UnsafePointer<Int32>, rows: Int, scale: Float) -> Double {
        let logits = network.forward(x, batch: rows)
        return SoftmaxCrossEntropy.lossAndGradient(logits: logits, labels: y, dlogits: network.logitGradient, batch: rows,
                                                   classes: network.classes, scale: scale, labelSmoothing: labelSmoothing)
    }

    /// ‖∇f(w)‖ over the whole training set and the mean training loss (docs/algorithms.md §4), of
    /// the training objective (label-smoothed if the job says so, never augmented): one
    /// extra deterministic pass (no update, nothing random), each rank a contiguous slice, one
    /// allreduce of [gradient, loss] in the network's gradient buffer (`layout`).
    func fullGradient(layout: ExchangeLayout) -> (norm: Double, loss: Double) {
        let n = train.count
        let start = n * comm.rank / comm.size, end = n * (comm.rank + 1) / comm.size
        network.resetStatistics()
        let lossSum = contiguousGradient(rows: start..<end, chunk: capacity, scale: 1 / Float(n), exchange: nil)
        network.gradients.pointer[layout.loss] = Float(lossSum)
        comm.allreduce(network.gradients.buffer)
        return (Norms.l2(network.gradients.pointer, layout.parameters), Double(network.gradients.pointer[layout.loss]) / Double(n))
    }

    /// Accuracy and mean plain cross-entropy (unsmoothed, unaugmented) over a whole split; each
    /// rank takes contiguous blocks of rows, exact integer sums are allreduced (SplitEvaluation).
    func evaluate(_ data: any DataSource) -> (accuracy: Double, loss: Double) {
        let r = SplitEvaluation.run(data, network: network, comm: comm, input: input.pointer, labels: labels, confusion: false)
        return (r.accuracy, r.loss)
    }
}
