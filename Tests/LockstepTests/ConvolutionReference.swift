// Float64 references for the convolution tests: the layers' definitions computed directly (no
// im2col, no GEMM), and a whole Network recomputed from its own layer list and flat parameters.
import Testing
import Lockstep
#if canImport(Glibc)
import Glibc
#endif

/// The layers' math redone in Float64, directly from the definitions (no im2col).
enum Reference64 {
    /// y[b, o, i, j] = bias[o] + Σ_{c, ki, kj} W[o, c, ki, kj] · x[b, c, i·s − p + ki, j·s − p + kj], zero outside.
    static func conv(_ x: [Double], batch: Int, _ conv: Conv2d, theta: [Double], weight: Int, bias: Int) -> [Double] {
        let (inp, out, k, s, p) = (conv.input, conv.output, conv.kernel, conv.stride, conv.padding)
        var y = [Double](repeating: 0, count: batch * out.count)
        for b in 0..<batch {
            for o in 0..<out.channels {
                for i in 0..<out.height {
                    for j in 0..<out.width {
                        var sum = theta[bias + o]
                        for c in 0..<inp.channels {
                            for ki in 0..<k {
                                for kj in 0..<k {
                                    let (r, q) = (i * s - p + ki, j * s - p + kj)
                                    guard r >= 0 && r < inp.height && q >= 0 && q < inp.width else { continue }
                                    sum += theta[weight + ((o * inp.channels + c) * k + ki) * k + kj]
                                        * x[b * inp.count + (c * inp.height + r) * inp.width + q]
                                }
                            }
                        }
                        y[b * out.count + (o * out.height + i) * out.width + j] = sum
                    }
                }
            }
        }
        return y
    }

    /// Max (or mean) of each window; `margin` is lowered to the smallest gap between a window's
    /// largest positive value and its runner-up, so a finite difference never swaps the winner.
    static func pool(_ x: [Double], batch: Int, _ w: PoolWindow, max isMax: Bool, margin: inout Double) -> [Double] {
        let (inp, out, k) = (w.input, w.output, w.kernel)
        var y = [Double](repeating: 0, count: batch * out.count)
        for b in 0..<batch {
            for c in 0..<out.channels {
                for i in 0..<out.height {
                    for j in 0..<out.width {
                        var values: [Double] = []
                        for ki in 0..<k {
                            for kj in 0..<k {
                                values.append(x[b * inp.count + (c * inp.height + i * w.stride + ki) * inp.width + j * w.stride + kj])
                            }
                        }
                        let sorted = values.sorted(by: >)
                        if isMax && sorted[0] > 0 && sorted.count > 1 { margin = min(margin, sorted[0] - sorted[1]) }
                        y[b * out.count + (c * out.height + i) * out.width + j] = isMax ? sorted[0] : values.reduce(0, +) / Double(k * k)
                    }
                }
            }
        }
        return y
    }
}

/// A whole Network redone in Float64 from its own layer list and flat parameters.
struct ReferenceNetwork {
    let network: Network

    func offset(_ layer: any Layer, _ param: String) -> Int {
        network.views.first { $0.path == "\(layer.name)/\(param)" }!.offset
    }

    /// Logits [batch, classes]; `margin` is the smallest |z| fed to a ReLU and max-pool winner gap.
    func logits(_ theta: [Double], x: [Double], batch: Int, margin: inout Double) -> [Double] {
        var a = x
        for layer in network.layers {
            switch layer {
            case let conv as Conv2d:
                a = Reference64.conv(a, batch: batch, conv, theta: theta, weight: offset(conv, "weight"), bias: offset(conv, "bias"))
            case let dense as Dense:
                let (n, m, w, bias) = (dense.inputWidth, dense.outputWidth, offset(dense, "weight"), offset(dense, "bias"))
                var z = [Double](repeating: 0, count: batch * m)
                for r in 0..<batch {
                    for o in 0..<m {
                        var s = theta[bias + o]
                        for i in 0..<n { s += a[r * n + i] * theta[w + o * n + i] }
                        z[r * m + o] = s
                    }
                }
                a = z
            case is ReLU:
                margin = min(margin, a.map { abs($0) }.min()!)
                a = a.map { max($0, 0) }
            case let pool as MaxPool2d:
                a = Reference64.pool(a, batch: batch, pool.window, max: true, margin: &margin)
            case let pool as AvgPool2d:
                a = Reference64.pool(a, batch: batch, pool.window, max: false, margin: &margin)
            default:
                Issue.record("no reference for \(layer.name)")
            }
        }
        return a
    }

    /// Mean softmax cross-entropy over the batch, by log-sum-exp.
    func loss(_ theta: [Double], x: [Double], labels: [Int32], batch: Int) -> Double {
        var unused = Double.infinity
        let z = logits(theta, x: x, batch: batch, margin: &unused)
        let classes = network.classes
        var total = 0.0
        for r in 0..<batch {
            let row = z[(r * classes)..<((r + 1) * classes)]
            let m = row.max()!
            let lse: Double = m + log(row.reduce(0.0) { $0 + exp($1 - m) })
            total += lse - row[r * classes + Int(labels[r])]
        }
        return total / Double(batch)
    }
}
