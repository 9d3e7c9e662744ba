// Increasing batch-size schedules (docs/algorithms.md §4): b(e) = min(a·δ^⌊e/E⌋ + c, b_max), the
// per-epoch plan (steps = ⌊N/b⌋), total steps, warmup in epochs, and validation of every epoch's batch.

import Lockstep
import Testing

struct BatchScheduleTests {
    @Test func formulaWithIntervalsOffsetAndCap() {
        var s = BatchSchedule(base: 8)
        #expect(s.isConstant && (0..<5).allSatisfy { s.batch(epoch: $0) == 8 })
        s.growth = 4
        s.everyEpochs = 40
        // The authors' setting: 8 → 2048, ×4 every 40 epochs.
        #expect([0, 39, 40, 79, 80, 120, 160, 199].map { s.batch(epoch: $0) } == [8, 8, 32, 32, 128, 512, 2048, 2048])
        s.maxBatch = 1000
        #expect(s.batch(epoch: 160) == 1000 && s.batch(epoch: 120) == 512)
        // Capped affine form: min(a·δ^⌊e/E⌋ + c, b_max).
        var affine = BatchSchedule(base: 6)
        affine.growth = 2
        affine.everyEpochs = 2
        affine.offset = 4
        affine.maxBatch = 40
        #expect((0..<10).map { affine.batch(epoch: $0) } == [10, 10, 16, 16, 28, 28, 40, 40, 40, 40])
    }

    @Test func planDropsEachEpochsTailAndCoversTheRun() throws {
        var s = BatchSchedule(base: 100)
        s.growth = 2
        let plan = try BatchPlan(s, samples: 1050, epochs: 3, totalSteps: nil)
        #expect(plan.segments.map(\.batch) == [100, 200, 400])
        #expect(plan.segments.map(\.stepsPerEpoch) == [10, 5, 2])
        #expect(plan.steps == 17)
        // With a step budget the plan runs until the budget is covered.
        #expect(try BatchPlan(s, samples: 1050, epochs: 1, totalSteps: 16).segments.map(\.firstEpoch) == [0, 1, 2])
    }

    /// The position the trainer reaches after `step` steps, by walking it step by step.
    static func walk(_ s: BatchSchedule, samples: Int, steps: Int) -> TrainingPosition {
        var p = TrainingPosition()
        var stepsPerEpoch = samples / s.batch(epoch: 0)
        for _ in 0..<steps {
            if p.epochStep == stepsPerEpoch {
                p.epoch += 1
                p.epochStep = 0
                stepsPerEpoch = samples / s.batch(epoch: p.epoch)
            }
            p.step += 1
            p.epochStep += 1
            p.samplesSeen += s.batch(epoch: p.epoch)
        }
        return p
    }

    @Test func positionAfterAnyStepMatchesTheTrainersWalk() throws {
        var s = BatchSchedule(base: 8)
        s.growth = 2
        s.everyEpochs = 3
        s.offset = 1
        s.maxBatch = 70
        let plan = try BatchPlan(s, samples: 300, epochs: 20, totalSteps: nil)
        for step in 0...plan.steps {
            #expect(plan.position(afterSteps: step) == Self.walk(s, samples: 300, steps: step), "step \(step)")
        }
        #expect(plan.position(afterSteps: plan.steps + 1) == nil)
        #expect(plan.position(afterSteps: -1) == nil)
    }

    @Test func planSizeDoesNotGrowWithTheRun() throws {
        // 10^15 epochs, or 10^18 steps: a handful of segments, computed at once.
        let constant = try BatchPlan(BatchSchedule(base: 10), samples: 1000, epochs: 1_000_000_000_000_000, totalSteps: nil)
        #expect(constant.segments.count == 1 && constant.steps == 100 * 1_000_000_000_000_000)
        var growing = BatchSchedule(base: 10)
        growing.growth = 2
        growing.maxBatch = 640
        let long = try BatchPlan(growing, samples: 1000, epochs: 1, totalSteps: 1_000_000_000_000_000_000)
        #expect(long.segments.map(\.batch) == [10, 20, 40, 80, 160, 320, 640])
        #expect(long.steps >= 1_000_000_000_000_000_000)
        #expect(long.position(afterSteps: 1_000_000_000_000_000)?.samplesSeen ?? 0 > 640 * 999_999_999_999_000)
        // More steps than an Int holds is a usage error naming the key, not a trap.
        do {
            _ = try BatchPlan(BatchSchedule(base: 1), samples: 1000, epochs: Int.max, totalSteps: nil)
            Issue.record("an overflowing run length was accepted")
        } catch let e as LockstepError {
            #expect(e.message.contains("run.epochs"))
        }
    }

    static let job = """
    [run]
    epochs = 3
    [data]
    file = "d.h5"
    [model]
    layers = [{ units = 4 }, { units = 3 }]
    [batch]
    global = 12
    schedule = "increasing"
    growth = 2
    [optimizer]
    name = "nshb"
    lr = 0.1
    [schedule]
    warmup_epochs = 2

    """

    @Test func jobTotalsAndWarmupFollowTheSchedule() throws {
        let job = try Job.parse(Self.job, source: "j.toml")
        #expect(job.batch.schedule.batch(epoch: 2) == 48)
        #expect(try job.totalSteps(trainSamples: 600) == 50 + 25 + 12)
        #expect(try job.largestBatch(trainSamples: 600) == 48)
        // Warmup over 2 epochs = the steps of epochs 0 and 1 at their own batches.
        #expect(try job.learningRateSchedule(trainSamples: 600).warmupSteps == 75)
        #expect(try Job.parse(job.resolvedTOML, source: "x.toml") == job)
    }

    @Test func everyEpochsBatchIsValidated() throws {
        let job = try Job.parse(Self.job, source: "j.toml")
        try job.validate(worldSize: 3, trainSamples: 600)
        // 12 and 24 split over 4 ranks into 3 and 6, but 48 / 5 does not: on 5 ranks even epoch 0 fails.
        #expect(throws: LockstepError.self) { try job.validate(worldSize: 5, trainSamples: 600) }
        // Epoch 2's batch (48) larger than the data set.
        do {
            try job.validate(worldSize: 1, trainSamples: 40)
            Issue.record("a batch larger than the data set was accepted")
        } catch let e as LockstepError {
            #expect(e.message.contains("larger than the 40 training samples"))
        }
        var micro = Self.job.replacingAll("schedule = \"increasing\"", "schedule = \"increasing\"\nmicro = 4")
        micro = micro.replacingAll("global = 12", "global = 8")
        // 8/2 = 4 and 16/2 = 8 are multiples of 4, and so is 32/2 = 16: valid on 2 ranks.
        try Job.parse(micro, source: "j.toml").validate(worldSize: 2, trainSamples: 600)
        #expect(throws: LockstepError.self) { try Job.parse(Self.job.replacingAll("growth = 2", "growth = 2\nmax = 0"), source: "j.toml") }
        #expect(throws: LockstepError.self) {
            try Job.parse(Self.job.replacingAll("schedule = \"increasing\"\ngrowth = 2", "growth = 2"), source: "j.toml")
        }
    }
}

extension String {
    fileprivate func replacingAll(_ a: String, _ b: String) -> String {
        split(separator: a, omittingEmptySubsequences: false).joined(separator: b)
    }
}
