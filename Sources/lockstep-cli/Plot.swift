// `lockstep plot`: test accuracy (or loss) against epoch or samples for several arms, each the
// mean ± sd over its runs (seeds), as an SVG; and a Markdown table of the final values.

import ArgumentParser
import Lockstep

struct Plot: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Plot evaluations of several arms (mean ± sd over their runs) and print a table of final values.",
        discussion: "Each ARM is LABEL=RUNDIR[,RUNDIR...] (split at the last \"=\", so labels may contain \"=\"), e.g. \"batch 64=runs/b64-s1,runs/b64-s2,runs/b64-s3\".")

    @Argument(help: ArgumentHelp("Arms: LABEL=RUNDIR[,RUNDIR...].", valueName: "arm"))
    var arms: [String]

    @Option(help: "What to plot: accuracy or loss (of --split), or full_grad_norm (needs run.full_grad_norm_every).")
    var metric = "accuracy"

    @Option(help: "Which evaluations to plot: test or train (train needs run.eval_train).")
    var split = "test"

    @Option(help: "Horizontal axis: epoch or samples.")
    var x = "epoch"

    @Option(name: .shortAndLong, help: "The SVG file to write.")
    var output: String

    @Option(help: "Plot title.")
    var title = "Test accuracy"

    func validate() throws {
        guard ["accuracy", "loss", "full_grad_norm"].contains(metric) else {
            throw ValidationError("--metric must be accuracy, loss or full_grad_norm")
        }
        guard ["epoch", "samples"].contains(x) else { throw ValidationError("--x must be epoch or samples") }
        guard ["test", "train"].contains(split) else { throw ValidationError("--split must be test or train") }
    }

    func run() throws {
        var series: [SVGPlot.Series] = []
        if metric == "full_grad_norm" {
            Console.info("| arm | runs | final ‖∇f‖ (mean ± sd) |")
            Console.info("| --- | --- | --- |")
        } else {
            Console.info("| arm | runs | final \(split) \(metric) (mean ± sd) | best \(split) \(metric) (mean ± sd) | final train − test \(metric) (mean ± sd) |")
            Console.info("| --- | --- | --- | --- | --- |")
        }
        for arm in arms {
            guard let eq = arm.lastIndex(of: "=") else { throw LockstepError.usage("\(arm): an arm is LABEL=RUNDIR[,RUNDIR...]") }
            let label = String(arm[..<eq])
            let all = try arm[arm.index(after: eq)...].split(separator: ",").map { try RunMetrics(directory: String($0)) }
            if metric == "full_grad_norm" {
                series.append(fullGradientSeries(label, all))
                continue
            }
            // A run that diverged (stopped on a non-finite loss) has no evaluation: count it, plot the rest.
            let runs = all.filter { run in run.evaluations.contains { $0.split == split } }
            let failed = all.count - runs.count
            let curves = runs.map { run in run.evaluations.filter { $0.split == split } }
            guard let shortest = curves.map(\.count).min(), shortest > 0 else {
                Console.info("| \(label) | \(all.count) | diverged in \(failed)/\(all.count) runs | — | — |")
                continue
            }
            let value: (RunMetrics.Evaluation) -> Double = { metric == "accuracy" ? $0.accuracy * 100 : $0.loss }
            var points: [(x: Double, mean: Double, sd: Double)] = []
            for i in 0..<shortest {
                let (mean, sd) = meanAndSD(curves.map { value($0[i]) })
                let e = curves[0][i]
                // Epochs count from 1 at the end of the first epoch.
                let xValue = x == "epoch" ? Double(e.epoch + 1) : Double(runs[0].training.last { $0.step <= e.step }?.samples ?? 0)
                points.append((xValue, mean, sd))
            }
            series.append(SVGPlot.Series(label: label, points: points))
            let finals = meanAndSD(curves.map { value($0[shortest - 1]) })
            let bests = meanAndSD(curves.map { c in metric == "accuracy" ? c.map(value).max()! : c.map(value).min()! })
            let unit = metric == "accuracy" ? " %" : ""
            let note = failed > 0 ? " (\(failed) of \(all.count) runs diverged, not included)" : ""
            // The generalization gap, where the runs also evaluated the training split (run.eval_train).
            let trainFinals = runs.compactMap { run in run.evaluations.last { $0.split == "train" }.map(value) }
            let testFinals = runs.compactMap { run in run.evaluations.last { $0.split == "test" }.map(value) }
            let gapText: String
            if trainFinals.count == runs.count && testFinals.count == runs.count {
                let gaps = meanAndSD(zip(trainFinals, testFinals).map { $0 - $1 })
                gapText = "\(fixed(gaps.mean)) ± \(fixed(gaps.sd))\(metric == "accuracy" ? " points" : "")"
            } else {
                gapText = "—"
            }
            Console.info("| \(label) | \(all.count) | \(fixed(finals.mean)) ± \(fixed(finals.sd))\(unit)\(note) | \(fixed(bests.mean)) ± \(fixed(bests.sd))\(unit) | \(gapText) |")
        }
        let yLabel = metric == "accuracy" ? "\(split) accuracy (%)" : metric == "loss" ? "\(split) loss" : "full-gradient norm ‖∇f(w)‖"
        var plot = SVGPlot(title: title, xLabel: x == "epoch" ? "epoch" : "training samples processed",
                           yLabel: yLabel, series: series)
        plot.logY = metric != "accuracy"
        try writeTextFileAtomically(output, plot.render())
        Console.info("wrote \(output)")
    }

    /// ‖∇f‖ per measurement, mean ± sd over the runs (which measured at the same points).
    private func fullGradientSeries(_ label: String, _ runs: [RunMetrics]) -> SVGPlot.Series {
        let count = runs.map(\.fullGradients.count).min() ?? 0
        let points = (0..<count).map { i -> (x: Double, mean: Double, sd: Double) in
            let (mean, sd) = meanAndSD(runs.map { $0.fullGradients[i].norm })
            let first = runs[0].fullGradients[i]
            return (x == "epoch" ? Double(first.epoch + 1) : Double(first.samples), mean, sd)
        }
        Console.info("| \(label) | \(runs.count) | \(points.last.map { "\(format4($0.mean)) ± \(format4($0.sd))" } ?? "n/a") |")
        return SVGPlot.Series(label: label, points: points)
    }

    /// Four decimals (norms are well below 1).
    private func format4(_ v: Double) -> String {
        guard v.isFinite else { return "n/a" }
        let units = Int((v.magnitude * 10_000).rounded())
        let fraction = String(units % 10_000)
        return (v < 0 ? "-" : "") + "\(units / 10_000)." + String(repeating: "0", count: 4 - fraction.count) + fraction
    }

    private func fixed(_ v: Double) -> String {
        guard v.isFinite else { return "n/a" }
        let scaled = (v * 100).rounded() / 100
        let whole = Int(scaled.magnitude)
        let cents = Int(((scaled.magnitude - Double(whole)) * 100).rounded())
        return (v < 0 ? "-" : "") + "\(whole)." + (cents < 10 ? "0" : "") + "\(cents)"
    }
}
