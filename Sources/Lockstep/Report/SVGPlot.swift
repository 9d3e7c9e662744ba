// A small, dependency-free SVG line chart: one line per series (the mean over seeds) with a
// shaded ±1 sd band, axes with round-number ticks, and a legend. Enough for docs/experiments.

#if canImport(Glibc)
import Glibc
#endif

public struct SVGPlot {
    public struct Series {
        public let label: String
        /// (x, mean, sd) points, in x order.
        public let points: [(x: Double, mean: Double, sd: Double)]
        public init(label: String, points: [(x: Double, mean: Double, sd: Double)]) {
            self.label = label
            self.points = points
        }
    }

    public var title: String
    public var xLabel: String
    public var yLabel: String
    public var series: [Series]
    public var logY = false
    public var width = 820.0, height = 440.0

    public init(title: String, xLabel: String, yLabel: String, series: [Series]) {
        self.title = title
        self.xLabel = xLabel
        self.yLabel = yLabel
        self.series = series
    }

    static let palette = ["#1f77b4", "#d62728", "#2ca02c", "#ff7f0e", "#9467bd", "#8c564b", "#e377c2", "#17becf"]

    public func render() -> String {
        // The legend sits right of the plot; make room for its longest label (~7 px a character).
        let longest = series.map(\.label.count).max() ?? 0
        let left = 70.0, right = max(120, 56 + 7 * Double(longest)), top = 40.0, bottom = 55.0
        let plotW = width - left - right, plotH = height - top - bottom
        let all = series.flatMap(\.points).filter { $0.mean.isFinite }
        let ty: (Double) -> Double = { logY ? log10(max($0, 1e-12)) : $0 }
        let xs = all.map(\.x)
        let lows = all.map { ty($0.mean - ($0.sd.isFinite ? $0.sd : 0)) }
        let highs = all.map { ty($0.mean + ($0.sd.isFinite ? $0.sd : 0)) }
        var (x0, x1) = (xs.min() ?? 0, xs.max() ?? 1)
        var (y0, y1) = (lows.min() ?? 0, highs.max() ?? 1)
        if x1 <= x0 { x1 = x0 + 1 }
        if y1 <= y0 { y1 = y0 + 1 }
        let pad = (y1 - y0) * 0.05
        y0 -= pad; y1 += pad
        let px: (Double) -> Double = { left + ($0 - x0) / (x1 - x0) * plotW }
        let py: (Double) -> Double = { top + (1 - (ty($0) - y0) / (y1 - y0)) * plotH }
        let pyRaw: (Double) -> Double = { top + (1 - ($0 - y0) / (y1 - y0)) * plotH }

        var svg = """
        <svg xmlns="http://www.w3.org/2000/svg" width="\(f(width))" height="\(f(height))" viewBox="0 0 \(f(width)) \(f(height))" font-family="sans-serif" font-size="12">
        <rect width="100%" height="100%" fill="white"/>
        <text x="\(f(left + plotW / 2))" y="22" text-anchor="middle" font-size="15">\(escape(title))</text>

        """
        // Axes and ticks.
        svg += "<rect x=\"\(f(left))\" y=\"\(f(top))\" width=\"\(f(plotW))\" height=\"\(f(plotH))\" fill=\"none\" stroke=\"#333\"/>\n"
        for t in ticks(x0, x1) {
            svg += "<line x1=\"\(f(px(t)))\" y1=\"\(f(top + plotH))\" x2=\"\(f(px(t)))\" y2=\"\(f(top + plotH + 5))\" stroke=\"#333\"/>"
            svg += "<text x=\"\(f(px(t)))\" y=\"\(f(top + plotH + 18))\" text-anchor=\"middle\">\(label(t))</text>\n"
        }
        for t in ticks(y0, y1) {
            svg += "<line x1=\"\(f(left))\" y1=\"\(f(pyRaw(t)))\" x2=\"\(f(left + plotW))\" y2=\"\(f(pyRaw(t)))\" stroke=\"#ddd\"/>"
            svg += "<text x=\"\(f(left - 6))\" y=\"\(f(pyRaw(t) + 4))\" text-anchor=\"end\">\(logY ? label(pow(10, t)) : label(t))</text>\n"
        }
        svg += "<text x=\"\(f(left + plotW / 2))\" y=\"\(f(height - 12))\" text-anchor=\"middle\">\(escape(xLabel))</text>\n"
        svg += "<text transform=\"translate(18 \(f(top + plotH / 2))) rotate(-90)\" text-anchor=\"middle\">\(escape(yLabel))</text>\n"

        for (index, s) in series.enumerated() {
            let color = Self.palette[index % Self.palette.count]
            let points = s.points.filter { $0.mean.isFinite }
            guard !points.isEmpty else { continue }
            let upper = points.map { "\(f(px($0.x))),\(f(py($0.mean + $0.sd)))" }
            let lower = points.reversed().map { "\(f(px($0.x))),\(f(py($0.mean - $0.sd)))" }
            svg += "<polygon points=\"\((upper + lower).joined(separator: " "))\" fill=\"\(color)\" fill-opacity=\"0.15\" stroke=\"none\"/>\n"
            svg += "<polyline points=\"\(points.map { "\(f(px($0.x))),\(f(py($0.mean)))" }.joined(separator: " "))\" fill=\"none\" stroke=\"\(color)\" stroke-width=\"2\"/>\n"
            let ly = top + 10 + Double(index) * 20
            svg += "<line x1=\"\(f(left + plotW + 12))\" y1=\"\(f(ly))\" x2=\"\(f(left + plotW + 36))\" y2=\"\(f(ly))\" stroke=\"\(color)\" stroke-width=\"3\"/>"
            svg += "<text x=\"\(f(left + plotW + 42))\" y=\"\(f(ly + 4))\">\(escape(s.label))</text>\n"
        }
        return svg + "</svg>\n"
    }

    private func ticks(_ lo: Double, _ hi: Double) -> [Double] {
        let raw = (hi - lo) / 6
        let magnitude = pow(10, floor(log10(raw)))
        let step = [1.0, 2, 5, 10].map { $0 * magnitude }.first { $0 >= raw } ?? raw
        var t = ceil(lo / step) * step
        var out: [Double] = []
        while t <= hi + step * 1e-9 {
            out.append(t)
            t += step
        }
        return out
    }

    private func label(_ v: Double) -> String {
        if v == 0 { return "0" }
        if abs(v) >= 1e5 || abs(v) < 1e-3 {
            let e = Int(floor(log10(abs(v))))
            return "\(format(v / pow(10, Double(e)), 1))e\(e)"
        }
        let digits = abs(v) >= 100 ? 0 : abs(v) >= 1 ? 2 : 3
        var text = format(v, digits)
        while digits > 0 && text.hasSuffix("0") { text.removeLast() }
        if text.hasSuffix(".") { text.removeLast() }
        return text
    }

    private func f(_ v: Double) -> String { format(v, 1) }
    private func escape(_ s: String) -> String {
        s.replacingAll("&", "&amp;").replacingAll("<", "&lt;").replacingAll(">", "&gt;")
    }
}
