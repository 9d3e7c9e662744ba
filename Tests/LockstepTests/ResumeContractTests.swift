// The resume contract (docs/checkpoints.md): each row of the table, as ResumeContract judges a
// job against the resolved job stored in a checkpoint.
import Testing
import Lockstep

@Suite struct ResumeContractTests {
    static let base = """
        [run]
        seed = 3
        epochs = 4
        [data]
        file = "data/a.h5"
        [model]
        layers = [{ units = 16 }, { units = 10 }]
        [batch]
        global = 128
        [optimizer]
        name = "sgd"
        lr = 0.1
        momentum = 0.9
        """

    static func resolved(_ overrides: [String] = []) throws -> String {
        try Job.parse(base, source: "job.toml", overrides: overrides).resolvedTOML
    }

    /// The verdicts of resuming a `base` checkpoint with `base` + `overrides`, by key.
    static func verdicts(_ overrides: [String]) throws -> [String: ResumeContract.Verdict] {
        let differences = ResumeContract.differences(checkpoint: try resolved(), job: try resolved(overrides))
        return Dictionary(uniqueKeysWithValues: differences.map { ($0.key, $0.verdict) })
    }

    @Test func theSameJobHasNoDifferences() throws {
        #expect(ResumeContract.differences(checkpoint: try Self.resolved(), job: try Self.resolved()).isEmpty)
    }

    @Test(arguments: [
        // Errors: the data order, the model or the optimizer's state depend on these.
        (["model.layers=[{units=16, activation=\"identity\"},{units=10}]"], "model.layers.0", ResumeContract.Verdict.error),
        (["model.layers=[{units=17},{units=10}]"], "model.layers.0", .error),
        (["model.layers=[{units=16},{units=16},{units=10}]"], "model.layers.2", .error),
        (["data.normalization=\"none\""], "data.normalization", .error),
        (["run.seed=4"], "run.seed", .error),
        (["batch.global=256"], "batch.global", .error),
        (["batch.schedule=\"increasing\""], "batch.schedule", .error),
        (["optimizer.name=\"nshb\""], "optimizer.name", .error),
        (["gsnr.enabled=true"], "gsnr.enabled", .error),
        // Warnings: training continues correctly with the new value.
        (["optimizer.lr=0.05"], "optimizer.lr", .warning),
        (["optimizer.momentum=0.8"], "optimizer.momentum", .warning),
        (["schedule.warmup_steps=10"], "schedule.warmup_steps", .warning),
        (["schedule.decay=\"cosine\""], "schedule.decay", .warning),
        (["augment.crop_padding=2"], "augment.crop_padding", .warning),
        (["augment.flip=true"], "augment.flip", .warning),
        (["loss.label_smoothing=0.1"], "loss.label_smoothing", .warning),
        // Accepted: the same training (up to summation order).
        (["batch.micro=32"], "batch.micro", .accepted),
        (["run.epochs=8"], "run.epochs", .accepted),
        (["run.steps=1000"], "run.steps", .accepted),
        (["exchange.bucket_mb=1"], "exchange.bucket_mb", .accepted),
        (["data.file=\"data/moved.h5\""], "data.file", .accepted),
        (["run.out=\"elsewhere\""], "run.out", .accepted),
        (["run.log_every=1"], "run.log_every", .accepted),
        (["run.keep_checkpoints=9"], "run.keep_checkpoints", .accepted),
    ] as [([String], String, ResumeContract.Verdict)])
    func eachRowOfTheContract(_ overrides: [String], _ key: String, _ verdict: ResumeContract.Verdict) throws {
        let verdicts = try Self.verdicts(overrides)
        #expect(verdicts[key] == verdict, "\(overrides): \(verdicts)")
    }

    @Test func aLongerRunWarnsOnlyWhenTheDecayRunsToTheEnd() throws {
        let cosine = ResumeContract.differences(checkpoint: try Self.resolved(["schedule.decay=\"cosine\""]),
                                                job: try Self.resolved(["schedule.decay=\"cosine\"", "run.epochs=8"]))
        #expect(cosine.map(\.key) == ["run.epochs"] && cosine.first?.verdict == .warning)
        #expect(try Self.verdicts(["run.epochs=8"])["run.epochs"] == .accepted)
    }

    /// A checkpoint written before [augment] and [loss] existed has neither section: it trained
    /// with their defaults, so the same job resumes it without a difference, and one that sets
    /// them is told so against the default.
    @Test func aCheckpointFromBeforeAugmentAndLossHadTheirDefaults() throws {
        let full = try Self.resolved()
        let older = String(full[..<full.range(of: "\n[augment]")!.lowerBound]) + "\n"
        #expect(!older.contains("[augment]") && !older.contains("[loss]") && older.contains("[exchange]"))
        #expect(ResumeContract.differences(checkpoint: older, job: full).isEmpty)
        let smoothed = ResumeContract.differences(checkpoint: older, job: try Self.resolved(["loss.label_smoothing=0.1", "augment.flip=true"]))
        #expect(smoothed.map(\.key) == ["augment.flip", "loss.label_smoothing"])
        #expect(smoothed.map(\.checkpoint) == ["false", "0.0"] && smoothed.allSatisfy { $0.verdict == .warning })
    }

    @Test func differencesNameBothValues() throws {
        let d = try #require(ResumeContract.differences(checkpoint: try Self.resolved(), job: try Self.resolved(["batch.global=256"])).first)
        #expect(d.checkpoint == "128" && d.job == "256")
    }
}
