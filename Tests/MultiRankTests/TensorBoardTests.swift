// run.tensorboard under mpirun -n 2: TensorBoard's own reader (EventAccumulator, from the
// tensorboard package that scripts/python-peers installs) sees every scalar metrics.jsonl holds,
// at the same steps, equal to float32 precision; after a stop and a resume it sees each step once
// (the resumed file's SessionLog START drops the steps the first run logged past the checkpoint).

import Foundation
import Lockstep
import Testing

extension MultiRank {
    @Suite struct TensorBoard {
        static let python = Launcher.packageRoot.appendingPathComponent(".venv-tests/bin/python").path

        /// tag → [[step, value]] as TensorBoard reads the run's event files.
        static func read(_ folder: String) throws -> [String: [[Double]]] {
            let script = """
            import json, sys
            from tensorboard.backend.event_processing.event_accumulator import EventAccumulator
            acc = EventAccumulator(sys.argv[1], size_guidance={"scalars": 0})
            acc.Reload()
            print(json.dumps({t: [[e.step, e.value] for e in acc.Scalars(t)] for t in acc.Tags()["scalars"]}))
            """
            let run = try Launcher.execute([python, "-c", script, folder], timeout: 120)
            try #require(run.exitCode == 0, "needs TensorBoard in .venv-tests (scripts/python-peers; scripts/test runs it): \(run.stderr)")
            let parsed = try JSONSerialization.jsonObject(with: Data(run.stdout.utf8)) as? [String: [[Double]]]
            return try #require(parsed, "\(run.stdout)")
        }

        /// What metrics.jsonl says, in the same tags (MetricsLog.scalars): tag → [[step, value]].
        static func expected(_ run: String) throws -> [String: [[Double]]] {
            var tags: [String: [[Double]]] = [:]
            for line in try Scratch.metrics(run) {
                let step = Double(line["step"] as! Int)
                let prefix = ((line["split"] ?? line["measure"]) as? String).map { $0 + "/" } ?? ""
                for (key, value) in line where !["step", "split", "measure"].contains(key) {
                    if let n = value as? NSNumber {
                        tags[prefix + key, default: []].append([step, n.doubleValue])
                    } else if let object = value as? [String: NSNumber] {
                        for (name, n) in object { tags[prefix + key + "/" + name, default: []].append([step, n.doubleValue]) }
                    }
                }
            }
            return tags
        }

        static func expectSame(_ seen: [String: [[Double]]], _ want: [String: [[Double]]]) {
            #expect(Set(seen.keys) == Set(want.keys), "tags: TensorBoard \(seen.keys.sorted()), metrics.jsonl \(want.keys.sorted())")
            for (tag, points) in want {
                let got = seen[tag] ?? []
                #expect(got.map { $0[0] } == points.map { $0[0] }, "\(tag): steps")
                // TensorBoard stores simple_value as float32: equal to 1 float32 ulp (Foundation's
                // JSON parser can land a decimal one double ulp off, which may round to the next float).
                for (a, b) in zip(got, points) {
                    #expect(abs(Float(a[1]) - Float(b[1])) <= Float(b[1]).ulp, "\(tag) at step \(b[0]): \(a[1]) vs \(b[1])")
                }
            }
        }

        @Test func everyLoggedScalarReadsBackInTensorBoard() throws {
            let dir = try Scratch.folder("tensorboard")
            try Scratch.dataset(at: dir + "/data.h5")
            try Scratch.job(at: dir + "/job.toml", data: dir + "/data.h5", out: dir + "/run", steps: 30)
            let run = try Launcher.run(ranks: 2, ["train", dir + "/job.toml", "--set", "run.tensorboard=true",
                                                  "--set", "data.validation=60", "--set", "optimizer.name=\"lars\"",
                                                  "--unset", "optimizer.weight_decay"])
            #expect(run.exitCode == 0, "\(run.stderr)")
            let want = try Self.expected(dir + "/run")
            // The run logged training lines (with LARS's trust ratios), test and validation evaluations.
            #expect(want["loss"]?.count == 30 && want["test/accuracy"]?.count == 3 && want["validation/loss"]?.count == 3)
            #expect(want.keys.contains { $0.hasPrefix("trust/") }, "\(want.keys.sorted())")
            Self.expectSame(try Self.read(dir + "/run/tensorboard"), want)
        }

        @Test func aResumedRunShowsEachStepOnce() throws {
            let dir = try Scratch.folder("tensorboard-resume")
            try Scratch.dataset(at: dir + "/data.h5")
            try Scratch.job(at: dir + "/job.toml", data: dir + "/data.h5", out: dir + "/run", steps: 30)
            // Checkpoints every 10 steps; rank 1 fails at the start of step 16, so steps 11–15
            // are logged by the first run and again by the resumed one.
            let first = try Launcher.run(ranks: 2, ["train", dir + "/job.toml", "--set", "run.tensorboard=true"],
                                         environment: ["LOCKSTEP_TEST_FAULT": "error:1:16"])
            #expect(first.exitCode != 0)
            #expect(try Scratch.losses(dir + "/run").map(\.0) == Array(1...15), "the first run logged steps 1–15")
            let second = try Launcher.run(ranks: 2, ["train", dir + "/job.toml", "--set", "run.tensorboard=true", "--resume"])
            #expect(second.exitCode == 0, "\(second.stderr)")
            let files = try FileManager.default.contentsOfDirectory(atPath: dir + "/run/tensorboard")
            #expect(files.count == 2, "one event file per start: \(files)")
            let seen = try Self.read(dir + "/run/tensorboard")
            #expect(seen["loss"]?.map { Int($0[0]) } == Array(1...30))
            Self.expectSame(seen, try Self.expected(dir + "/run"))
        }
    }
}
