// run.nonfinite: a batch whose loss is not finite either ends the run (abort, the default) with
// the step and the first layer named, or is skipped (skip) with the parameters left alone. The
// decision is collective: the overflowing sample lives on one rank, and every rank still
// skips, or stops at, the same step.

import Foundation
import Testing

extension MultiRank {
    @Suite struct NonFinite {
        /// Training sample 5 overflows the forward pass; 30 steps of 24 cover it at least once.
        static func setUp(_ name: String) throws -> String {
            let dir = try Scratch.folder(name)
            try Scratch.dataset(at: dir + "/data.h5", overflowing: [5])
            return dir
        }

        static func skippedSteps(_ runDir: String) throws -> [Int] {
            try Scratch.metrics(runDir).filter { $0["measure"] as? String == "skipped" }.map { $0["step"] as! Int }
        }

        @Test func skipLeavesTheParametersAndAgreesAcrossRankCounts() throws {
            let dir = try Self.setUp("nonfinite-skip")
            var skipped: [[Int]] = []
            var finals: [[String: [Float]]] = []
            for (name, ranks) in [("one", nil), ("two", 2)] as [(String, Int?)] {
                try Scratch.job(at: "\(dir)/\(name).toml", data: dir + "/data.h5", out: "\(dir)/\(name)")
                let launch = try Launcher.run(ranks: ranks, ["train", "\(dir)/\(name).toml", "--set", "run.nonfinite=skip"])
                #expect(launch.exitCode == 0, "\(launch.stderr)")
                #expect(launch.stdout.contains("skipped: non-finite loss"))
                skipped.append(try Self.skippedSteps("\(dir)/\(name)"))
                finals.append(try Scratch.checkpointTensors(Scratch.checkpoint("\(dir)/\(name)", step: 30)))
            }
            #expect(!skipped[0].isEmpty, "the overflowing sample was in some batch")
            #expect(skipped[0] == skipped[1], "1 rank skipped \(skipped[0]), 2 ranks \(skipped[1])")
            // Training went on and stayed finite, and the two runs agree as any two rank counts do.
            let losses = try Scratch.losses("\(dir)/two").filter { !$0.1.isNaN }
            #expect(losses.last!.1.isFinite && losses.last!.1 < losses.first!.1)
            for (path, values) in finals[0] {
                #expect(values.allSatisfy { $0.isFinite }, "\(path) is not finite")
                #expect(relativeDifference(values, finals[1][path] ?? []) <= 1e-4, "\(path)")
            }
        }

        @Test func abortNamesTheStepAndTheFirstLayerOnEveryRankCount() throws {
            let dir = try Self.setUp("nonfinite-abort")
            try Scratch.job(at: "\(dir)/skip.toml", data: dir + "/data.h5", out: "\(dir)/skip")
            _ = try Launcher.run(ranks: 2, ["train", "\(dir)/skip.toml", "--set", "run.nonfinite=skip"])
            let skips = try Self.skippedSteps("\(dir)/skip")
            let first = try #require(skips.first)
            for ranks in [2, 3] {
                try Scratch.job(at: "\(dir)/abort\(ranks).toml", data: dir + "/data.h5", out: "\(dir)/abort\(ranks)")
                let launch = try Launcher.run(ranks: ranks, ["train", "\(dir)/abort\(ranks).toml"], timeout: 30)
                #expect(launch.exitCode == 1, "\(launch.stderr)")
                #expect(launch.lockstepErrors.count == 1, "one message for the whole job: \(launch.lockstepErrors)")
                let message = launch.lockstepErrors.first ?? ""
                #expect(message.contains("non-finite loss") && message.contains("at step \(first),"), "\(message)")
                #expect(message.contains("first non-finite gradient in dense"), "names the first layer: \(message)")
                #expect(message.contains("run.nonfinite"), "says how to go on: \(message)")
            }
        }
    }
}
