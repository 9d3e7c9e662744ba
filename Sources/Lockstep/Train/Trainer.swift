// The step loop's body: where the run is (step, epoch, samples seen), the batch shape of the
// current epoch, the learning rate, and what a non-finite loss does. Everything else is behind
// a step driver (first-order or L-BFGS, StepDriver.swift), which runs the passes over this
// rank's rows (BatchPasses.swift) and the exchange (GradientExchange.swift); a first-order
// `step` allocates nothing. Built from a `TrainerConfiguration`, which only `Job` makes.

/// Time a step spends waiting rather than computing, summed over the steps so far.
public struct StepWaits: Sendable {
    /// In the gradient exchange after backward: the whole allreduce, or with buckets the part
    /// the overlap did not hide (first-order steps; L-BFGS's evaluations are not counted).
    public var exchange = 0.0
    /// For the step's rows: nothing when the background gather had them ready, the rest of it
    /// when it had not, the whole gather on the first step and after a resume (minibatch steps).
    public var data = 0.0
    public init() {}
    init(exchange: Double, data: Double) {
        self.exchange = exchange
        self.data = data
    }
}

public final class Trainer {
    public let comm: Communicator
    public let network: Network
    public let train: any DataSource
    public let configuration: TrainerConfiguration
    private let driver: any StepDriver
    private let passes: BatchPasses
    /// The network's gradient buffer: [g (P) | slots] (the full-gradient pass sums it).
    private let networkLayout: ExchangeLayout

    /// The optimizer whose state checkpoints save: a first-order one (possibly GSNR-wrapped) or L-BFGS.
    public var optimizer: any OptimizerState { driver.optimizer }
    /// Gradient groups per rank (1 without GSNR).
    public var groupsPerRank: Int { configuration.groupsPerRank }
    /// Whether every step uses the whole training set (`batch.global = "full"`).
    public var fullBatch: Bool { configuration.fullBatch }
    /// The current epoch's batch shape.
    public private(set) var shape: StepShape
    public var globalBatch: Int { shape.global }
    public var localBatch: Int { shape.local }
    public var microBatch: Int { shape.micro }
    public var stepsPerEpoch: Int { shape.stepsPerEpoch }
    public private(set) var position = TrainingPosition()
    /// Steps skipped for a non-finite loss, in all and in a row up to now.
    public private(set) var skippedSteps = 0
    private var consecutiveSkips = 0
    /// Collective calls made by the last step (1 for first-order optimizers; the tests assert it).
    public private(set) var collectivesLastStep = 0
    /// Seconds the steps so far spent waiting, summed (callers take differences).
    public var waits: StepWaits { StepWaits(exchange: driver.exchangeWait, data: passes.dataWait) }
    /// Whether any rank asked to stop by the last step's collective: the same on every rank.
    public var stopAgreed: Bool { driver.stopAgreed }
    /// Whether rank 0 asked for a checkpoint by wall time in the last step's collective.
    public var checkpointAgreed: Bool { driver.checkpointAgreed }
    /// Whether steps exchange in buckets overlapped with backward, and how many.
    public var overlapsExchange: Bool { driver.overlapsExchange }
    public var bucketCount: Int { driver.bucketCount }

    /// Rows per evaluation chunk; the network's buffers are sized for max(local batch, this).
    public static let evaluationChunk = StepShape.evaluationChunk

    /// The network needs its extra gradient slots for what travels with the gradient
    /// (`ExchangeLayout.slotsAfterGradient`).
    public init(comm: Communicator, network: Network, train: any DataSource, configuration: TrainerConfiguration) {
        self.comm = comm
        self.network = network
        self.train = train
        self.configuration = configuration
        shape = Self.shape(epoch: 0, configuration, comm: comm, samples: train.count)
        passes = BatchPasses(comm: comm, network: network, train: train, configuration: configuration)
        switch configuration.method {
        case .firstOrder(let optimizer):
            driver = FirstOrderDriver(comm: comm, network: network, base: optimizer, passes: passes, configuration: configuration)
            networkLayout = ExchangeLayout(parameters: network.parameterCount, statistics: network.statisticsCount)
        case .lbfgs(let lbfgs):
            precondition(configuration.gsnr == nil && configuration.bucketMegabytes == 0,
                         "validated by Job: GSNR and buckets need a first-order optimizer")
            driver = LBFGSDriver(comm: comm, network: network, lbfgs: lbfgs, passes: passes)
            networkLayout = ExchangeLayout(parameters: network.parameterCount, lbfgs: true, statistics: network.statisticsCount)
        }
        precondition(network.gradients.count == networkLayout.count,
                     "the network needs its extra gradient slots (ExchangeLayout.slotsAfterGradient)")
    }

    /// Rows of the largest forward/backward pass of the run (see `StepShape.passRows`).
    public static func passRows(largestBatch: Int, ranks: Int, groupsPerRank: Int, microBatch: Int?, fullBatch: Bool) -> Int {
        StepShape.passRows(largestBatch: largestBatch, ranks: ranks, groupsPerRank: groupsPerRank, microBatch: microBatch, fullBatch: fullBatch)
    }

    private static func shape(epoch: Int, _ c: TrainerConfiguration, comm: Communicator, samples: Int) -> StepShape {
        StepShape.of(epoch: epoch, c.batchSchedule, ranks: comm.size, rank: comm.rank, groups: c.groupsPerRank,
                     micro: c.microBatch, samples: samples, full: c.fullBatch)
    }

    /// Continues from a checkpoint's position.
    public func restore(_ position: TrainingPosition) {
        self.position = position
        shape = Self.shape(epoch: position.epoch, configuration, comm: comm, samples: train.count)
    }

    /// One optimizer step on the next global batch. Returns the global-batch mean loss (before
    /// the step), the rate used, and whether the step was skipped for a non-finite loss.
    public func step() throws -> (loss: Double, lr: Double, skipped: Bool) {
        if position.epochStep == shape.stepsPerEpoch {
            position.epoch += 1
            position.epochStep = 0
            shape = Self.shape(epoch: position.epoch, configuration, comm: comm, samples: train.count)
        }
        let lr = configuration.schedule.lr(step: position.step, epoch: position.epoch, batch: shape.global)
        let callsBefore = comm.collectiveCalls
        let loss = try driver.evaluate(at: position, shape: shape, lr: lr)
        collectivesLastStep = comm.collectiveCalls - callsBefore
        // The loss is allreduced, so every rank takes this branch at the same step.
        let skipped = !loss.isFinite
        if skipped {
            consecutiveSkips += 1
            skippedSteps += 1
            if configuration.nonfinite == .abort || consecutiveSkips > NonFinitePolicy.maxConsecutiveSkips {
                throw LockstepError.runtime(nonFiniteMessage(loss))
            }
        } else {
            consecutiveSkips = 0
            driver.apply(lr: lr)
        }

        position.step += 1
        position.epochStep += 1
        position.samplesSeen += shape.global
        return (loss, lr, skipped)
    }

    /// Names the step and the first parameter tensor whose gradient is non-finite (one pass,
    /// only when it happens).
    private func nonFiniteMessage(_ loss: Double) -> String {
        let gradient = driver.gradient
        let firstBad = network.views.first { view in
            UnsafeBufferPointer(start: gradient + view.offset, count: view.count).contains { !$0.isFinite }
        }
        let where_ = firstBad.map { "first non-finite gradient in \($0.path)" } ?? "the gradients are finite, the loss overflowed"
        let streak = consecutiveSkips > NonFinitePolicy.maxConsecutiveSkips
            ? "\(consecutiveSkips) steps in a row (run.nonfinite = \"skip\" gives up after \(NonFinitePolicy.maxConsecutiveSkips))"
            : "at step \(position.step + 1)"
        return "non-finite loss (\(loss)) \(streak), epoch \(position.epoch) (\(where_)): lower optimizer.lr, check the data, or set run.nonfinite = \"skip\" to skip such steps"
    }

    /// ‖ḡ‖ of the last step's averaged gradient (before weight decay and the GSNR multiplier;
    /// with L-BFGS, at the start of the step). One pass without GSNR; call it only when logging.
    public var gradientNorm: Double { driver.gradientNorm }

    /// The step driver's fields of a metrics line (after the common ones).
    public func stepFields(waitsPerStep: StepWaits) -> [(String, Any)] {
        var fields: [(String, Any)] = []
        driver.appendFields(to: &fields, waitsPerStep: waitsPerStep)
        return fields
    }

    /// Whether the step just taken finished an epoch.
    public var atEpochEnd: Bool { position.epochStep == shape.stepsPerEpoch }

    /// ‖∇f(w)‖ over the whole training set and the mean training loss (docs/algorithms.md §4).
    /// Uses the network's gradient buffer, so call it between steps.
    public func fullGradient() -> (norm: Double, loss: Double) {
        passes.fullGradient(layout: networkLayout)
    }

    /// Accuracy and mean loss over a whole split; each rank takes a contiguous slice, sums are allreduced.
    public func evaluate(_ data: any DataSource) -> (accuracy: Double, loss: Double) {
        passes.evaluate(data)
    }

    /// `lockstep bench`'s overlap probe (OverlapProbe.swift) on the current step's batch; nil on
    /// one rank, without buckets, with L-BFGS or a full batch. Moves nothing.
    public func measureOverlap(passes count: Int) -> OverlapMeasurement? {
        driver.measureOverlap(passes: count, at: position, shape: shape)
    }
}
