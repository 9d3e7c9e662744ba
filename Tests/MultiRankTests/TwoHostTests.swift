// A real 2-host job over TCP: two Linux network namespaces on this machine act as the hosts
// (scripts/two-host-netns), one rank on each, launched by mpirun through an ssh-like agent and
// talking over a veth pair with the TCP BTL only. The job must end exactly where the same job
// ends on one host with 2 ranks (shared memory). Needs root: without CAP_NET_ADMIN the test
// fails and says so (it never passes without having run on two hosts).

import Foundation
import Testing

extension MultiRank {
    @Suite struct TwoHost {
        static let script = Launcher.packageRoot.appendingPathComponent("scripts/two-host-netns").path

        static func run(_ command: [String], timeout: Double, environment extra: [String: String] = [:]) throws -> Launch {
            try Launcher.execute(command, timeout: timeout, environment: extra)
        }

        @Test func twoHostsOverTCPMatchOneHost() throws {
            let dir = try Scratch.folder("two-host")
            try Scratch.dataset(at: dir + "/data.h5")
            for name in ["hosts", "local"] {
                try Scratch.job(at: "\(dir)/\(name).toml", data: dir + "/data.h5", out: "\(dir)/\(name)", steps: 30)
            }

            // `down` always runs, also after a failed `up` (which may have created half of it).
            defer { _ = try? Self.run([Self.script, "down"], timeout: 30) }
            let up = try Self.run([Self.script, "up"], timeout: 30)
            try #require(up.exitCode == 0, """
                could not create the two network namespaces (this test needs root with CAP_NET_ADMIN \
                and CAP_SYS_ADMIN, e.g. not an unprivileged container): \(up.stderr)
                """)

            // The training job, 1 rank per host. Each rank records where it runs (rank, UTS
            // hostname, network namespace of its own process) and then execs lockstep, so the
            // record is about the very processes that train. The agent logs every remote launch.
            let rankLog = dir + "/ranks.log", agentLog = dir + "/agent.log"
            let record = #"echo "$OMPI_COMM_WORLD_RANK $(hostname) $(ip netns identify $$)" >> "$0"; exec "$@""#
            let hosts = try Self.run([Self.script, "run", "2", "/bin/sh", "-c", record, rankLog,
                                      Launcher.binary, "train", "\(dir)/hosts.toml"],
                                     timeout: 150, environment: ["TWO_HOST_TIMEOUT": "120", "TWO_HOST_LOG": agentLog])
            #expect(!hosts.timedOut, "2-host job hung: \(hosts.stderr)")
            try #require(hosts.exitCode == 0, "2-host job failed (\(hosts.exitCode)): \(hosts.stdout)\n\(hosts.stderr)")

            let local = try Launcher.run(ranks: 2, ["train", "\(dir)/local.toml"], timeout: 120)
            try #require(local.exitCode == 0, "1-host job failed (\(local.exitCode)): \(local.stderr)")
            print("two-host: 2 hosts × 1 rank \(String(format: "%.2f", hosts.seconds)) s, "
                  + "1 host × 2 ranks \(String(format: "%.2f", local.seconds)) s")

            // Two different hosts really ran the ranks: rank 0 in ls-host1 (mpirun's own
            // namespace), rank 1 in ls-host2, started there by the agent with TCP only.
            let ranks = try String(contentsOfFile: rankLog, encoding: .utf8).split(separator: "\n").map(String.init).sorted()
            #expect(ranks == ["0 ls-host1 ls-host1", "1 ls-host2 ls-host2"], "rank placement: \(ranks)")
            let launches = try String(contentsOfFile: agentLog, encoding: .utf8).split(separator: "\n").map(String.init)
            #expect(launches.count == 1, "agent launches: \(launches)")
            #expect(launches.first?.hasPrefix("ls-host2 ls-host2 ") == true, "\(launches)")
            #expect(launches.first?.contains("orted") == true && launches.first?.contains(#"btl "tcp,self""#) == true,
                    "remote daemon without the TCP-only BTL: \(launches)")

            // Same job, same rank count: the same per-rank shares, and a 2-operand sum in the
            // allreduce is the same whichever rank adds first and whatever carries the bytes. So
            // TCP between namespaces vs shared memory on one host must agree bit for bit, in
            // every logged loss and every checkpoint tensor (model and optimizer state).
            let a = try Scratch.losses("\(dir)/hosts"), b = try Scratch.losses("\(dir)/local")
            #expect(a.count == 30 && a.map(\.0) == b.map(\.0), "logged steps: \(a.map(\.0)) vs \(b.map(\.0))")
            #expect(a.last!.1 < a.first!.1 * 0.8, "it trained: \(a.first!.1) → \(a.last!.1)")
            for ((step, x), (_, y)) in zip(a, b) {
                #expect(x.bitPattern == y.bitPattern, "loss at step \(step): \(x) (2 hosts) vs \(y) (1 host)")
            }
            for step in [10, 20, 30] {
                let ta = try Scratch.checkpointTensors(Scratch.checkpoint("\(dir)/hosts", step: step))
                let tb = try Scratch.checkpointTensors(Scratch.checkpoint("\(dir)/local", step: step))
                #expect(!ta.isEmpty && Set(ta.keys) == Set(tb.keys), "checkpoint \(step) contents differ")
                for (path, values) in ta {
                    guard let other = tb[path] else { continue }
                    #expect(bitPatterns(values) == bitPatterns(other),
                            "step \(step) \(path) differs: relative \(relativeDifference(values, other))")
                }
            }
        }
    }
}
