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
    public let globalBatch: Int
    public let localBatch: Int
    /// Rows per forward/backward pass; the rank's share is `localBatch / microBatch` passes.
    public let microBatch: Int
    public let stepsPerEpoch: Int
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
                schedule: LearningRateSchedule, seed: UInt64, globalBatch: Int, microBatch: Int? = nil,
                gsnr: GSNRSettings? = nil, gsnrMomentum: Bool = false) {
        precondition(globalBatch % comm.size == 0, "validated by Job.validate")
        self.comm = comm
        self.network = network
        self.train = train
        self.schedule = schedule
        self.seed = seed
        self.globalBatch = globalBatch
        localBatch = globalBatch / comm.size
        groupsPerRank = gsnr?.groupsPerRank ?? 1
        let groupSize = localBatch / groupsPerRank
        self.microBatch = microBatch ?? groupSize
        precondition(localBatch % groupsPerRank == 0 && groupSize % self.microBatch == 0, "validated by Job.validate")
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
        stepsPerEpoch = EpochOrder.stepsPerEpoch(samples: train.count, globalBatch: globalBatch)
        order = [Int32](repeating: 0, count: train.count)
        capacity = max(self.microBatch, Self.evaluationChunk)
        input = FloatBuffer(count: capacity * train.width)
        labels = .allocate(capacity: capacity)
        network.reserve(batch: capacity)
    }

    deinit { labels.deallocate() }

    /// Continues from a checkpoint's position.
    public func restore(_ position: TrainingPosition) { self.position = position }

    /// One optimizer step on the next global batch. Returns the global-batch mean loss and the rate used.
    public func step() throws -> (loss: Double, lr: Double) {
        if position.epochStep == stepsPerEpoch {
            position.epoch += 1
            position.epochStep = 0
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
        let lr = schedule.lr(step: position.step, batch: globalBatch)
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
