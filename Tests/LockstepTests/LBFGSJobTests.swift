// The job keys of minibatch L-BFGS and of the full batch: defaults, round trip, and the
// combinations that make no sense, each a one-line usage error naming the key.

import Lockstep
import Testing

struct LBFGSJobTests {
    static func parse(_ overrides: [String]) throws -> Job { try JobConfigTests.parse(overrides: overrides) }

    @Test func lbfgsKeysHaveDocumentedDefaults() throws {
        // No lr: L-BFGS's first trial step defaults to 1.
        let text = JobConfigTests.minimal.replacingOccurrences("lr = 0.1", "name = \"lbfgs\"")
        let job = try Job.parse(text, source: "jobs/lbfgs.toml")
        #expect(job.optimizer.name == .lbfgs && job.optimizer.lr == 1)
        #expect(job.optimizer.lbfgs == LBFGSSettings())
        let d = LBFGSSettings()
        #expect(d.history == 10 && d.inner == 1 && d.lineSearch == .armijo && d.curvatureEpsilon == 1e-10 && d.maxEvaluations == 20)
    }

    @Test func lbfgsJobRoundTrips() throws {
        let job = try Self.parse(["optimizer.name=\"lbfgs\"", "optimizer.history=4", "optimizer.inner=3",
                                  "optimizer.line_search=\"strong_wolfe\"", "optimizer.curvature_eps=1e-8", "optimizer.max_evals=9"])
        #expect(job.optimizer.lbfgs.history == 4 && job.optimizer.lbfgs.inner == 3 && job.optimizer.lbfgs.lineSearch == .strongWolfe)
        #expect(job.optimizer.lbfgs.curvatureEpsilon == 1e-8 && job.optimizer.lbfgs.maxEvaluations == 9)
        #expect(try Job.parse(job.resolvedTOML, source: "x.toml") == job, "resolvedTOML:\n\(job.resolvedTOML)")
    }

    @Test func fullBatchResolvesToTheTrainingSet() throws {
        var job = try Self.parse(["batch.global=\"full\"", "optimizer.name=\"lbfgs\""])
        #expect(job.batch.full)
        #expect(job.resolvedTOML.contains("global = \"full\""))
        #expect(try Job.parse(job.resolvedTOML, source: "x.toml") == job)
        job.resolve(trainSamples: 601)
        #expect(job.batch.global == 601 && job.schedule.baseBatch == 601)
        #expect(try job.plan(trainSamples: 601).segments.map(\.stepsPerEpoch) == [1])
        // Any rank count up to the sample count: the slices need not be equal.
        try job.validate(worldSize: 7, trainSamples: 601)
        expectUsage(["\"full\"", "at most 601 ranks"]) { try job.validate(worldSize: 602, trainSamples: 601) }
    }

    @Test func nonsensicalCombinationsAreUsageErrors() {
        expectUsage(["batch.global", "\"full\"", "half"]) { try Self.parse(["batch.global=\"half\""]) }
        expectUsage(["batch.global", "cannot grow"]) { try Self.parse(["batch.global=\"full\"", "batch.schedule=\"increasing\""]) }
        expectUsage(["gsnr.enabled", "L-BFGS"]) { try Self.parse(["optimizer.name=\"lbfgs\"", "gsnr.enabled=true", "gsnr.groups_per_rank=2"]) }
        expectUsage(["gsnr.enabled", "full"]) { try Self.parse(["batch.global=\"full\"", "gsnr.enabled=true", "gsnr.groups_per_rank=2"]) }
        expectUsage(["optimizer.momentum", "lbfgs"]) { try Self.parse(["optimizer.name=\"lbfgs\"", "optimizer.momentum=0.9"]) }
        expectUsage(["optimizer.history", "sgd", "lbfgs"]) { try Self.parse(["optimizer.history=5"]) }
        expectUsage(["optimizer.line_search", "\"armijo\"", "\"strong_wolfe\""]) {
            try Self.parse(["optimizer.name=\"lbfgs\"", "optimizer.line_search=\"exact\""])
        }
        expectUsage(["optimizer.inner", "at least 1"]) { try Self.parse(["optimizer.name=\"lbfgs\"", "optimizer.inner=0"]) }
    }
}
