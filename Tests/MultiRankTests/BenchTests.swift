// `lockstep bench` runs end to end on 2 ranks and reports its measurements with numbers (their
// values are machine-dependent and never asserted: benchmarks measure, tests do not time).

import Foundation
import Testing

extension MultiRank {
    @Suite struct Bench {
        @Test func benchReportsTheExchangeAndTheStepTime() throws {
            let dir = try Scratch.folder("bench")
            try Scratch.dataset(at: dir + "/data.h5")
            try Scratch.job(at: "\(dir)/job.toml", data: dir + "/data.h5", out: "\(dir)/unused")
            let launch = try Launcher.run(ranks: 2, ["bench", "--job", "\(dir)/job.toml", "--steps", "20", "--passes", "10"], timeout: 60)
            #expect(launch.exitCode == 0, "\(launch.stderr)")
            let lines = launch.stdout.split(separator: "\n").map(String.init)
            let exchange = try #require(lines.first { $0.hasPrefix("exchange: ") }, "\(launch.stdout)")
            #expect(exchange.contains("raw MPI_Allreduce") && exchange.contains("ratio "))
            // The synthetic model: 20·32 + 32 + 32·16 + 16 + 16·4 + 4 = 1268 parameters, plus 3 slots (loss, stop, checkpoint).
            #expect(exchange.contains("1271 floats"), "\(exchange)")
            let step = try #require(lines.first { $0.hasPrefix("step: ") }, "\(launch.stdout)")
            #expect(step.contains("global batch 24 (12 per rank)") && step.contains(" ms/step"), "\(step)")
            // The overlap probe: three kinds of pass with a mean and its error each, and the verdict.
            let overlap = try #require(lines.first { $0.hasPrefix("overlap: ") }, "\(launch.stdout)")
            #expect(overlap.contains("passes each") && overlap.contains("one allreduce ") && overlap.contains("buckets ")
                    && (overlap.contains("% hidden") || overlap.contains("nothing measurable")), "\(overlap)")
            #expect(step.contains("waiting for data "), "\(step)")
            // Only the bench speaks: the training run's own progress lines are silenced.
            #expect(!launch.stdout.contains("eval step"))
        }

        /// L-BFGS (and the full batch) have no bucketed exchange: the bench measures the rest and
        /// says the overlap was not measured, instead of failing.
        @Test func benchOfAnLBFGSJobSkipsTheOverlap() throws {
            let dir = try Scratch.folder("bench-lbfgs")
            try Scratch.dataset(at: dir + "/data.h5")
            try Scratch.job(at: "\(dir)/job.toml", data: dir + "/data.h5", out: "\(dir)/unused", optimizer: "name = \"lbfgs\"")
            for extra in [[], ["--set", "batch.global=\"full\""]] {
                let launch = try Launcher.run(ranks: 2, ["bench", "--job", "\(dir)/job.toml", "--steps", "4", "--passes", "5"] + extra, timeout: 60)
                #expect(launch.exitCode == 0, "\(extra): \(launch.stderr)")
                #expect(launch.stdout.contains("overlap: not measured"), "\(extra): \(launch.stdout)")
                #expect(launch.stdout.contains(" ms/step"), "\(extra): \(launch.stdout)")
            }
            let bad = try Launcher.run(ranks: 2, ["bench", "--job", "\(dir)/job.toml", "--bucket-mb", "-1"], timeout: 60)
            #expect(bad.exitCode == 2 && bad.lockstepErrors.count == 1, "\(bad.stderr)")
        }
    }
}
