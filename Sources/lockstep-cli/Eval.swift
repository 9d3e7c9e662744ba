// `lockstep eval CHECKPOINT`: accuracy, mean loss, per-class accuracy and the confusion matrix of
// one split, from the checkpoint alone (CheckpointEval), on any number of ranks; rank 0 prints
// Markdown tables, or one JSON object with --json. Errors exit alike on every rank.

import ArgumentParser
import Lockstep
#if canImport(Glibc)
import Glibc
#endif

struct Eval: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Evaluate a checkpoint on a split: accuracy, mean loss, per-class accuracy and the confusion matrix.",
        discussion: """
            The model is rebuilt from the checkpoint's stored config, and the data opened and normalised as \
            the run did (the checkpoint's recorded statistics; the validation split as the config defines it). \
            Accuracy and loss equal the run's own evaluation of that checkpoint's step in metrics.jsonl, bit \
            for bit, on any number of ranks. Confusion matrix rows are true classes, columns predicted ones.
            """)

    @Argument(help: "A checkpoint file (runs/NAME/checkpoints/step-NNNNNNNN.h5), or a run directory for its newest.")
    var checkpoint: String

    @Option(help: ArgumentHelp("Another data file with the same sample shape (default: data.file of the checkpoint's config).", valueName: "file"))
    var data: String?

    @Option(help: "The split: test, train (the rows trained on) or validation (the run's held-out or stored validation split).")
    var split = "test"

    @Flag(help: "Print one JSON object instead of Markdown tables.")
    var json = false

    func validate() throws {
        guard EvalSplit(rawValue: split) != nil else { throw ValidationError("--split must be test, train or validation, got \(split)") }
    }

    func run() throws {
        var options = EvalOptions(checkpoint: checkpoint)
        options.data = data
        options.split = EvalSplit(rawValue: split)!
        let comm = Communicator.world
        do {
            let report = try CheckpointEval.execute(options, comm: comm)
            if comm.isRoot { print(json ? Self.json(report) : Self.markdown(report)) }
            comm.finalize()
            Glibc.exit(ExitStatus.success)
        } catch let failure as CollectiveFailure {
            if let local = failure.local {
                if comm.isRoot { Console.error(local.message) }
                else if !failure.rootFailed { Console.error("rank \(comm.rank): \(local.message)") }
            }
            comm.finalize()
            Glibc.exit(failure.exitCode)
        } catch {
            comm.abort("\(error)")
        }
    }

    static func json(_ r: CheckpointEvaluation) -> String {
        let rows = r.confusion.map { "[" + $0.map(String.init).joined(separator: ", ") + "]" }
        let fields: [(String, String)] = [
            ("checkpoint", jsonString(r.checkpoint)), ("step", "\(r.step)"), ("data", jsonString(r.data)),
            ("split", jsonString(r.split.rawValue)), ("samples", "\(r.result.samples)"), ("correct", "\(r.result.correct)"),
            ("accuracy", jsonNumber(r.result.accuracy)), ("loss", jsonNumber(r.result.loss)), ("classes", "\(r.confusion.count)"),
            ("class_samples", "[" + r.classSamples.map(String.init).joined(separator: ", ") + "]"),
            ("class_accuracy", "[" + r.classAccuracy.map { $0.map(jsonNumber) ?? "null" }.joined(separator: ", ") + "]"),
            ("confusion", "[" + rows.joined(separator: ", ") + "]"),
        ]
        return "{" + fields.map { "\"\($0.0)\": \($0.1)" }.joined(separator: ", ") + "}"
    }

    static func markdown(_ r: CheckpointEvaluation) -> String {
        let percent = { (x: Double) -> String in
            let hundredths = Int((x * 10000).rounded())
            return "\(hundredths / 100).\(hundredths % 100 < 10 ? "0" : "")\(hundredths % 100)%"
        }
        var lines = ["# \(r.checkpoint) (step \(r.step)), \(r.split.rawValue) split of \(r.data)", "",
                     "accuracy \(percent(r.result.accuracy)) (\(r.result.correct) of \(r.result.samples); \(r.result.accuracy)), mean loss \(r.result.loss)", "",
                     "| class | samples | correct | accuracy |", "| ---: | ---: | ---: | ---: |"]
        for c in r.confusion.indices {
            lines.append("| \(c) | \(r.classSamples[c]) | \(r.confusion[c][c]) | \(r.classAccuracy[c].map(percent) ?? "–") |")
        }
        lines += ["", "Confusion matrix (rows: true class, columns: predicted class):", "",
                  "| true \\ predicted | " + r.confusion.indices.map(String.init).joined(separator: " | ") + " |",
                  "| ---: | " + r.confusion.indices.map { _ in "---:" }.joined(separator: " | ") + " |"]
        for c in r.confusion.indices {
            lines.append("| \(c) | " + r.confusion[c].map(String.init).joined(separator: " | ") + " |")
        }
        return lines.joined(separator: "\n")
    }
}
