// The README's demo: the Fashion-MNIST MLP on 2 ranks reaches ≥ 88 % test accuracy.
// Needs Debian's dataset-fashion-mnist (scripts/setup installs it); without it the test fails.

import Foundation
import Testing

extension MultiRank {
    @Suite struct Demo {
        @Test func fashionMLPReaches88PercentOn2Ranks() throws {
            let source = "/usr/share/datasets/fashion-mnist"
            try #require(FileManager.default.fileExists(atPath: source + "/train-images-idx3-ubyte.gz"),
                         "install Debian's dataset-fashion-mnist (scripts/setup does)")
            let dir = try Scratch.folder("demo")
            let imported = try Launcher.run(ranks: nil, ["import", "fashion-mnist", "--from", source, "--output", dir + "/fashion.h5"])
            #expect(imported.exitCode == 0, "\(imported.stderr)")
            #expect(imported.stdout.contains("60000 training and 10000 test samples"))

            let launch = try Launcher.run(ranks: 2, ["train", "jobs/fashion-mlp.toml",
                                                     "--set", "data.file=\"\(dir)/fashion.h5\"", "--set", "run.out=\"\(dir)/run\""],
                                          timeout: 300)
            #expect(launch.exitCode == 0, "\(launch.stderr)")
            let evals = try Scratch.metrics(dir + "/run").filter { $0["split"] as? String == "test" }
            let final = try #require(evals.last)
            let accuracy = (final["accuracy"] as! NSNumber).doubleValue
            print("demo: final test accuracy \(accuracy) after \(final["step"]!) steps, \(launch.seconds) s (including start-up)")
            #expect(accuracy >= 0.88)
            // Evaluated on the full test set: accuracy is a multiple of 1/10000.
            #expect(abs(accuracy * 10000 - (accuracy * 10000).rounded()) < 1e-6)
        }
    }
}
