// Checkpoint crash safety: a run is killed with SIGKILL at 50 random moments, with a checkpoint
// written after every step so that many kills land inside a checkpoint write. After every kill
// the newest complete checkpoint must load (checksum verified) and --resume must go on; at the
// end the run, resumed to completion, must equal an uninterrupted run bitwise.

import Foundation
import Lockstep
import Testing

extension MultiRank {
    @Suite struct CrashSafety {
        static let steps = 5000

        static func writeJob(_ dir: String, _ name: String) throws {
            let text = """
            [run]
            seed = 9
            steps = \(steps)
            out = "\(dir)/\(name)"
            log_every = 25
            eval_every = 500
            checkpoint_every = 1
            keep_checkpoints = 2

            [data]
            file = "\(dir)/data.h5"
            normalization = "none"

            [model]
            layers = [{ units = 32 }, { units = 4 }]

            [batch]
            global = 24

            [optimizer]
            lr = 0.05
            momentum = 0.9

            """
            try text.write(toFile: "\(dir)/\(name).toml", atomically: true, encoding: .utf8)
        }

        /// Starts `lockstep args...` as one process (an MPI singleton), waits until it has written a
        /// checkpoint newer than those in `checkpoints` (so it is training, however long startup
        /// took on a loaded machine), SIGKILLs it `delay` seconds later unless it finished, and
        /// returns whether it was killed.
        static func runAndKill(_ args: [String], checkpoints: String, after delay: Double) throws -> Bool {
            let before = Checkpoint.list(in: checkpoints).last
            let process = Process()
            process.executableURL = URL(fileURLWithPath: Launcher.binary)
            process.arguments = args
            process.currentDirectoryURL = Launcher.packageRoot
            process.environment = Launcher.environment([:])
            process.standardOutput = FileHandle.nullDevice
            process.standardError = FileHandle.nullDevice
            try process.run()
            let started = Date().addingTimeInterval(60)
            while process.isRunning && Date() < started && Checkpoint.list(in: checkpoints).last == before { usleep(1_000) }
            let deadline = Date().addingTimeInterval(delay)
            while process.isRunning && Date() < deadline { usleep(1_000) }
            let killed = process.isRunning
            if killed { kill(process.processIdentifier, SIGKILL) }
            process.waitUntilExit()
            return killed
        }

        @Test func fiftyKillsNeverLoseTheNewestCompleteCheckpoint() throws {
            let dir = try Scratch.folder("crash-safety")
            try Scratch.dataset(at: dir + "/data.h5")
            for name in ["killed", "straight"] { try Self.writeJob(dir, name) }
            let network = Network(inputWidth: 20, layers: [LayerSpec(units: 32, activation: .relu), LayerSpec(units: 4, activation: .identity)])
            let checkpoints = "\(dir)/killed/checkpoints"
            var rng = Xoshiro256(seed: 2026)
            var kills = 0, killsMidWrite = 0, newestStep = 0
            while kills < 50 {
                // The kill lands anywhere in the 0.2 s of training after the first new checkpoint.
                let delay = 0.2 * rng.nextUnit()
                guard try Self.runAndKill(["train", "\(dir)/killed.toml", "--resume"], checkpoints: checkpoints, after: delay) else { break }
                kills += 1
                let names = (try? FileManager.default.contentsOfDirectory(atPath: checkpoints)) ?? []
                // A leftover .tmp means the kill interrupted a checkpoint write.
                if names.contains(where: { $0.hasSuffix(".tmp") }) { killsMidWrite += 1 }
                guard let newest = Checkpoint.list(in: checkpoints).last else { continue }
                // The newest complete checkpoint loads, checksum and all, and never goes backwards.
                let contents = try Checkpoint.read(newest, network: network)
                #expect(contents.position.step >= newestStep, "kill \(kills): newest checkpoint went back to \(contents.position.step)")
                newestStep = contents.position.step
            }
            print("crash-safety: kills \(kills), mid-write \(killsMidWrite), newest step \(newestStep)")
            #expect(kills == 50, "the run finished after \(kills) kills: give it more steps")
            #expect(newestStep > 0 && newestStep < Self.steps, "made progress across the kills: \(newestStep)")
            #expect(killsMidWrite >= 5, "only \(killsMidWrite) of \(kills) kills interrupted a checkpoint write")

            let finish = try Launcher.run(ranks: nil, ["train", "\(dir)/killed.toml", "--resume"])
            #expect(finish.exitCode == 0, "\(finish.stderr)")
            let straight = try Launcher.run(ranks: nil, ["train", "\(dir)/straight.toml"])
            #expect(straight.exitCode == 0, "\(straight.stderr)")
            let a = try Scratch.checkpointTensors(Scratch.checkpoint("\(dir)/straight", step: Self.steps))
            let b = try Scratch.checkpointTensors(Scratch.checkpoint("\(dir)/killed", step: Self.steps))
            #expect(!a.isEmpty && a.count == b.count)
            for (path, values) in a {
                #expect(bitPatterns(values) == bitPatterns(b[path] ?? []), "\(path) differs after 50 kills and resumes")
            }
            // The metrics log reads as one run: every logged step once.
            let logged = try Scratch.losses("\(dir)/killed").map(\.0)
            #expect(logged == Array(Set(logged)).sorted(), "steps logged twice or out of order")
            #expect(logged == (try Scratch.losses("\(dir)/straight").map(\.0)))
        }
    }
}
