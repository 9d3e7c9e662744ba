// The step loop's body: gather this rank's share of the global batch (in micro-batches when
// accumulating), forward, loss, backward, one allreduce of [gradients, loss], update. With GSNR
// the share is split into gradient groups and the one allreduce carries [Σ g_d, Σ g_d², loss].
// Every buffer is sized at init; `step` allocates nothing.

public final class Trainer {
    public let comm: Communicator
    public let network: Network
    public let optimizer: any Optimizer
    /// Gradient groups per rank (1 without GSNR).
    public let groupsPerRank: Int
    /// What the one allreduce of a step carries: [ḡ (P), loss] or, with GSNR, [Σ w_d (P), Σ w_d² (P), loss].
    private let exchange: FloatBuffer
    /// Collective calls made by the last step (asserted to be 1 by the tests).
    public private(set) var collectivesLastStep = 0
    public let train: Dataset
    public let schedule: LearningRateSchedule
    public let seed: UInt64
    /// The global batch of each epoch.
    public let batchSchedule: BatchSchedule
    /// The current epoch's global batch, this rank's share of it, and the rows per
    /// forward/backward pass (the share is `localBatch / microBatch` passes).
    public private(set) var globalBatch: Int
    public private(set) var localBatch: Int
    public private(set) var microBatch: Int
    /// `batch.micro` if set; otherwise a pass is one GSNR group (or the whole share).
    private let fixedMicroBatch: Int?
    public private(set) var stepsPerEpoch: Int
    public private(set) var position = TrainingPosition()

    /// The epoch whose permutation `order` holds (−1: none yet).
    private var orderEpoch = -1
    private var order: [Int32]
    private let input: FloatBuffer
    private let labels: UnsafeMutablePointer<Int32>
    private let capacity: Int

    /// Rows per evaluation chunk; the network's buffers are sized for max(local batch, this).
    public static let evaluationChunk = 1000

    /// With `gsnr`, `optimizer` is wrapped in `VarianceReduced` (GSNR momentum when `gsnrMomentum`).
    public init(comm: Communicator, network: Network, optimizer: any Optimizer, train: Dataset,
                schedule: LearningRateSchedule, seed: UInt64, batchSchedule: BatchSchedule, largestBatch: Int,
                microBatch: Int? = nil, gsnr: GSNRSettings? = nil, gsnrMomentum: Bool = false) {
        self.comm = comm
        self.network = network
        self.train = train
        self.schedule = schedule
        self.seed = seed
        self.batchSchedule = batchSchedule
        groupsPerRank = gsnr?.groupsPerRank ?? 1
        fixedMicroBatch = microBatch
        (globalBatch, localBatch, self.microBatch, stepsPerEpoch) = Self.shape(
            epoch: 0, batchSchedule, ranks: comm.size, groups: groupsPerRank, micro: microBatch, samples: train.count)
        let p = network.parameterCount
        if let gsnr {
            exchange = FloatBuffer(count: 2 * p + 1)
            let reduced = VarianceReduced(base: optimizer, views: network.views, parameterCount: p,
                                          groups: groupsPerRank * comm.size, settings: gsnr, useMomentum: gsnrMomentum)
            reduced.bind(squares: exchange.pointer + p)
            self.optimizer = reduced
        } else {
            precondition(network.gradients.count == p + 1, "the network needs one extra gradient slot for the loss")
            exchange = network.gradients
            self.optimizer = optimizer
        }
        order = [Int32](repeating: 0, count: train.count)
        // Sized once for the largest pass of the run.
        capacity = max(microBatch ?? largestBatch / comm.size / groupsPerRank, Self.evaluationChunk)
        input = FloatBuffer(count: capacity * train.width)
        labels = .allocate(capacity: capacity)
        network.reserve(batch: capacity)
    }

    deinit { labels.deallocate() }

    /// Continues from a checkpoint's position.
    public func restore(_ position: TrainingPosition) {
        self.position = position
        enter(epoch: position.epoch)
    }

    /// The batch sizes and steps of `epoch` (all validated by Job.validate for the whole run).
    private static func shape(epoch: Int, _ schedule: BatchSchedule, ranks: Int, groups: Int, micro: Int?, samples: Int)
        -> (global: Int, local: Int, micro: Int, steps: Int) {
        let global = schedule.batch(epoch: epoch)
        let local = global / ranks
        precondition(global % ranks == 0 && local % groups == 0, "validated by Job.validate")
        let pass = micro ?? local / groups
        precondition((local / groups) % pass == 0, "validated by Job.validate")
        return (global, local, pass, EpochOrder.stepsPerEpoch(samples: samples, globalBatch: global))
    }

    private func enter(epoch: Int) {
        (globalBatch, localBatch, microBatch, stepsPerEpoch) = Self.shape(
            epoch: epoch, batchSchedule, ranks: comm.size, groups: groupsPerRank, micro: fixedMicroBatch, samples: train.count)
    }

    /// One optimizer step on the next global batch. Returns the global-batch mean loss and the rate used.
    public func step() throws -> (loss: Double, lr: Double) {
        if position.epochStep == stepsPerEpoch {
            position.epoch += 1
            position.epochStep = 0
            enter(epoch: position.epoch)
        }
        if orderEpoch != position.epoch {
            EpochOrder.permutation(seed: seed, epoch: position.epoch, into: &order)
            orderEpoch = position.epoch
        }
        let window = EpochOrder.localWindow(step: position.epochStep, globalBatch: globalBatch, rank: comm.rank, ranks: comm.size)
        let p = network.parameterCount
        let microPerGroup = localBatch / groupsPerRank / microBatch
        var localLoss = 0.0
        for group in 0..<groupsPerRank {
            for micro in 0..<microPerGroup {
                let start = window.lowerBound + (group * microPerGroup + micro) * microBatch
                order.withUnsafeBufferPointer { all in
                    train.gather(UnsafeBufferPointer(rebasing: all[start..<(start + microBatch)]), x: input.pointer, y: labels)
                }
                let logits = network.forward(input.pointer, batch: microBatch)
                let dlogits = network.logitGradient
                // Scaled by 1/B (global), so the allreduce-sum over ranks is the global-batch mean.
                localLoss += SoftmaxCrossEntropy.lossAndGradient(
                    logits: logits, labels: labels, dlogits: dlogits, batch: microBatch,
                    classes: network.classes, scale: 1 / Float(globalBatch))
                // The first pass writes the gradients, later ones add to them: no zeroing pass needed.
                network.backward(input.pointer, dlogits: dlogits, batch: microBatch, accumulate: micro > 0)
            }
            if exchange !== network.gradients {
                GradientGroups.fold(network.gradients.pointer, sum: exchange.pointer, squares: exchange.pointer + p,
                                    count: p, first: group == 0)
            }
        }

        // One collective per step: the loss sum rides in the last slot.
        let lossSlot = exchange.count - 1
        exchange.pointer[lossSlot] = Float(localLoss)
        let callsBefore = comm.collectiveCalls
        comm.allreduce(exchange.buffer)
        collectivesLastStep = comm.collectiveCalls - callsBefore
        let loss = Double(exchange.pointer[lossSlot]) / Double(globalBatch)
        guard loss.isFinite else {
            throw LockstepError.runtime("the loss became non-finite (\(loss)) at step \(position.step + 1): lower optimizer.lr or check the data")
        }
        let lr = schedule.lr(step: position.step, epoch: position.epoch, batch: globalBatch)
        optimizer.step(parameters: network.parameters.pointer, gradients: exchange.pointer, lr: Float(lr))

        position.step += 1
        position.epochStep += 1
        position.samplesSeen += globalBatch
        return (loss, lr)
    }

    /// ‖ḡ‖ of the last step's averaged gradient (before weight decay and the GSNR multiplier).
    /// One pass without GSNR; call it only when logging.
    public var gradientNorm: Double {
        if let reduced = optimizer as? VarianceReduced { return reduced.meanGradientNorm }
        return Norms.l2(exchange.pointer, network.parameterCount)
    }

    /// Whether the step just taken finished an epoch.
    public var atEpochEnd: Bool { position.epochStep == stepsPerEpoch }

    /// ‖∇f(w)‖ over the whole training set and the mean training loss (ALGORITHMS.md §4): one
    /// extra deterministic pass (no update, nothing random), each rank a contiguous slice, one
    /// allreduce of [gradient, loss]. Uses the network's gradient buffer, so call it between steps.
    public func fullGradient() -> (norm: Double, loss: Double) {
        let n = train.count, p = network.parameterCount
        let start = n * comm.rank / comm.size, end = n * (comm.rank + 1) / comm.size
        var lossSum = 0.0
        var chunkStart = start
        if start == end { network.gradients.fill(0) }
        while chunkStart < end {
            let chunkEnd = min(chunkStart + capacity, end)
            let rows = chunkEnd - chunkStart
            train.gather(chunkStart..<chunkEnd, x: input.pointer, y: labels)
            let logits = network.forward(input.pointer, batch: rows)
            lossSum += SoftmaxCrossEntropy.lossAndGradient(logits: logits, labels: labels, dlogits: network.logitGradient,
                                                           batch: rows, classes: network.classes, scale: 1 / Float(n))
            network.backward(input.pointer, dlogits: network.logitGradient, batch: rows, accumulate: chunkStart > start)
            chunkStart = chunkEnd
        }
        network.gradients.pointer[p] = Float(lossSum)
        comm.allreduce(network.gradients.buffer)
        return (Norms.l2(network.gradients.pointer, p), Double(network.gradients.pointer[p]) / Double(n))
    }

    /// Accuracy and mean loss over a whole split; each rank takes a contiguous slice, sums are allreduced.
    public func evaluate(_ data: Dataset) -> (accuracy: Double, loss: Double) {
        let start = data.count * comm.rank / comm.size
        let end = data.count * (comm.rank + 1) / comm.size
        var totals = [0.0, 0.0]   // [correct, loss sum]
        var chunkStart = start
        while chunkStart < end {
            let chunkEnd = min(chunkStart + capacity, end)
            let n = chunkEnd - chunkStart
            data.gather(chunkStart..<chunkEnd, x: input.pointer, y: labels)
            let logits = network.forward(input.pointer, batch: n)
            let r = SoftmaxCrossEntropy.lossAndCorrect(logits: logits, labels: labels, batch: n, classes: network.classes)
            totals[0] += Double(r.correct)
            totals[1] += r.loss
            chunkStart = chunkEnd
        }
        comm.allreduce(&totals, .sum)
        return (totals[0] / Double(data.count), totals[1] / Double(data.count))
    }
}
