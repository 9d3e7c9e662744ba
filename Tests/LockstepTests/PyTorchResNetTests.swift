// A tiny ResNet against PyTorch, as llm.c tests against a PyTorch dump: scripts/reference/
// resnet_step.py built the same model in torch.nn (module names = Lockstep's checkpoint paths),
// ran one training step from given weights and wrote everything into Fixtures/resnet-step.h5.
// Here Lockstep loads those weights by name, runs the same step, and compares logits, loss,
// every gradient, the updated parameters and the running statistics. CI never needs PyTorch.
import Foundation
import Testing
import Lockstep

@Suite struct PyTorchResNetTests {
    static let fixture = URL(fileURLWithPath: #filePath).deletingLastPathComponent()
        .appendingPathComponent("Fixtures/resnet-step.h5").path

    /// The model of resnet_step.py; BatchNorm over the whole batch of 8 as one group.
    static let specs: [LayerSpec] = [
        LayerSpec(Conv2d.Kind(channels: 4, kernel: 3, stride: 1, padding: 1, activation: .identity, bias: false)),
        LayerSpec(BatchNorm.Kind(statistics: .group, group: 8, relu: true)),
        LayerSpec(Residual.Kind.basic(channels: 6, stride: 2, group: 8, zeroInitLast: false)),
        LayerSpec(Residual.Kind.basic(channels: 6, stride: 1, group: 8, zeroInitLast: false)),
        LayerSpec(GlobalAvgPool.Kind()),
        LayerSpec(units: 3, activation: .identity)]

    /// Float32 on both sides, different summation orders: |a − b| ≤ 2e-5 + 1e-4·|b|.
    static func expectClose(_ got: [Float], _ want: [Float], _ what: String) {
        #expect(got.count == want.count, "\(what): \(got.count) vs \(want.count) values")
        for (i, (g, w)) in zip(got, want).enumerated() {
            #expect(abs(g - w) <= 2e-5 + 1e-4 * abs(w), "\(what)[\(i)]: Lockstep \(g), PyTorch \(w)")
        }
    }

    @Test func oneTrainingStepMatchesPyTorch() throws {
        let file = try HDF5File.open(Self.fixture)
        defer { file.close() }
        let network = try Network(inputShape: [2, 6, 6], layers: Self.specs, extraGradientSlots: 2)
        network.initialize(seed: 1)
        // Every Lockstep tensor is the torch tensor of the same path, with the same shape.
        for view in network.views {
            #expect(try file.info("/initial/" + view.path).shape == view.spec.shape, "\(view.path)")
            let values: [Float] = try file.read("/initial/" + view.path)
            (network.parameters.pointer + view.offset).update(from: values, count: view.count)
        }
        let x: [Float] = try file.read("/x")
        let labels: [Int32] = try file.read("/labels")
        network.reserve(batch: 8)
        network.resetStatistics()
        let (logits, loss) = x.withUnsafeBufferPointer { px in
            labels.withUnsafeBufferPointer { pl in
                let z = network.forward(px.baseAddress!, batch: 8)
                let logits = Array(UnsafeBufferPointer(start: z, count: 24))
                let loss = SoftmaxCrossEntropy.lossAndGradient(logits: z, labels: pl.baseAddress!, dlogits: network.logitGradient,
                                                               batch: 8, classes: 3, scale: 1 / 8)
                network.backward(px.baseAddress!, dlogits: network.logitGradient, batch: 8, accumulate: false)
                return (logits, loss / 8)
            }
        }
        Self.expectClose(logits, try file.read("/logits"), "logits")
        let torchLoss: [Double] = try file.read("/loss")
        #expect(abs(loss - torchLoss[0]) <= 1e-5 * abs(torchLoss[0]), "loss \(loss) vs \(torchLoss[0])")
        for view in network.views {
            Self.expectClose(Array(network.gradients.slice(view.offset, view.count)), try file.read("/gradients/" + view.path),
                             "gradient of \(view.path)")
        }

        // One SGD step as torch.optim.SGD(lr 0.1, momentum 0.9) with weight decay 1e-3 on conv
        // and dense weights only (Lockstep's default: no decay on biases, γ or β).
        var settings = SGDSettings()
        settings.momentum = 0.9
        settings.weightDecay = 1e-3
        let sgd = SGD(views: network.views, parameterCount: network.parameterCount, settings: settings)
        sgd.step(parameters: network.parameters.pointer, gradients: network.gradients.pointer, lr: 0.1)
        network.commitStatistics(network.statistics)
        for view in network.views {
            Self.expectClose(Array(network.parameters.slice(view.offset, view.count)), try file.read("/updated/" + view.path),
                             "updated \(view.path)")
        }
        #expect(network.stateViews.count == 2 * 6)
        for view in network.stateViews {
            Self.expectClose(Array(network.state.slice(view.offset, view.count)), try file.read("/running/" + view.path),
                             "\(view.path)")
        }
    }
}
