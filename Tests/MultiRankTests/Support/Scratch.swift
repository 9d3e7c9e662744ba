// Temporary folders, synthetic HDF5 datasets and readers for run outputs (metrics, checkpoints).

import Foundation
import Lockstep

enum Scratch {
    /// A new empty folder under the system temp dir.
    static func folder(_ name: String) throws -> String {
        let path = NSTemporaryDirectory() + "lockstep-\(name)-\(UUID().uuidString.prefix(8))"
        try FileManager.default.createDirectory(atPath: path, withIntermediateDirectories: true)
        return path
    }

    /// A learnable synthetic classification set: float32 features [N, width], labels from a
    /// fixed random linear teacher, so losses fall and the test is about real training.
    /// `overflowing` training samples get features of 3e38: finite data whose forward pass
    /// overflows, so every batch holding one has a non-finite loss.
    static func dataset(at path: String, train: Int = 600, test: Int = 200, width: Int = 20, classes: Int = 4, seed: UInt64 = 7,
                        overflowing: [Int] = []) throws {
        var rng = Xoshiro256(seed: seed)
        let teacher = (0..<(width * classes)).map { _ in rng.nextUnit() * 2 - 1 }
        func split(_ n: Int) -> ([Float], [Int64]) {
            var x: [Float] = [], y: [Int64] = []
            for _ in 0..<n {
                let sample = (0..<width).map { _ in Float(rng.nextUnit() * 2 - 1) }
                let scores = (0..<classes).map { c in (0..<width).reduce(0.0) { $0 + Double(sample[$1]) * teacher[c * width + $1] } }
                x += sample
                y.append(Int64(scores.indices.max { scores[$0] < scores[$1] }!))
            }
            return (x, y)
        }
        let file = try HDF5File.create(path)
        var (trainX, trainY) = split(train)
        for sample in overflowing { trainX.replaceSubrange((sample * width)..<((sample + 1) * width), with: repeatElement(3e38, count: width)) }
        let (testX, testY) = split(test)
        try file.write("/train/x", trainX, shape: [train, width])
        try file.write("/train/y", trainY, shape: [train])
        try file.write("/test/x", testX, shape: [test, width])
        try file.write("/test/y", testY, shape: [test])
        file.close()
    }

    /// Writes a job file for the synthetic set; `extra` lines are appended to the sections.
    static func job(at path: String, data: String, out: String, steps: Int = 30, batch: Int = 24,
                    optimizer: String = "lr = 0.1\nmomentum = 0.9\nweight_decay = 1e-3") throws {
        let text = """
        [run]
        name = "synthetic"
        seed = 3
        steps = \(steps)
        out = "\(out)"
        log_every = 1
        eval_every = 10
        checkpoint_every = 10
        keep_checkpoints = 100

        [data]
        file = "\(data)"
        normalization = "none"

        [model]
        layers = [{ units = 32 }, { units = 16 }, { units = 4 }]

        [batch]
        global = \(batch)

        [optimizer]
        \(optimizer)

        """
        try text.write(toFile: path, atomically: true, encoding: .utf8)
    }

    /// Every line of a run's metrics.jsonl, parsed.
    static func metrics(_ runDir: String) throws -> [[String: Any]] {
        let text = try String(contentsOfFile: runDir + "/metrics.jsonl", encoding: .utf8)
        return try text.split(separator: "\n").map {
            try JSONSerialization.jsonObject(with: Data($0.utf8)) as! [String: Any]
        }
    }

    /// (step, loss) of every training line.
    static func losses(_ runDir: String) throws -> [(Int, Double)] {
        try metrics(runDir).filter { $0["split"] == nil && $0["measure"] == nil }.map { ($0["step"] as! Int, ($0["loss"] as? NSNumber)?.doubleValue ?? .nan) }
    }

    /// All float datasets in a checkpoint, by path (model and optimizer state).
    static func checkpointTensors(_ path: String) throws -> [String: [Float]] {
        let file = try HDF5File.open(path)
        var tensors: [String: [Float]] = [:]
        func walk(_ group: String) throws {
            for member in file.members(of: group) {
                let p = (group == "/" ? "" : group) + "/" + member
                if let info = try? file.info(p), info.kind == .float {
                    tensors[p] = try file.read(p, as: Float.self)
                } else {
                    try walk(p)
                }
            }
        }
        try walk("/")
        return tensors
    }

    static func checkpoint(_ runDir: String, step: Int) -> String {
        runDir + "/checkpoints/" + Checkpoint.fileName(step: step)
    }
}
