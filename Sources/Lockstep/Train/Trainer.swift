// The step loop's body: gather this rank's share of the global batch (in micro-batches when
// accumulating), forward, loss, backward, one allreduce of [gradients, loss], update. With GSNR
// the share is split into gradient groups and the one allreduce carries [Σ g_d, Σ g_d², loss].
// With L-BFGS the step evaluates the same batch several times (line search, inner iterations),
// one allreduce per evaluation. With `batch.global = "full"` every rank takes a contiguous slice
// of the training set. Every buffer is sized at init; a first-order `step` allocates nothing.
// A background loader gathers the next step's rows while this one computes; with
// `exchange.bucket_mb` the exchange starts in buckets during the step's last backward.

/// Time a step spends waiting rather than computing, summed over the steps so far.
public struct StepWaits: Sendable {
    /// In the gradient exchange after backward: the whole allreduce, or with buckets the part
    /// the overlap did not hide (first-order steps; L-BFGS's evaluations are not counted).
    public var exchange = 0.0
    /// For the step's rows: nothing when the background gather had them ready, the rest of it
    /// when it had not, the whole gather on the first step and after a resume (minibatch steps).
    public var data = 0.0
    public init() {}
}

public final class Trainer {
    public let comm: Communicator
    public let network: Network
    /// The optimizer whose state checkpoints save: a first-order one (possibly GSNR-wrapped) or L-BFGS.
    public let optimizer: any OptimizerState
    /// The first-order update (nil with L-BFGS).
    private let update: (any Optimizer)?
    /// The minibatch L-BFGS driver (nil for first-order optimizers).
    public let lbfgs: LBFGS?
    /// Gradient groups per rank (1 without GSNR).
    public let groupsPerRank: Int
    /// What the one allreduce of a step carries: [ḡ (P), loss, stop] or, with GSNR,
    /// [Σ w_d (P), Σ w_d² (P), loss, stop]; with L-BFGS [g (P), loss, evaluation tag, stop].
    let exchange: FloatBuffer
    /// Where gradient, squares and slots sit in `exchange`.
    public let layout: ExchangeLayout
    /// Whether this rank wants the job to stop (read once per allreduce).
    public var stopRequested: () -> Bool = { false }
    /// Whether any rank asked to stop by the last step's allreduce: the same on every rank.
    public private(set) var stopAgreed = false
    /// The bucketed, overlapped exchange (`exchange.bucket_mb` > 0), or nil for one allreduce after backward.
    let buckets: BucketedExchange?
    /// Whether steps use `buckets` (the overlap probe also switches it per pass).
    var overlapsExchange: Bool
    /// Buckets of the overlapped exchange (0: one allreduce after backward).
    public var bucketCount: Int { buckets?.bucketCount ?? 0 }
    /// Seconds the steps so far spent waiting, summed (callers take differences).
    public private(set) var waits = StepWaits()
    /// Collective calls made by the last step (1 for first-order optimizers; the tests assert it).
    public private(set) var collectivesLastStep = 0
    public let train: Dataset
    public let schedule: LearningRateSchedule
    public let seed: UInt64
    /// The global batch of each epoch.
    public let batchSchedule: BatchSchedule
    /// Whether every step uses the whole training set (`batch.global = "full"`).
    public let fullBatch: Bool
    /// The current epoch's global batch, this rank's share of it, and the rows per
    /// forward/backward pass (the share is `localBatch / microBatch` passes).
    public private(set) var globalBatch: Int
    public private(set) var localBatch: Int
    public private(set) var microBatch: Int
    /// `batch.micro` if set; otherwise a pass is one GSNR group (or the whole share).
    private let fixedMicroBatch: Int?
    public private(set) var stepsPerEpoch: Int
    public private(set) var position = TrainingPosition()
    /// What a non-finite loss does (`run.nonfinite`).
    public var nonfinite = NonFinitePolicy.abort
    /// Steps skipped for a non-finite loss, in all and in a row up to now.
    public private(set) var skippedSteps = 0
    private var consecutiveSkips = 0

    /// Gathers each step's rows ahead of time on a background thread (nil with a full batch,
    /// which reads contiguous chunks as it goes).
    private let loader: BatchLoader?
    private let input: FloatBuffer
    private let labels: UnsafeMutablePointer<Int32>
    private let capacity: Int

    /// Rows per evaluation chunk; the network's buffers are sized for max(local batch, this).
    public static let evaluationChunk = 1000

    /// With `gsnr`, `optimizer` is wrapped in `VarianceReduced` (GSNR momentum when `gsnrMomentum`).
    /// The network needs extra gradient slots for what travels with the gradient: 2 (loss, stop),
    /// 3 with L-BFGS (loss, evaluation tag, stop). With `bucketMegabytes` > 0 the exchange is
    /// bucketed and overlapped with backward; `overlap: false` builds the buckets for
    /// `measureOverlap` only, and steps exchange in one allreduce.
    public init(comm: Communicator, network: Network, optimizer: any OptimizerState, train: Dataset,
                schedule: LearningRateSchedule, seed: UInt64, batchSchedule: BatchSchedule, largestBatch: Int,
                microBatch: Int? = nil, fullBatch: Bool = false, gsnr: GSNRSettings? = nil, gsnrMomentum: Bool = false,
                bucketMegabytes: Double = 0, overlap: Bool = true) {
        self.comm = comm
        self.network = network
        self.train = train
        self.schedule = schedule
        self.seed = seed
        self.batchSchedule = batchSchedule
        self.fullBatch = fullBatch
        precondition(!fullBatch || gsnr == nil, "validated by Job: GSNR needs equal groups, not a full batch")
        groupsPerRank = gsnr?.groupsPerRank ?? 1
        fixedMicroBatch = microBatch
        (globalBatch, localBatch, self.microBatch, stepsPerEpoch) = Self.shape(
            epoch: 0, batchSchedule, ranks: comm.size, rank: comm.rank, groups: groupsPerRank, micro: microBatch,
            samples: train.count, full: fullBatch)
        let p = network.parameterCount
        lbfgs = optimizer as? LBFGS
        layout = ExchangeLayout(parameters: p, gsnr: gsnr != nil, lbfgs: lbfgs != nil)
        precondition(network.gradients.count == layout.ofNetworkGradients.count,
                     "the network needs its extra gradient slots (ExchangeLayout.slotsAfterGradient)")
        if let gsnr, let first = optimizer as? any Optimizer, let squares = layout.squares {
            exchange = FloatBuffer(count: layout.count)
            let reduced = VarianceReduced(base: first, views: network.views, parameterCount: p,
                                          groups: groupsPerRank * comm.size, settings: gsnr, useMomentum: gsnrMomentum)
            reduced.bind(squares: exchange.pointer + squares)
            self.optimizer = reduced
            update = reduced
        } else {
            precondition(gsnr == nil, "validated by Job: GSNR wraps first-order optimizers only")
            exchange = network.gradients
            self.optimizer = optimizer
            update = optimizer as? any Optimizer
        }
        precondition(update != nil || lbfgs != nil, "a first-order optimizer or L-BFGS")
        if bucketMegabytes > 0 {
            precondition(lbfgs == nil && !fullBatch, "validated by Job: buckets need a first-order optimizer on minibatches")
            let exchanger = BucketedExchange(comm: comm, network: network, exchange: exchange,
                                             squaresOffset: layout.squares,
                                             bucketBytes: Int(bucketMegabytes * 1_000_000))
            network.layerFinishedBackward = { exchanger.layerFinished($0) }
            network.backwardProgress.tick = { exchanger.progress() }
            buckets = exchanger
        } else {
            buckets = nil
        }
        overlapsExchange = overlap && buckets != nil
        loader = fullBatch ? nil : BatchLoader(data: train, seed: seed, capacity: largestBatch / comm.size)
        // Sized once for the largest pass of the run.
        capacity = Self.passRows(largestBatch: largestBatch, ranks: comm.size, groupsPerRank: groupsPerRank,
                                 microBatch: microBatch, fullBatch: fullBatch)
        input = FloatBuffer(count: capacity * train.width)
        labels = .allocate(capacity: capacity)
        network.reserve(batch: capacity)
    }

    /// Rows of the largest forward/backward pass of the run (a micro-batch, a GSNR group's
    /// share, or an evaluation chunk): what activations are sized for, and what a run checks
    /// against the node's memory before building the trainer.
    public static func passRows(largestBatch: Int, ranks: Int, groupsPerRank: Int, microBatch: Int?, fullBatch: Bool) -> Int {
        max(fullBatch ? (microBatch ?? evaluationChunk) : (microBatch ?? largestBatch / ranks / groupsPerRank), evaluationChunk)
    }

    deinit {
        loader?.shutdown()
        labels.deallocate()
    }

    /// Continues from a checkpoint's position.
    public func restore(_ position: TrainingPosition) {
        self.position = position
        enter(epoch: position.epoch)
    }

    /// The batch sizes and steps of `epoch` (all validated by Job.validate for the whole run). A
    /// full batch is split into contiguous slices, as even as the rank count allows.
    private static func shape(epoch: Int, _ schedule: BatchSchedule, ranks: Int, rank: Int, groups: Int, micro: Int?,
                              samples: Int, full: Bool) -> (global: Int, local: Int, micro: Int, steps: Int) {
        if full {
            let local = samples * (rank + 1) / ranks - samples * rank / ranks
            return (samples, local, min(micro ?? evaluationChunk, max(local, 1)), 1)
        }
        let global = schedule.batch(epoch: epoch)
        let local = global / ranks
        precondition(global % ranks == 0 && local % groups == 0, "validated by Job.validate")
        let pass = micro ?? local / groups
        precondition((local / groups) % pass == 0, "validated by Job.validate")
        return (global, local, pass, EpochOrder.stepsPerEpoch(samples: samples, globalBatch: global))
    }

    private func enter(epoch: Int) {
        (globalBatch, localBatch, microBatch, stepsPerEpoch) = Self.shape(
            epoch: epoch, batchSchedule, ranks: comm.size, rank: comm.rank, groups: groupsPerRank, micro: fixedMicroBatch,
            samples: train.count, full: fullBatch)
    }

    /// One optimizer step on the next global batch. Returns the global-batch mean loss (before
    /// the step), the rate used, and whether the step was skipped for a non-finite loss.
    public func step() throws -> (loss: Double, lr: Double, skipped: Bool) {
        if position.epochStep == stepsPerEpoch {
            position.epoch += 1
            position.epochStep = 0
            enter(epoch: position.epoch)
        }
        let lr = schedule.lr(step: position.step, epoch: position.epoch, batch: globalBatch)
        let callsBefore = comm.collectiveCalls
        let loss: Double
        if let lbfgs {
            var evaluation = 0
            loss = try lbfgs.step(parameters: network.parameters.pointer, lr: lr) { gradient in
                evaluation += 1
                return try self.batchGradient(into: gradient, evaluation: evaluation)
            }
        } else {
            loss = batchGradient()
        }
        collectivesLastStep = comm.collectiveCalls - callsBefore
        // The loss is allreduced, so every rank takes this branch at the same step.
        let skipped = !loss.isFinite
        if skipped {
            consecutiveSkips += 1
            skippedSteps += 1
            if nonfinite == .abort || consecutiveSkips > NonFinitePolicy.maxConsecutiveSkips {
                throw LockstepError.runtime(nonFiniteMessage(loss))
            }
        } else {
            consecutiveSkips = 0
            update?.step(parameters: network.parameters.pointer, gradients: exchange.pointer, lr: Float(lr))
        }

        position.step += 1
        position.epochStep += 1
        position.samplesSeen += globalBatch
        return (loss, lr, skipped)
    }

    /// Names the step and the first parameter tensor whose gradient is non-finite (one pass,
    /// only when it happens).
    private func nonFiniteMessage(_ loss: Double) -> String {
        let firstBad = network.views.first { view in
            UnsafeBufferPointer(start: exchange.pointer + view.offset, count: view.count).contains { !$0.isFinite }
        }
        let where_ = firstBad.map { "first non-finite gradient in \($0.path)" } ?? "the gradients are finite, the loss overflowed"
        let streak = consecutiveSkips > NonFinitePolicy.maxConsecutiveSkips
            ? "\(consecutiveSkips) steps in a row (run.nonfinite = \"skip\" gives up after \(NonFinitePolicy.maxConsecutiveSkips))"
            : "at step \(position.step + 1)"
        return "non-finite loss (\(loss)) \(streak), epoch \(position.epoch) (\(where_)): lower optimizer.lr, check the data, or set run.nonfinite = \"skip\" to skip such steps"
    }

    /// The averaged gradient of the current batch at the current parameters, in `exchange`
    /// (first-order path: one allreduce, in place). Returns the batch's mean loss.
    private func batchGradient() -> Double {
        let localLoss = localGradient()
        let waitStart = Clock.nanoseconds()
        if let buckets, overlapsExchange {
            // Started during backward; the slots were filled before it.
            buckets.finish()
        } else {
            fillSlots(localLoss: localLoss)
            comm.allreduce(exchange.buffer)
        }
        waits.exchange += Double(Clock.nanoseconds() - waitStart) * 1e-9
        stopAgreed = exchange.pointer[layout.stop] > 0
        return Double(exchange.pointer[layout.loss]) / Double(globalBatch)
    }

    /// The L-BFGS objective: the averaged gradient of the current batch at the current parameters,
    /// allreduced straight into `target` (P + 3 floats: loss, tag, stop). The tag is each rank's
    /// evaluation count, so ranks that took different line-search branches are caught here
    /// rather than pairing mismatched collectives.
    private func batchGradient(into target: UnsafeMutablePointer<Float>, evaluation: Int) throws -> Double {
        let tag = layout.tag!
        let localLoss = localGradient()
        exchange.pointer[layout.loss] = Float(localLoss)
        exchange.pointer[tag] = Float(evaluation)
        exchange.pointer[layout.stop] = stopRequested() ? 1 : 0
        comm.allreduce(exchange.buffer, into: target)
        stopAgreed = target[layout.stop] > 0
        guard target[tag] == Float(evaluation * comm.size) else {
            throw LockstepError.runtime("ranks diverged inside the L-BFGS step at step \(position.step + 1) (evaluation \(evaluation)): a bug; report it with the job file")
        }
        return Double(target[layout.loss]) / Double(globalBatch)
    }

    /// Forward and backward over this rank's rows of the current batch, the loss scaled by 1/B
    /// (global) so the allreduce-sum is the global-batch mean. The gradient is left in the
    /// network's buffer (with GSNR, folded per group into `exchange`). Returns the local loss sum.
    func localGradient() -> Double {
        if fullBatch {
            let start = train.count * comm.rank / comm.size
            return localGradient(rows: start..<(start + localBatch), chunk: microBatch, scale: 1 / Float(globalBatch))
        }
        let window = EpochOrder.localWindow(step: position.epochStep, globalBatch: globalBatch, rank: comm.rank, ranks: comm.size)
        let (batch, waited) = loader!.batch(epoch: position.epoch, window: window)
        waits.data += waited
        prefetchNextStep()
        let microPerGroup = localBatch / groupsPerRank / microBatch
        var localLoss = 0.0
        for group in 0..<groupsPerRank {
            for micro in 0..<microPerGroup {
                let row = (group * microPerGroup + micro) * microBatch
                let x = batch.x + row * train.width
                localLoss += forwardLoss(x: x, y: batch.y + row, rows: microBatch, scale: 1 / Float(globalBatch))
                if let buckets, overlapsExchange, group == groupsPerRank - 1 && micro == microPerGroup - 1 {
                    // The step's last backward: the slots are final, buckets start as layers finish.
                    fillSlots(localLoss: localLoss)
                    buckets.arm(foldFirst: group == 0)
                }
                // The first pass writes the gradients, later ones add to them: no zeroing pass needed.
                network.backward(x, dlogits: network.logitGradient, batch: microBatch, accumulate: micro > 0)
            }
            // With buckets, the last group was folded bucket by bucket during its backward.
            if let squares = layout.squares, !(buckets != nil && overlapsExchange && group == groupsPerRank - 1) {
                GradientGroups.fold(network.gradients.pointer, sum: exchange.pointer, squares: exchange.pointer + squares,
                                    count: layout.parameters, first: group == 0)
            }
        }
        return localLoss
    }

    /// Writes what travels with a first-order gradient: this rank's loss sum and its stop vote.
    private func fillSlots(localLoss: Double) {
        exchange.pointer[layout.loss] = Float(localLoss)
        exchange.pointer[layout.stop] = stopRequested() ? 1 : 0
    }

    /// Asks the loader for the rows of the step after the current one, which may be in the next
    /// epoch with another global batch (an increasing schedule). Past the run's last epoch the
    /// gathered rows are simply never used.
    private func prefetchNextStep() {
        var (epoch, step, global) = (position.epoch, position.epochStep + 1, globalBatch)
        if step == stepsPerEpoch {
            (epoch, step, global) = (epoch + 1, 0, batchSchedule.batch(epoch: epoch + 1))
            // Job.validate checked the run's epochs only.
            guard global % comm.size == 0, global <= train.count else { return }
        }
        loader?.prefetch(epoch: epoch, window: EpochOrder.localWindow(step: step, globalBatch: global, rank: comm.rank, ranks: comm.size))
    }

    /// Forward and backward over contiguous training rows in chunks of at most `chunk` rows,
    /// the loss scaled by `scale`. Returns the (scaled) loss sum.
    private func localGradient(rows: Range<Int>, chunk: Int, scale: Float) -> Double {
        var lossSum = 0.0
        if rows.isEmpty { network.gradients.fill(0) }
        var chunkStart = rows.lowerBound
        while chunkStart < rows.upperBound {
            let chunkEnd = min(chunkStart + chunk, rows.upperBound)
            train.gather(chunkStart..<chunkEnd, x: input.pointer, y: labels)
            lossSum += forwardBackward(rows: chunkEnd - chunkStart, scale: scale, accumulate: chunkStart > rows.lowerBound)
            chunkStart = chunkEnd
        }
        return lossSum
    }

    /// One pass over the rows gathered into `input`/`labels`. Returns the (scaled) loss sum.
    private func forwardBackward(rows: Int, scale: Float, accumulate: Bool) -> Double {
        let loss = forwardLoss(x: input.pointer, y: labels, rows: rows, scale: scale)
        network.backward(input.pointer, dlogits: network.logitGradient, batch: rows, accumulate: accumulate)
        return loss
    }

    /// Forward and the loss over `rows` samples x with labels y, leaving dL/dlogits for backward.
    private func forwardLoss(x: UnsafePointer<Float>, y: UnsafePointer<Int32>, rows: Int, scale: Float) -> Double {
        let logits = network.forward(x, batch: rows)
        return SoftmaxCrossEntropy.lossAndGradient(logits: logits, labels: y, dlogits: network.logitGradient, batch: rows,
                                                   classes: network.classes, scale: scale)
    }

    /// ‖ḡ‖ of the last step's averaged gradient (before weight decay and the GSNR multiplier;
    /// with L-BFGS, at the start of the step).
    /// One pass without GSNR; call it only when logging.
    public var gradientNorm: Double {
        if let reduced = optimizer as? VarianceReduced { return reduced.meanGradientNorm }
        if let lbfgs { return lbfgs.report.gradientNorm }
        return Norms.l2(exchange.pointer, network.parameterCount)
    }

    /// Whether the step just taken finished an epoch.
    public var atEpochEnd: Bool { position.epochStep == stepsPerEpoch }

    /// ‖∇f(w)‖ over the whole training set and the mean training loss (docs/algorithms.md §4): one
    /// extra deterministic pass (no update, nothing random), each rank a contiguous slice, one
    /// allreduce of [gradient, loss]. Uses the network's gradient buffer, so call it between steps.
    public func fullGradient() -> (norm: Double, loss: Double) {
        let n = train.count, gradients = layout.ofNetworkGradients
        let start = n * comm.rank / comm.size, end = n * (comm.rank + 1) / comm.size
        let lossSum = localGradient(rows: start..<end, chunk: capacity, scale: 1 / Float(n))
        network.gradients.pointer[gradients.loss] = Float(lossSum)
        comm.allreduce(network.gradients.buffer)
        return (Norms.l2(network.gradients.pointer, gradients.parameters), Double(network.gradients.pointer[gradients.loss]) / Double(n))
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
