// "No allocation in the step": after warm-up steps, forward, backward, exchange and update
// allocate nothing, for every optimizer family, with GSNR, with micro-batch accumulation, with
// the full batch, with conv and pooling layers (one sample or a chunk of samples per GEMM), with
// augmentation and label smoothing, and across an epoch boundary (the data order is regenerated
// in place). The malloc family is interposed in the test binary (AllocationCounter) and counted
// on this thread only.
// One process (an MPI singleton): the exchange still goes through Communicator.allreduce.

import AllocationCounter
import Foundation
import Lockstep
import Testing

@Suite(.serialized) struct StepAllocationTests {
    static let dataPath: String = {
        let path = NSTemporaryDirectory() + "lockstep-allocation-\(getpid()).h5"
        let file = try! HDF5File.create(path)
        let n = 600, width = 20
        // Samples of 4×5 "pixels": dense layers read them flat, conv layers as 1-channel images.
        try! file.write("/train/x", (0..<(n * width)).map { Float(($0 * 7919) % 101) / 101 - 0.5 }, shape: [n, 4, 5])
        try! file.write("/train/y", (0..<n).map { Int64(($0 * 31) % 4) }, shape: [n])
        try! file.write("/test/x", (0..<(100 * width)).map { Float($0 % 13) / 13 }, shape: [100, 4, 5])
        try! file.write("/test/y", (0..<100).map { Int64($0 % 4) }, shape: [100])
        file.close()
        return path
    }()

    static let cases: [String] = [
        "[optimizer]\nlr = 0.05\nmomentum = 0.9\nnesterov = true\nweight_decay = 1e-3",
        "[optimizer]\nname = \"adam\"\nlr = 0.01\nweight_decay = 1e-3",
        "[optimizer]\nname = \"lamb\"\nlr = 0.01\nweight_decay = 0.01",
        "[optimizer]\nname = \"lars\"\nlr = 0.5\nweight_decay = 1e-3",
        "[optimizer]\nname = \"rsgd\"\nlr = 0.05\np0 = 0.9\ngamma = 0.95",
        "[optimizer]\nlr = 0.05\nmomentum = 0.9\n[gsnr]\nenabled = true\ngroups_per_rank = 4",
        "[optimizer]\nname = \"adam\"\nlr = 0.01\n[gsnr]\nenabled = true\ngroups_per_rank = 2",
        // The GSNR statistics keys: the multiplier on the base's step (its copy is sized once), smoothing
        // for a non-Adam base, an absolute ε, and the noise scale without GSNR.
        "[optimizer]\nname = \"lamb\"\nlr = 0.01\n[gsnr]\nenabled = true\ngroups_per_rank = 2\napply = \"update\"\nsmoothing = 0.5",
        "[optimizer]\nname = \"lars\"\nlr = 0.5\n[gsnr]\nenabled = true\ngroups_per_rank = 4\neps = 1e-12\napply = \"update\"\n[exchange]\nbucket_mb = 0.001",
        "[run]\nnoise_scale = true\n[optimizer]\nlr = 0.05\nmomentum = 0.9\n[gsnr]\nsmoothing = 0.3\ngroups_per_rank = 2",
        "[optimizer]\nlr = 0.05\nmomentum = 0.9\n[batch]\nglobal = 24\nmicro = 6",
        "[optimizer]\nname = \"lbfgs\"\ninner = 3\n[batch]\nglobal = 120",
        "[optimizer]\nname = \"lbfgs\"\ninner = 3\nline_search = \"strong_wolfe\"\n[batch]\nglobal = 120",
        "[optimizer]\nlr = 0.5\nmomentum = 0.9\n[batch]\nglobal = \"full\"\nmicro = 100",
        "[optimizer]\nlr = 0.05\nmomentum = 0.9\n[batch]\nglobal = 24\nmicro = 6\n[exchange]\nbucket_mb = 0.001",
        "[optimizer]\nname = \"adam\"\nlr = 0.01\n[gsnr]\nenabled = true\ngroups_per_rank = 2\n[exchange]\nbucket_mb = 0.001",
        "[optimizer]\nlr = 0.05\nmomentum = 0.9\n[model]\nlayers = [{ type = \"conv2d\", channels = 4, kernel = 3, padding = 1 }, { type = \"maxpool\", kernel = 2 }, { type = \"avgpool\", kernel = 2, stride = 1 }, { units = 4 }]",
        "[optimizer]\nlr = 0.05\nmomentum = 0.9\n[model]\nlayers = [{ type = \"conv2d\", channels = 4, kernel = 3, padding = 1 }, { type = \"maxpool\", kernel = 2 }, { type = \"avgpool\", kernel = 2, stride = 1 }, { units = 4 }]\n[exchange]\nbucket_mb = 0.0001",
        // The ResNet layers: BatchNorm (group and global statistics), residual blocks, dropout,
        // global average pooling; with GSNR groups and with L-BFGS's evaluations too.
        "[optimizer]\nlr = 0.05\nmomentum = 0.9\n[model]\n" + resnet("group"),
        "[optimizer]\nlr = 0.05\nmomentum = 0.9\n[model]\n" + resnet("global"),
        "[optimizer]\nlr = 0.05\nmomentum = 0.9\n[model]\n" + resnet("group") + "\n[gsnr]\nenabled = true\ngroups_per_rank = 2",
        "[optimizer]\nname = \"lbfgs\"\ninner = 2\n[model]\n" + resnet("group") + "\n[batch]\nglobal = 120",
        "[optimizer]\nlr = 0.05\nmomentum = 0.9\n[model]\n" + resnet("group") + "\n[augment]\ncrop_padding = 1\nflip = true\n[loss]\nlabel_smoothing = 0.1",
        "[optimizer]\nlr = 0.05\nmomentum = 0.9\n[model]\nlayers = [{ type = \"conv2d\", channels = 4, kernel = 3, padding = 1 }, { type = \"maxpool\", kernel = 2 }, { type = \"avgpool\", kernel = 2, stride = 1 }, { units = 4 }]\n[augment]\ncrop_padding = 2\nflip = true\n[loss]\nlabel_smoothing = 0.1",
        "[optimizer]\nname = \"lbfgs\"\ninner = 3\n[batch]\nglobal = 120\n[augment]\ncrop_padding = 1\nflip = true\n[loss]\nlabel_smoothing = 0.2",
        "[optimizer]\nlr = 0.5\nmomentum = 0.9\n[batch]\nglobal = \"full\"\nmicro = 100\n[loss]\nlabel_smoothing = 0.1",
    ]

    static func resnet(_ stats: String) -> String {
        let group = stats == "group" ? ", group = 4" : ""
        return "layers = [{ type = \"conv2d\", channels = 3, kernel = 3, padding = 1, bias = false }, { type = \"batchnorm\", stats = \"\(stats)\"\(group), activation = \"relu\" }, { type = \"residual\", channels = 3, bn_stats = \"\(stats)\"\(stats == "group" ? ", bn_group = 4" : "") }, { type = \"residual\", channels = 4, stride = 2, bn_stats = \"\(stats)\"\(stats == "group" ? ", bn_group = 4" : "") }, { type = \"dropout\", rate = 0.1 }, { type = \"globalavgpool\" }, { units = 4 }]"
    }

    /// Builds what `lockstep train` builds for the job (without the run directory).
    static func trainer(_ sections: String) throws -> Trainer {
        var text = "[data]\nfile = \"\(dataPath)\"\nnormalization = \"none\"\n"
        if !sections.contains("[model]") { text += "[model]\nlayers = [{ units = 32 }, { units = 16 }, { units = 4 }]\n" }
        if !sections.contains("[batch]") { text += "[batch]\nglobal = 24\n" }
        var job = try Job.parse(text + sections, source: "allocation.toml")
        let file = try HDF5File.open(dataPath)
        let train = try Dataset(file: file, xPath: "/train/x", yPath: "/train/y", classes: 4, name: "train")
        job.resolve(trainSamples: train.count)
        try job.validate(worldSize: 1, trainSamples: train.count)
        let network = try Network(inputShape: train.sampleShape, layers: job.layers, extraGradientSlots: ExchangeLayout.slotsAfterGradient(lbfgs: job.optimizer.name == .lbfgs),
                                  communicator: Communicator.world)
        network.initialize(seed: 1)
        return Trainer(comm: Communicator.world, network: network, train: train,
                       configuration: try job.trainerConfiguration(for: network, trainSamples: train.count))
    }

    @Test(arguments: cases)
    func stepsAllocateNothingAfterWarmUp(_ sections: String) throws {
        let trainer = try Self.trainer(sections)
        // Warm-up: the first steps may size lazily created state (the first epoch's order).
        for _ in 0..<3 { _ = try trainer.step() }
        // 30 more steps of batch 24 on 600 samples cross the epoch boundary at step 25.
        allocation_counting(1)
        for _ in 0..<30 { _ = try trainer.step() }
        allocation_counting(0)
        #expect(allocation_count() == 0, "\(allocation_count()) allocations in 30 steps of:\n\(sections)")
        #expect(trainer.position.step == 33)
    }

    /// Conv layers in chunks of samples (K ≥ 32; the middle one's Y' is 64 × 480 with K = 36, past
    /// OpenBLAS's small-matrix sizes, so its forward GEMM takes β = 0), with one BLAS thread as
    /// on every rank of a multi-rank run: with more, OpenBLAS's threaded driver mallocs on each
    /// call it splits across them, whatever the layer.
    @Test func chunkedConvolutionStepsAllocateNothing() throws {
        let threads = Gemm.threads
        Gemm.setThreads(1)
        defer { Gemm.setThreads(threads) }
        try stepsAllocateNothingAfterWarmUp("[optimizer]\nlr = 0.05\nmomentum = 0.9\n[model]\nlayers = [{ type = \"conv2d\", channels = 4, kernel = 3, padding = 1 }, { type = \"conv2d\", channels = 64, kernel = 3, padding = 1, bias = false }, { type = \"conv2d\", channels = 4, kernel = 3, padding = 1 }, { units = 4 }]")
    }

    /// The loader's gather and augmentation on this thread (a batch asked for without a
    /// prefetch, as on the first step and after a resume; prefetches run the same code on the
    /// loader's thread, which the counter does not see): nothing allocated after the first.
    @Test func augmentedGathersAllocateNothing() throws {
        let file = try HDF5File.open(Self.dataPath)
        let train = try Dataset(file: file, xPath: "/train/x", yPath: "/train/y", classes: 4, name: "train")
        let loader = BatchLoader(data: train, seed: 9, capacity: 24, augmentation: Augmentation(cropPadding: 2, flip: true))
        defer { loader.shutdown() }
        _ = loader.batch(epoch: 0, window: 0..<24)
        allocation_counting(1)
        var sum: Float = 0
        for step in 1..<40 {
            // Windows that cross into epoch 1 (600 samples): the order is regenerated in place.
            let (epoch, start) = (step * 24) / 600 == 0 ? (0, step * 24) : (1, step * 24 - 600)
            let batch = loader.batch(epoch: epoch, window: start..<(start + 24)).batch
            sum += batch.x[0]
        }
        allocation_counting(0)
        #expect(allocation_count() == 0, "\(allocation_count()) allocations in 39 augmented gathers")
        #expect(sum.isFinite)
    }

    /// The counter itself works: an Array append, a String and a class instance are counted.
    @Test func theCounterCountsSwiftAllocations() {
        allocation_counting(1)
        var values: [Int] = []
        for i in 0..<100 { values.append(i) }
        let text = String(repeating: "x", count: 1000)
        allocation_counting(0)
        #expect(values.count == 100 && text.count == 1000)
        #expect(allocation_count() >= 2)
    }
}
