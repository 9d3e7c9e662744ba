// SLURM for real, on this machine: scripts/slurm-local starts munged, slurmctld and slurmd, and
// these tests submit slurm/train.sbatch and slurm/seeds.sbatch with sbatch: a job that runs to
// its end; a job that SLURM signals as --signal=B:USR1 does before a time limit, which
// checkpoints, requeues itself and resumes to exactly the parameters of a run never stopped;
// a job whose mpirun itself gets SIGTERM or SIGINT (mpirun then exits 1), which still requeues;
// an array task that requeues itself alone, not the whole array; and a job array over seeds
// summarised by slurm/collect. No SLURM is a failure, not a skip.

import Foundation
import Lockstep
import Testing

extension MultiRank {
    @Suite struct Slurm {
        struct Finished {
            let code: Int32
            let output: String
            let timedOut: Bool
        }

        struct JobDidNotEnd: Error {}

        /// Runs `argv` (found on PATH) in `dir` with a time limit, stdout and stderr together
        /// in a file. Spawned and reaped here rather than with Foundation's Process: Process
        /// counts a child as running while any process holds a socket it hands the child, and
        /// daemons started through scripts/slurm-local outlive it. The child gets no descriptor
        /// of ours but stdio, every signal unblocked and at its default action (the test
        /// runner's children inherit a mask that blocks most), so the daemons, and the batch
        /// shells they start, take SIGUSR1 as they would when started from a shell.
        static func shell(_ argv: [String], in dir: String, timeout: Double) throws -> Finished {
            let log = dir + "/.command-\(UUID().uuidString.prefix(8)).log"
            let fd = open(log, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0o644)
            guard fd >= 0 else { throw POSIXError(POSIXErrorCode(rawValue: errno) ?? .EIO) }
            defer { close(fd); unlink(log) }

            var actions = posix_spawn_file_actions_t()
            posix_spawn_file_actions_init(&actions)
            defer { posix_spawn_file_actions_destroy(&actions) }
            posix_spawn_file_actions_addopen(&actions, 0, "/dev/null", O_RDONLY, 0)
            posix_spawn_file_actions_adddup2(&actions, fd, 1)
            posix_spawn_file_actions_adddup2(&actions, fd, 2)
            for entry in (try? FileManager.default.contentsOfDirectory(atPath: "/proc/self/fd")) ?? [] {
                if let other = Int32(entry), other > 2, other != fd { posix_spawn_file_actions_addclose(&actions, other) }
            }
            var attributes = posix_spawnattr_t()
            posix_spawnattr_init(&attributes)
            defer { posix_spawnattr_destroy(&attributes) }
            var none = sigset_t(), all = sigset_t()
            sigemptyset(&none)
            sigemptyset(&all)
            for signal: Int32 in 1..<32 where signal != SIGKILL && signal != SIGSTOP { sigaddset(&all, signal) }
            posix_spawnattr_setsigmask(&attributes, &none)
            posix_spawnattr_setsigdefault(&attributes, &all)
            posix_spawnattr_setpgroup(&attributes, 0)  // its own group, killed whole on a timeout
            posix_spawnattr_setflags(&attributes, Int16(POSIX_SPAWN_SETSIGMASK | POSIX_SPAWN_SETSIGDEF | POSIX_SPAWN_SETPGROUP))

            // env -C: the working directory (posix_spawn has no portable way to set it).
            let args = ["/usr/bin/env", "-C", dir] + argv
            let env = Launcher.environment([:]).map { "\($0.key)=\($0.value)" }
            let cArgs = args.map { strdup($0) } + [nil], cEnv = env.map { strdup($0) } + [nil]
            defer { (cArgs + cEnv).forEach { free($0) } }
            var pid: pid_t = 0
            let spawned = posix_spawn(&pid, args[0], &actions, &attributes, cArgs, cEnv)
            guard spawned == 0 else { throw POSIXError(POSIXErrorCode(rawValue: spawned) ?? .EIO) }

            let started = Date()
            var status: Int32 = 0, timedOut = false
            while waitpid(pid, &status, WNOHANG) == 0 {
                if Date().timeIntervalSince(started) > timeout {
                    timedOut = true
                    kill(-pid, SIGKILL)
                    waitpid(pid, &status, 0)
                    break
                }
                usleep(20_000)
            }
            // Exit status, or 128 + the signal that ended it (as a shell reports it).
            let code = status & 0x7f == 0 ? (status >> 8) & 0xff : 128 + status & 0x7f
            let output = (try? String(contentsOfFile: log, encoding: .utf8)) ?? ""
            return Finished(code: code, output: output, timedOut: timedOut)
        }

        /// Why SLURM is not usable, or nil once scripts/slurm-local has it running (run once per
        /// test process; it installs slurm-wlm and munge with apt when missing, hence the limit).
        static let problem: String? = {
            let script = Launcher.packageRoot.path + "/scripts/slurm-local"
            guard let run = try? shell([script], in: NSTemporaryDirectory(), timeout: 600) else {
                return "could not run \(script)"
            }
            if run.timedOut { return "\(script) did not finish within 600 s:\n\(run.output)" }
            if run.code != 0 {
                return "\(script) failed (exit \(run.code)); these tests need a local SLURM (apt: slurm-wlm munge):\n\(run.output)"
            }
            return nil
        }()

        static func requireSlurm() throws {
            try #require(problem == nil, "SLURM is not available: \(problem ?? "")")
        }

        /// Submits `script` (under slurm/) from `dir` (its SLURM_SUBMIT_DIR, where slurm-%j.out
        /// lands) with the binary under test (or `binary`); returns the job id.
        static func sbatch(_ script: String, _ args: [String], options: [String], in dir: String,
                           export: String = "", binary: String = Launcher.binary) throws -> Int {
            let run = try shell(["sbatch", "--parsable", "--export=ALL,LOCKSTEP_BIN=\(binary)\(export)"] + options
                                + [Launcher.packageRoot.path + "/slurm/" + script] + args, in: dir, timeout: 30)
            // --parsable prints "id" or "id;cluster" on its own line.
            let id = run.output.split(separator: "\n").compactMap { Int($0.split(separator: ";").first ?? "") }.last
            try #require(run.code == 0 && id != nil, "sbatch failed (exit \(run.code)): \(run.output)")
            return id!
        }

        /// `scontrol show job` as key → value (empty once SLURM has forgotten the job).
        static func job(_ id: Int, in dir: String) throws -> [String: String] { try job(String(id), in: dir) }

        /// The same for a job named as `scontrol` takes it: "ID", or "ARRAYID_TASKID" for one
        /// array task (one line: `-o` prints one line per job, and this names one).
        static func job(_ id: String, in dir: String) throws -> [String: String] {
            let run = try shell(["scontrol", "-o", "show", "job", id], in: dir, timeout: 15)
            var fields: [String: String] = [:]
            for token in run.output.split(whereSeparator: { $0 == " " || $0 == "\n" }) {
                guard let eq = token.firstIndex(of: "=") else { continue }
                fields[String(token[..<eq])] = String(token[token.index(after: eq)...])
            }
            return fields
        }

        static let endStates: Set = ["COMPLETED", "FAILED", "CANCELLED", "TIMEOUT", "NODE_FAIL", "PREEMPTED",
                                     "BOOT_FAIL", "DEADLINE", "OUT_OF_MEMORY"]

        /// Polls until the job has ended for good (a requeued job goes back to PENDING, not to an
        /// end state). Past `timeout` it cancels the job, so nothing is left running, and fails.
        static func waitForEnd(_ id: Int, in dir: String, timeout: Double) throws -> [String: String] {
            try waitForEnd(String(id), in: dir, timeout: timeout)
        }

        static func waitForEnd(_ id: String, in dir: String, timeout: Double) throws -> [String: String] {
            let deadline = Date().addingTimeInterval(timeout)
            while Date() < deadline {
                let fields = try job(id, in: dir)
                if let state = fields["JobState"], endStates.contains(state) { return fields }
                usleep(200_000)
            }
            _ = try? shell(["scancel", id], in: dir, timeout: 15)
            Issue.record("job \(id) did not end within \(Int(timeout)) s (cancelled now); its output:\n\(log(id, in: dir))")
            throw JobDidNotEnd()
        }

        struct TimedOut: Error {}

        /// Polls `condition` every 20 ms until it holds; past `timeout` runs `cleanUp` (cancel
        /// what the test started), records why with `context` and throws, so a test never waits
        /// unbounded and never goes on as if the event had happened.
        static func waitUntil(_ what: String, timeout: Double, context: () -> String = { "" }, cleanUp: () -> Void = {},
                              _ condition: () throws -> Bool) throws {
            let deadline = Date().addingTimeInterval(timeout)
            while Date() < deadline {
                if try condition() { return }
                usleep(20_000)
            }
            cleanUp()
            Issue.record("not within \(Int(timeout)) s: \(what)\n\(context())")
            throw TimedOut()
        }

        /// The job's stdout and stderr files (appended over requeues).
        static func log(_ id: Int, in dir: String, _ suffix: String = "out") -> String { log(String(id), in: dir, suffix) }

        /// The same by name: slurm-ID.out, or slurm-ARRAYID_TASKID.out for an array task.
        static func log(_ id: String, in dir: String, _ suffix: String = "out") -> String {
            (try? String(contentsOfFile: "\(dir)/slurm-\(id).\(suffix)", encoding: .utf8)) ?? "(no slurm-\(id).\(suffix))"
        }

        /// How many times a log says train.sbatch started run `n` of its job.
        static func runs(_ n: Int, in log: String) -> Int {
            log.matches(of: try! Regex(" run \(n) on ")).count
        }

        /// The last test evaluation of a run: (step, accuracy).
        static func finalTest(_ runDir: String) throws -> (step: Int, accuracy: Double)? {
            try Scratch.metrics(runDir).last { $0["split"] as? String == "test" }
                .flatMap { line in (line["accuracy"] as? NSNumber).map { (line["step"] as? Int ?? -1, $0.doubleValue) } }
        }

        /// A 2-rank job submitted with sbatch runs to its end: exit 0, a final checkpoint and a
        /// test accuracy in metrics.jsonl (--resume with no checkpoint starts at step 0).
        @Test func trainJobRunsToTheEnd() throws {
            try Self.requireSlurm()
            let dir = try Scratch.folder("slurm-train")
            try Scratch.dataset(at: dir + "/data.h5")
            try Scratch.job(at: dir + "/job.toml", data: dir + "/data.h5", out: dir + "/run", steps: 30)
            let id = try Self.sbatch("train.sbatch", [dir + "/job.toml"],
                                     options: ["--nodes=1", "--ntasks=2", "--time=5", "--job-name=lockstep-test"], in: dir)
            let fields = try Self.waitForEnd(id, in: dir, timeout: 30)
            let out = Self.log(id, in: dir)
            #expect(fields["JobState"] == "COMPLETED" && fields["ExitCode"] == "0:0",
                    "job \(id): \(fields["JobState"] ?? "?") \(fields["ExitCode"] ?? "?")\n\(out)\n\(Self.log(id, in: dir, "err"))")
            #expect(fields["Restarts"] == "0")
            #expect(out.contains("on 2 rank(s)") && out.contains("done: 30 steps"), "\(out)")
            #expect(FileManager.default.fileExists(atPath: Scratch.checkpoint(dir + "/run", step: 30)))
            let last = try Self.finalTest(dir + "/run")
            #expect(last?.step == 30 && (0...1).contains(last?.accuracy ?? -1), "final test line: \(String(describing: last))")
        }

        /// The time-limit path without waiting for a limit: SIGUSR1 to the batch shell only (what
        /// --signal=B:USR1@N sends N s before the limit). The script forwards it through mpirun,
        /// the ranks checkpoint and exit 75, the script requeues the job, and its second run
        /// (same job id, same command, output appended) resumes and ends bitwise where a run
        /// never stopped ends.
        @Test func usr1ToTheBatchShellCheckpointsRequeuesAndResumes() throws {
            try Self.requireSlurm()
            // Long enough for the signal to arrive mid-run: steps take about 17 µs on 2 cores, and on
            // a loaded machine scancel's SIGUSR1 once reached the script only after all of 100000
            // steps (1.7 s) were done, so 1000000 (about 17 s) leave it ample time.
            let steps = 1_000_000
            let dir = try Scratch.folder("slurm-requeue")
            try Scratch.dataset(at: dir + "/data.h5", train: 6000)
            try Scratch.job(at: dir + "/job.toml", data: dir + "/data.h5", out: dir + "/run", steps: steps)
            let sets = ["--set", "run.log_every=5000", "--set", "run.checkpoint_every=5000", "--set", "run.eval_every=50000"]
            let id = try Self.sbatch("train.sbatch", [dir + "/job.toml"] + sets,
                                     options: ["--nodes=1", "--ntasks=2", "--time=5", "--job-name=lockstep-requeue"], in: dir)

            // Signal once the first checkpoint exists (the job has really started training).
            let deadline = Date().addingTimeInterval(30)
            while Date() < deadline && Checkpoint.list(in: dir + "/run/checkpoints").isEmpty { usleep(10_000) }
            guard !Checkpoint.list(in: dir + "/run/checkpoints").isEmpty else {
                _ = try? Self.shell(["scancel", String(id)], in: dir, timeout: 15)
                Issue.record("no checkpoint within 30 s of submitting job \(id) (cancelled):\n\(Self.log(id, in: dir))\n\(Self.log(id, in: dir, "err"))")
                return
            }
            // --batch: the batch shell alone, as B: in --signal does (see slurm/README.md).
            let signal = try Self.shell(["scancel", "--signal=USR1", "--batch", String(id)], in: dir, timeout: 15)
            #expect(signal.code == 0, "scancel: \(signal.output)")

            let fields = try Self.waitForEnd(id, in: dir, timeout: 120)
            let out = Self.log(id, in: dir)
            #expect(fields["JobState"] == "COMPLETED" && fields["ExitCode"] == "0:0",
                    "job \(id): \(fields["JobState"] ?? "?") \(fields["ExitCode"] ?? "?")\n\(out)\n\(Self.log(id, in: dir, "err"))")
            #expect(fields["Restarts"] == "1", "requeued once: Restarts=\(fields["Restarts"] ?? "?")\n\(out)")
            // The step it stopped at is the step the second run resumed at.
            let stopped = out.firstMatch(of: /stopped by SIGUSR1 after step (\d+) of/).flatMap { Int($0.1) }
            let resumed = out.firstMatch(of: /resumed at step (\d+)/).flatMap { Int($0.1) }
            #expect(stopped != nil && stopped == resumed && stopped! < steps, "stopped at \(String(describing: stopped)), resumed at \(String(describing: resumed)):\n\(out)")
            #expect(out.contains("requeueing job \(id)") && out.contains("done: \(steps) steps"), "\(out)")

            // The same job straight through, outside SLURM, on the same number of ranks.
            let straight = try Launcher.run(ranks: 2, ["train", dir + "/job.toml"] + sets + ["--set", "run.out=\"\(dir)/straight\""], timeout: 180)
            #expect(straight.exitCode == 0, "\(straight.stderr)")
            let a = try Scratch.checkpointTensors(Scratch.checkpoint(dir + "/straight", step: steps))
            let b = try Scratch.checkpointTensors(Scratch.checkpoint(dir + "/run", step: steps))
            #expect(!a.isEmpty && a.count == b.count)
            for (path, values) in a {
                #expect(bitPatterns(values) == bitPatterns(b[path] ?? []), "\(path) differs after SLURM requeue + resume")
            }
        }

        /// The step of a run's newest checkpoint (nil: none yet).
        static func newestCheckpointStep(_ runDir: String) -> Int? {
            Checkpoint.list(in: runDir + "/checkpoints").last.flatMap { $0.firstMatch(of: /step-(\d+)\.h5$/).flatMap { Int($0.1) } }
        }

        /// SIGTERM or SIGINT to mpirun itself (`kill`, a Ctrl-C, `scancel --signal=TERM --full`),
        /// not to the batch shell: mpirun sends SIGTERM to the ranks, which checkpoint and exit 75,
        /// but exits 1 itself. Rank 0's LOCKSTEP_EXIT_STATUS_FILE tells train.sbatch the stop was
        /// clean, so it requeues the job, whose second run resumes where the first stopped and ends.
        @Test(arguments: [SIGTERM, SIGINT])
        func signalToMpirunItselfStillRequeues(_ signal: Int32) throws {
            try Self.requireSlurm()
            // mpirun passes the signal on as SIGTERM only after odls_base_sigkill_timeout (1 s; SIGKILL
            // follows 1 s later), and these steps take about 17 µs on 2 cores (300000 in 4.7-5.0 s).
            // A CI machine once saw mpirun take the signal (exit 1) while its ranks ran 4.5 s more to
            // their end untouched, so the run is long enough (about 17 s) that a slow hand-off still
            // lands mid-run, and the test waits for the second checkpoint: well past start-up.
            let steps = 1_000_000
            let dir = try Scratch.folder("slurm-mpirun-signal")
            try Scratch.dataset(at: dir + "/data.h5", train: 6000)
            try Scratch.job(at: dir + "/job.toml", data: dir + "/data.h5", out: dir + "/run", steps: steps)
            let sets = ["--set", "run.log_every=10000", "--set", "run.checkpoint_every=10000", "--set", "run.eval_every=100000"]
            let id = try Self.sbatch("train.sbatch", [dir + "/job.toml"] + sets,
                                     options: ["--nodes=1", "--ntasks=2", "--time=5", "--job-name=lockstep-mpirun-signal"], in: dir)
            let cancel = { _ = try? Self.shell(["scancel", String(id)], in: dir, timeout: 15) }
            // The process tree at the kill (who is whose child, process groups, states), for a failure.
            var treeAtKill = ""
            let logs = { "\(Self.log(id, in: dir))\n\(Self.log(id, in: dir, "err"))\nprocesses when mpirun was signalled:\n\(treeAtKill)" }

            // Once training is well under way (its second checkpoint), the job's mpirun: the one
            // process whose command line is mpirun's and names this test's job file.
            try Self.waitUntil("a second checkpoint from job \(id)", timeout: 30, context: logs, cleanUp: cancel) {
                (Self.newestCheckpointStep(dir + "/run") ?? 0) >= 20_000
            }
            let mpirun = MultiRank.Signals.pids("^mpirun .* \(dir)/job.toml --resume")
            guard mpirun.count == 1 else {
                cancel()
                Issue.record("expected one mpirun of job \(id), found \(mpirun)\n\(logs())")
                return
            }
            treeAtKill = (try? Self.shell(["ps", "-eo", "pid,ppid,pgid,stat,blocked,ignored,caught,args", "--forest"], in: dir, timeout: 15).output) ?? "(ps failed)"
            kill(mpirun[0], signal)

            // The first run is over once the script says it requeues; the second starts only after
            // the credential delay (AuthInfo=cred_expire), so the newest checkpoint is the stop's.
            try Self.waitUntil("job \(id) requeueing itself after \(StopSignal.name(signal)) to mpirun", timeout: 40,
                               context: logs, cleanUp: cancel) { Self.log(id, in: dir).contains("requeueing job \(id)") }
            let stopped = Self.newestCheckpointStep(dir + "/run")

            let fields = try Self.waitForEnd(id, in: dir, timeout: 90)
            let out = Self.log(id, in: dir)
            #expect(fields["JobState"] == "COMPLETED" && fields["ExitCode"] == "0:0",
                    "job \(id): \(fields["JobState"] ?? "?") \(fields["ExitCode"] ?? "?")\n\(logs())")
            #expect(fields["Restarts"] == "1", "requeued once: Restarts=\(fields["Restarts"] ?? "?")\n\(out)")
            // What the script saw: mpirun's own code is 1, rank 0's is 75 (measured with Open MPI 4.1).
            #expect(out.contains("mpirun exited with 1; lockstep's rank 0 exited with 75"), "\(out)")
            #expect(Self.runs(1, in: out) == 1 && Self.runs(2, in: out) == 1, "\(out)")
            // Stopped after the signal (so after the second checkpoint, step 20000) and before the end,
            // and the second run continued from exactly that checkpoint.
            let resumed = out.firstMatch(of: /resumed at step (\d+)/).flatMap { Int($0.1) }
            #expect(stopped != nil && stopped! > 20_000 && stopped! < steps && resumed == stopped,
                    "newest checkpoint at the requeue: \(String(describing: stopped)), resumed at \(String(describing: resumed))\n\(out)")
            #expect(out.contains("done: \(steps) steps"), "\(out)")
            #expect(FileManager.default.fileExists(atPath: Scratch.checkpoint(dir + "/run", step: steps)))
            // Each run's status file is read and removed.
            let left = try FileManager.default.contentsOfDirectory(atPath: dir).filter { $0.hasPrefix(".lockstep-exit") }
            #expect(left.isEmpty, "left in the submit folder: \(left)")
        }

        /// A job array (seeds.sbatch, 3 tasks of one rank) where the task whose job id is the
        /// array's own (SLURM gives it to the task started last, here task 3) checkpoints on SIGUSR1
        /// and requeues: only that task runs again. Requeueing the bare id would requeue the whole
        /// array: task 1, finished, would run again, and task 2, running, would be killed.
        /// Afterwards a plain `scancel` of task 2 cancels it for good (the script does not requeue
        /// a job SLURM is cancelling, though its ranks exit 75 with a checkpoint).
        @Test func arrayTaskRequeuesOnlyItself() throws {
            try Self.requireSlurm()
            let dir = try Scratch.folder("slurm-array")
            try Scratch.dataset(at: dir + "/data.h5", train: 6000)
            try Scratch.job(at: dir + "/array.toml", data: dir + "/data.h5", out: dir + "/unused", steps: 40)
            // Task 1 ends at once; task 2 runs until cancelled (no checkpoints but the one its cancel
            // writes); task 3 runs until signalled (SIGUSR1 reaches the ranks within milliseconds;
            // steps take tens of µs, so 100000 last seconds) and then resumes to its end.
            let steps = [1: 40, 2: 100_000_000, 3: 100_000]
            // seeds.sbatch runs the same job for every task, so the binary it is given adds each
            // task's settings (exec: the rank is lockstep itself, as without the wrapper).
            let binary = dir + "/lockstep-per-task"
            try """
            #!/usr/bin/env bash
            set -euo pipefail
            case "$SLURM_ARRAY_TASK_ID" in
              1) extra=(--set run.steps=\(steps[1]!)) ;;
              2) extra=(--set run.steps=\(steps[2]!) --set run.checkpoint_every=\(steps[2]!)) ;;
              3) extra=(--set run.steps=\(steps[3]!)) ;;
              *) echo "lockstep-per-task: no settings for task $SLURM_ARRAY_TASK_ID" >&2; exit 2 ;;
            esac
            exec \(Launcher.binary) "$@" "${extra[@]}"

            """.write(toFile: binary, atomically: true, encoding: .utf8)
            chmod(binary, 0o755)
            let sets = ["--set", "run.log_every=5000", "--set", "run.checkpoint_every=5000", "--set", "run.eval_every=50000"]
            // --ntasks-per-node=1 as well: seeds.sbatch asks for 2 per node, and a task that needs 2
            // free cores would wait for task 2 to end instead of starting beside it.
            let array = try Self.sbatch("seeds.sbatch", [dir + "/array.toml"] + sets,
                                        options: ["--array=1-3", "--nodes=1", "--ntasks=1", "--ntasks-per-node=1", "--time=5", "--job-name=lockstep-array"],
                                        in: dir, export: ",LOCKSTEP_SLURM_DIR=\(Launcher.packageRoot.path)/slurm", binary: binary)
            let task = { (i: Int) in "\(array)_\(i)" }
            let run = { (i: Int) in "\(dir)/runs/array-seed\(i)" }
            let cancel = { _ = try? Self.shell(["scancel", String(array)], in: dir, timeout: 15) }
            let logs = { (1...3).map { "slurm-\(task($0)).out:\n\(Self.log(task($0), in: dir))\n\(Self.log(task($0), in: dir, "err"))" }.joined(separator: "\n") }
            let state = { (i: Int) in try Self.job(task(i), in: dir)["JobState"] ?? "?" }

            // 1 finished, 2 training, 3 training: SLURM starts 3 when a core is free.
            try Self.waitUntil("task 1 of array \(array) ending", timeout: 40, context: logs, cleanUp: cancel) {
                Self.endStates.contains(try state(1))
            }
            try Self.waitUntil("tasks 2 and 3 of array \(array) training", timeout: 40, context: logs, cleanUp: cancel) {
                Self.log(task(2), in: dir).contains("step 5000/") && Self.newestCheckpointStep(run(3)) != nil
            }
            let before = try (1...3).map { try Self.job(task($0), in: dir) }
            guard before[0]["JobState"] == "COMPLETED", before[1]["JobState"] == "RUNNING", before[2]["JobState"] == "RUNNING",
                  before[2]["JobId"] == String(array), before[0]["JobId"] != String(array), before[1]["JobId"] != String(array) else {
                cancel()
                let seen = before.map { "task \($0["ArrayTaskId"] ?? "?"): JobId=\($0["JobId"] ?? "?") \($0["JobState"] ?? "?")" }
                Issue.record("expected task 1 COMPLETED, 2 and 3 RUNNING, and task 3's job id the array's (\(array)); got \(seen.joined(separator: ", "))\n\(logs())")
                return
            }

            // --batch: the batch shell alone, as --signal=B:USR1 does before a time limit.
            let signal = try Self.shell(["scancel", "--signal=USR1", "--batch", task(3)], in: dir, timeout: 15)
            #expect(signal.code == 0, "scancel: \(signal.output)")
            let third: [String: String]
            do { third = try Self.waitForEnd(task(3), in: dir, timeout: 60) } catch { cancel(); throw error }
            let out3 = Self.log(task(3), in: dir)
            #expect(third["JobState"] == "COMPLETED" && third["ExitCode"] == "0:0" && third["Restarts"] == "1",
                    "task 3: \(third["JobState"] ?? "?") \(third["ExitCode"] ?? "?") Restarts=\(third["Restarts"] ?? "?")\n\(logs())")
            let stopped = out3.firstMatch(of: /stopped by SIGUSR1 after step (\d+) of/).flatMap { Int($0.1) }
            let resumed = out3.firstMatch(of: /resumed at step (\d+)/).flatMap { Int($0.1) }
            #expect(stopped != nil && stopped == resumed && stopped! < steps[3]!,
                    "stopped at \(String(describing: stopped)), resumed at \(String(describing: resumed)):\n\(out3)")
            #expect(out3.contains("requeueing job \(task(3))") && Self.runs(1, in: out3) == 1 && Self.runs(2, in: out3) == 1
                    && out3.contains("done: \(steps[3]!) steps"), "\(out3)")

            // Task 1 did not run again; task 2 is the same run as before the requeue.
            let first = try Self.job(task(1), in: dir), second = try Self.job(task(2), in: dir)
            let out1 = Self.log(task(1), in: dir), out2 = Self.log(task(2), in: dir)
            #expect(first["JobState"] == "COMPLETED" && first["Restarts"] == "0" && Self.runs(2, in: out1) == 0
                    && out1.matches(of: /done: 40 steps/).count == 1,
                    "task 1 must not run again: \(first["JobState"] ?? "?") Restarts=\(first["Restarts"] ?? "?")\n\(out1)")
            #expect(second["JobState"] == "RUNNING" && second["Restarts"] == "0" && second["StartTime"] == before[1]["StartTime"]
                    && Self.runs(2, in: out2) == 0,
                    "task 2 must still be its first run: \(second["JobState"] ?? "?") Restarts=\(second["Restarts"] ?? "?") StartTime \(before[1]["StartTime"] ?? "?") → \(second["StartTime"] ?? "?")\n\(out2)")

            // A user's cancel of task 2 stays a cancel.
            _ = try Self.shell(["scancel", task(2)], in: dir, timeout: 15)
            let cancelled: [String: String]
            do { cancelled = try Self.waitForEnd(task(2), in: dir, timeout: 30) } catch { cancel(); throw error }
            // The script's own word that it did not requeue (written before the job could end).
            let out2End = Self.log(task(2), in: dir)
            #expect(cancelled["JobState"] == "CANCELLED" && cancelled["Restarts"] == "0" && out2End.contains("so it is not requeued")
                    && !out2End.contains("requeueing job"),
                    "task 2 after scancel: \(cancelled["JobState"] ?? "?") Restarts=\(cancelled["Restarts"] ?? "?")\n\(out2End)")
        }

        /// A job array over seeds 1–3 (one rank each): runs/<job>-seed<i> with run.seed = i, and
        /// slurm/collect's mean ± sd of their final test accuracies.
        @Test func seedArrayAndCollect() throws {
            try Self.requireSlurm()
            let dir = try Scratch.folder("slurm-seeds")
            try Scratch.dataset(at: dir + "/data.h5")
            try Scratch.job(at: dir + "/seeds.toml", data: dir + "/data.h5", out: dir + "/unused", steps: 40)
            // seeds.sbatch runs from SLURM's spool, so it is told where train.sbatch is.
            let id = try Self.sbatch("seeds.sbatch", [dir + "/seeds.toml"],
                                     options: ["--array=1-3", "--nodes=1", "--ntasks=1", "--time=5", "--job-name=lockstep-seeds"],
                                     in: dir, export: ",LOCKSTEP_SLURM_DIR=\(Launcher.packageRoot.path)/slurm")
            // An array's tasks leave the queue as they end.
            let deadline = Date().addingTimeInterval(40)
            var queued = "?"
            while Date() < deadline {
                queued = try Self.shell(["squeue", "-h", "-j", String(id)], in: dir, timeout: 15).output
                if queued.trimmingCharacters(in: .whitespacesAndNewlines).isEmpty { break }
                usleep(200_000)
            }
            guard queued.trimmingCharacters(in: .whitespacesAndNewlines).isEmpty else {
                _ = try? Self.shell(["scancel", String(id)], in: dir, timeout: 15)
                Issue.record("array \(id) still queued after 40 s (cancelled):\n\(queued)")
                return
            }
            var accuracies: [Double] = []
            for seed in 1...3 {
                let run = "\(dir)/runs/seeds-seed\(seed)"
                let config = (try? String(contentsOfFile: run + "/config.toml", encoding: .utf8)) ?? ""
                #expect(config.contains("seed = \(seed)\n"), "\(run)/config.toml:\n\(config)\n\((try? String(contentsOfFile: "\(dir)/slurm-\(id)_\(seed).err", encoding: .utf8)) ?? "")")
                let last = try? Self.finalTest(run)
                #expect(last?.step == 40, "\(run): final test line \(String(describing: last))")
                accuracies += last.map { [$0.accuracy] } ?? []
            }
            try #require(accuracies.count == 3)
            let collect = try Self.shell([Launcher.packageRoot.path + "/slurm/collect", "runs/seeds"], in: dir, timeout: 30)
            let mean = accuracies.reduce(0, +) / 3
            let sd = (accuracies.map { ($0 - mean) * ($0 - mean) }.reduce(0, +) / 2).squareRoot()
            let expected = String(format: "over 3 runs: %.2f ± %.2f %%", mean * 100, sd * 100)
            #expect(collect.code == 0 && collect.output.contains(expected), "expected '\(expected)' in:\n\(collect.output)")
        }
    }
}
