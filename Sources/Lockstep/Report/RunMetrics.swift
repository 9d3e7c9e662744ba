// Reading a run's metrics.jsonl back: the training and evaluation records, for plots and tables.

import Foundation

public struct RunMetrics {
    /// One evaluation line: where in training it was taken and what it measured.
    public struct Evaluation {
        public let step: Int
        public let epoch: Int
        public let split: String
        public let accuracy: Double
        public let loss: Double
    }
    public struct TrainingLine {
        public let step: Int
        public let epoch: Int
        public let samples: Int
        public let loss: Double
    }

    public let directory: String
    public let evaluations: [Evaluation]
    public let training: [TrainingLine]
    /// (epoch, samples processed, ‖∇f‖) of every full-gradient measurement.
    public let fullGradients: [(epoch: Int, samples: Int, norm: Double)]

    public init(directory: String) throws {
        self.directory = directory
        let path = directory + "/metrics.jsonl"
        guard let text = readTextFile(path) else { throw LockstepError.usage("\(path): no such readable file (is \(directory) a run directory?)") }
        var evaluations: [Evaluation] = []
        var training: [TrainingLine] = []
        var fullGradients: [(epoch: Int, samples: Int, norm: Double)] = []
        for (number, line) in text.split(separator: "\n").enumerated() {
            guard let object = try? JSONSerialization.jsonObject(with: Data(line.utf8)) as? [String: Any] else {
                throw LockstepError.usage("\(path):\(number + 1): not a JSON object")
            }
            let step = (object["step"] as? NSNumber)?.intValue ?? 0
            let epoch = (object["epoch"] as? NSNumber)?.intValue ?? 0
            let loss = (object["loss"] as? NSNumber)?.doubleValue ?? .nan
            if object["measure"] as? String == "full_gradient" {
                fullGradients.append((epoch, (object["samples"] as? NSNumber)?.intValue ?? 0,
                                      (object["full_grad_norm"] as? NSNumber)?.doubleValue ?? .nan))
            } else if object["measure"] != nil {
                // Other records (a skipped step) carry no loss or accuracy to plot.
            } else if let split = object["split"] as? String {
                evaluations.append(Evaluation(step: step, epoch: epoch, split: split,
                                              accuracy: (object["accuracy"] as? NSNumber)?.doubleValue ?? .nan, loss: loss))
            } else {
                training.append(TrainingLine(step: step, epoch: epoch, samples: (object["samples"] as? NSNumber)?.intValue ?? 0, loss: loss))
            }
        }
        self.evaluations = evaluations
        self.training = training
        self.fullGradients = fullGradients
    }
}

/// Mean and sample standard deviation (n − 1); sd is 0 for a single value.
public func meanAndSD(_ values: [Double]) -> (mean: Double, sd: Double) {
    guard !values.isEmpty else { return (.nan, .nan) }
    let mean = values.reduce(0, +) / Double(values.count)
    guard values.count > 1 else { return (mean, 0) }
    let variance = values.reduce(0) { $0 + ($1 - mean) * ($1 - mean) } / Double(values.count - 1)
    return (mean, variance.squareRoot())
}
