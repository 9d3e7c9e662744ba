// User mistakes under a real mpirun: exit code 2, one line naming the problem, quickly, no hang.

import Foundation
import Testing

extension MultiRank {
    @Suite struct BadInput {
        struct Case: Sendable, CustomTestStringConvertible {
            let name: String
            let ranks: Int
            let overrides: [String]
            /// Text the single error line must contain.
            let mentions: [String]
            var testDescription: String { name }
        }

        static let cases: [Case] = [
            Case(name: "misspelled key", ranks: 2, overrides: ["optimizer.lrr=0.1"], mentions: ["optimizer.lrr", "did you mean optimizer.lr"]),
            Case(name: "unknown section", ranks: 2, overrides: ["optimiser.lr=0.1"], mentions: ["optimiser", "unknown key"]),
            Case(name: "wrong type", ranks: 2, overrides: ["batch.global=\"big\""], mentions: ["batch.global", "integer"]),
            Case(name: "impossible value", ranks: 2, overrides: ["optimizer.lr=-1"], mentions: ["optimizer.lr", "at least 0"]),
            Case(name: "batch not divisible by ranks", ranks: 3, overrides: ["batch.global=25"], mentions: ["batch.global", "divisible", "3 ranks"]),
            Case(name: "missing data file", ranks: 2, overrides: ["data.file=\"/nonexistent/data.h5\""], mentions: ["/nonexistent/data.h5", "no such"]),
            Case(name: "wrong dataset path", ranks: 2, overrides: ["data.train_x=\"/training/x\""], mentions: ["data.train_x", "/training/x", "/train/x"]),
            Case(name: "labels out of range", ranks: 2, overrides: ["model.layers=[{units=8},{units=3}]"], mentions: ["label", "0..<3"]),
            Case(name: "bad activation", ranks: 2, overrides: ["model.layers=[{units=8, activation=\"tanhh\"},{units=4}]"], mentions: ["model.layers.0.activation", "relu"]),
        ]

        @Test(arguments: cases)
        func exitsTwoWithOneLine(_ c: Case) throws {
            let dir = try Scratch.folder("bad-input")
            try Scratch.dataset(at: dir + "/data.h5")
            try Scratch.job(at: "\(dir)/job.toml", data: dir + "/data.h5", out: "\(dir)/run")
            let launch = try Launcher.run(ranks: c.ranks, ["train", "\(dir)/job.toml"] + c.overrides.flatMap { ["--set", $0] }, timeout: 60)
            #expect(!launch.timedOut)
            #expect(launch.exitCode == 2, "exit \(launch.exitCode): \(launch.stderr)")
            // One line from one rank (rank 0 speaks for all when all see the same mistake).
            #expect(launch.lockstepErrors.count == 1, "\(launch.stderr)")
            let line = launch.lockstepErrors.first ?? ""
            for text in c.mentions { #expect(line.contains(text), "\(line) does not mention \(text)") }
            #expect(launch.seconds < 30)
            // Nothing was trained or written.
            #expect(!FileManager.default.fileExists(atPath: "\(dir)/run/metrics.jsonl"))
        }

        @Test func badCommandLineExitsTwo() throws {
            let launch = try Launcher.run(ranks: 2, ["train"], timeout: 60)
            #expect(launch.exitCode == 2)
            #expect(launch.stderr.contains("Missing expected argument"))
        }
    }
}
