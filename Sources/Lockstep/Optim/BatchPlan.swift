// The run's epochs as runs of equal batches ("segments"): what the batch schedule gives every
// epoch the run touches, its steps, the run's total and the training position after any step.
// Its size does not grow with the run: a schedule changes the batch only while it grows, at
// most ~63 times before the cap or Int's range stops it, so a run of 10^15 epochs is one segment.

public struct BatchPlan: Equatable, Sendable {
    public struct Segment: Equatable, Sendable {
        /// The segment's first 0-based epoch and how many epochs it spans.
        public var firstEpoch: Int
        public var epochs: Int
        public var batch: Int
        /// ⌊N/batch⌋: the tail of each epoch is dropped.
        public var stepsPerEpoch: Int
        public var lastEpoch: Int { firstEpoch + epochs - 1 }
    }

    public let segments: [Segment]
    /// Steps the plan covers (at least the `totalSteps` asked for, unless a batch larger than the
    /// data set ends it early: Job.validate reports that).
    public let steps: Int

    /// Every epoch until `totalSteps` steps are covered (nil: `epochs` epochs). Throws a usage
    /// error when the count of steps would not fit in an Int.
    public init(_ schedule: BatchSchedule, samples: Int, epochs: Int, totalSteps: Int?) throws {
        precondition(samples > 0 && epochs > 0, "validated before")
        var segments: [Segment] = []
        var covered = 0
        var epoch = 0
        func done() -> Bool { totalSteps.map { covered >= $0 } ?? (epoch >= epochs) }
        while !done() {
            let batch = schedule.batch(epoch: epoch)
            let stepsPerEpoch = EpochOrder.stepsPerEpoch(samples: samples, globalBatch: batch)
            // The epochs this batch holds: to the end of the growth interval, or (once the batch
            // has stopped changing) to the end of the run.
            let (next, pastInt) = (epoch / schedule.everyEpochs + 1).multipliedReportingOverflow(by: schedule.everyEpochs)
            var span = pastInt || schedule.batch(epoch: next) == batch ? Int.max : next - epoch
            if let totalSteps {
                // Enough epochs to cover the remaining steps (a partial last epoch counts whole).
                if stepsPerEpoch > 0 {
                    let remaining = totalSteps - covered
                    span = min(span, remaining / stepsPerEpoch + (remaining % stepsPerEpoch == 0 ? 0 : 1))
                }
            } else {
                span = min(span, epochs - epoch)
            }
            // A batch larger than the data set takes no step; Job.validate reports it.
            if stepsPerEpoch == 0 { span = 1 }
            segments.append(Segment(firstEpoch: epoch, epochs: span, batch: batch, stepsPerEpoch: stepsPerEpoch))
            let (segmentSteps, o1) = span.multipliedReportingOverflow(by: stepsPerEpoch)
            let (sum, o2) = covered.addingReportingOverflow(segmentSteps)
            guard !o1 && !o2 else {
                throw LockstepError.usage("\(epochs) epochs at \(stepsPerEpoch) steps per epoch are more than \(Int.max) steps: set fewer run.epochs (or schedule.warmup_epochs), or run.steps")
            }
            covered = sum
            if stepsPerEpoch == 0 { break }
            epoch += span
        }
        self.segments = segments
        self.steps = covered
    }

    public var largestBatch: Int { segments.map(\.batch).max() ?? 0 }

    /// Where training stands after `step` steps (0...steps), as the trainer counts it: an epoch's
    /// last step leaves `epochStep == stepsPerEpoch`; the next step moves to the next epoch.
    /// nil if `step` lies outside the plan.
    public func position(afterSteps step: Int) -> TrainingPosition? {
        guard step > 0 else { return step == 0 ? TrainingPosition() : nil }
        var covered = 0
        var samples = 0
        for s in segments where s.stepsPerEpoch > 0 {
            let segmentSteps = s.epochs * s.stepsPerEpoch
            if step <= covered + segmentSteps {
                let k = step - covered
                let epochInSegment = (k - 1) / s.stepsPerEpoch
                var position = TrainingPosition()
                position.step = step
                position.epoch = s.firstEpoch + epochInSegment
                position.epochStep = k - epochInSegment * s.stepsPerEpoch
                // Fits: samples seen never exceed steps × the largest batch, and the trainer
                // counted them in an Int too.
                let (more, overflow) = k.multipliedReportingOverflow(by: s.batch)
                guard !overflow, !samples.addingReportingOverflow(more).overflow else { return nil }
                position.samplesSeen = samples + more
                return position
            }
            covered += segmentSteps
            let (more, overflow) = segmentSteps.multipliedReportingOverflow(by: s.batch)
            guard !overflow, !samples.addingReportingOverflow(more).overflow else { return nil }
            samples += more
        }
        return nil
    }
}
