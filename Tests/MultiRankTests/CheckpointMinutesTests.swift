// run.checkpoint_minutes under mpirun -n 3: checkpoints by wall time land after steps that rank 0's
// clock chose (not the step cadence), every rank writes the same one (the vote rides in the step's
// allreduce: a disagreement would hang or abort), and resuming from any of them is bitwise.

import Foundation
import Lockstep
import Testing

extension MultiRank {
    @Suite struct CheckpointMinutes {
        @Test(arguments: [[String](), ["gsnr.enabled=true", "gsnr.groups_per_rank=2"]])
        func checkpointsByWallTimeAgreeAndResumeBitwise(_ extra: [String]) throws {
            let dir = try Scratch.folder("checkpoint-minutes")
            try Scratch.dataset(at: dir + "/data.h5")
            try Scratch.job(at: dir + "/job.toml", data: dir + "/data.h5", out: dir + "/run", steps: 300, batch: 24)
            // 3 ms: many wall-time checkpoints over 300 steps; the step cadence never fires.
            let sets = (extra + ["run.checkpoint_every=100000", "run.eval_every=100000", "run.log_every=50"]).flatMap { ["--set", $0] }
            let run = try Launcher.run(ranks: 3, ["train", dir + "/job.toml", "--set", "run.checkpoint_minutes=0.00005"] + sets)
            #expect(run.exitCode == 0, "\(run.stderr)")
            let steps = Checkpoint.list(in: dir + "/run/checkpoints").map { Int($0.split(separator: "-").last!.dropLast(3))! }
            #expect(steps.last == 300)
            #expect(steps.count >= 3, "wall-time checkpoints before the end: \(steps)")
            // Resume from one in the middle, with the timer off: the same final parameters, bitwise.
            let middle = steps[steps.count / 2]
            try #require(middle < 300)
            try FileManager.default.copyItem(atPath: dir + "/run", toPath: dir + "/resumed")
            for step in steps where step > middle {
                try FileManager.default.removeItem(atPath: Scratch.checkpoint(dir + "/resumed", step: step))
            }
            let resumed = try Launcher.run(ranks: 3, ["train", dir + "/job.toml", "--resume", "--set", "run.out=\"\(dir)/resumed\""] + sets)
            #expect(resumed.exitCode == 0, "\(resumed.stderr)")
            #expect(resumed.stdout.contains("resuming from") && resumed.stdout.contains(Checkpoint.fileName(step: middle)), "\(resumed.stdout)")
            let a = try Scratch.checkpointTensors(Scratch.checkpoint(dir + "/run", step: 300))
            let b = try Scratch.checkpointTensors(Scratch.checkpoint(dir + "/resumed", step: 300))
            #expect(a.keys.sorted() == b.keys.sorted())
            for (name, values) in a { #expect(b[name] == values, "\(name)") }
        }
    }
}
