// Augmentation ([augment]): the crop-and-flip equals padding with zeros, slicing and mirroring
// computed here on integers; the draws are the documented stream of (seed, epoch, dataset row),
// so a row gathered in any window, at any position, by any loader is the same augmented sample;
// epochs draw anew; and the split itself (what evaluation and full batches read) is untouched.
import Testing
import Lockstep

@Suite struct AugmentationTests {
    /// SplitMix64's step and finaliser, written out again here (the keying is part of the
    /// resume contract: changing it changes every augmented run).
    static func splitmix(_ x: UInt64) -> UInt64 {
        var z = x &+ 0x9E37_79B9_7F4A_7C15
        z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
        z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
        return z ^ (z >> 31)
    }

    /// The documented draws: stream splitmix(splitmix(tag ^ epoch) ^ row) of the job seed; dy, dx
    /// uniform in 0...2p (when p > 0), then the flip from the next number's top bit (when on).
    static func referenceDraw(_ a: Augmentation, seed: UInt64, epoch: Int, row: Int) -> (dy: Int, dx: Int, flip: Bool) {
        let stream = splitmix(splitmix(0x4155_474D_454E_5400 ^ UInt64(epoch)) ^ UInt64(row))
        var rng = Xoshiro256(seed: seed, stream: stream)
        let p = a.cropPadding
        let dy = p > 0 ? rng.next(below: 2 * p + 1) : 0
        let dx = p > 0 ? rng.next(below: 2 * p + 1) : 0
        let flip = a.flip ? rng.next() >> 63 == 1 : false
        return (dy, dx, flip)
    }

    /// Pads `image` ([C][H][W] of integers) with p zeros on every side, takes the H×W window at
    /// (dy, dx) and mirrors it left–right when `flip`.
    static func reference(_ image: [Int], channels: Int, height: Int, width: Int, p: Int, dy: Int, dx: Int, flip: Bool) -> [Int] {
        let ph = height + 2 * p, pw = width + 2 * p
        var padded = [Int](repeating: 0, count: channels * ph * pw)
        for c in 0..<channels { for r in 0..<height { for s in 0..<width {
            padded[(c * ph + r + p) * pw + s + p] = image[(c * height + r) * width + s]
        } } }
        var window = [Int](repeating: 0, count: channels * height * width)
        for c in 0..<channels { for i in 0..<height { for j in 0..<width {
            window[(c * height + i) * width + j] = padded[(c * ph + i + dy) * pw + j + dx]
        } } }
        guard flip else { return window }
        var mirrored = window
        for c in 0..<channels { for i in 0..<height { for j in 0..<width {
            mirrored[(c * height + i) * width + j] = window[(c * height + i) * width + (width - 1 - j)]
        } } }
        return mirrored
    }

    @Test func drawsAreTheDocumentedStreamOfSeedEpochAndRow() {
        for a in [Augmentation(cropPadding: 2, flip: true), Augmentation(cropPadding: 1), Augmentation(flip: true)] {
            var seen = Set<[Int]>()
            for epoch in 0..<5 {
                for row in [0, 1, 2, 17, 39, 59_999, 1 << 40] {
                    let d = a.draw(seed: 3, epoch: epoch, row: row)
                    let r = Self.referenceDraw(a, seed: 3, epoch: epoch, row: row)
                    // Without padding the code's window corner is (p, p) = (0, 0): the image itself.
                    #expect(d.dy == r.dy && d.dx == r.dx && d.flip == r.flip, "\(a) epoch \(epoch) row \(row)")
                    #expect((0...(2 * a.cropPadding)).contains(d.dy) && (0...(2 * a.cropPadding)).contains(d.dx))
                    seen.insert([d.dy, d.dx, d.flip ? 1 : 0])
                }
            }
            // 35 draws reach every corner value and both flips (p ≤ 2: at most 5 values each).
            #expect(Set(seen.map { $0[0] }).count == 2 * a.cropPadding + 1, "\(a): \(seen)")
            #expect(Set(seen.map { $0[2] }).count == (a.flip ? 2 : 1), "\(a): \(seen)")
        }
        // Another seed draws otherwise.
        let a = Augmentation(cropPadding: 2, flip: true)
        let differ = (0..<40).filter { a.draw(seed: 3, epoch: 0, row: $0) != a.draw(seed: 4, epoch: 0, row: $0) }.count
        #expect(differ >= 30, "\(differ) of 40 rows")
    }

    /// Every (shape, padding, flip): 2-D and 3-D samples, paddings up to side − 1.
    @Test(arguments: [([5, 6], 1, true), ([5, 6], 4, true), ([2, 5, 6], 1, false), ([2, 5, 6], 2, true),
                      ([3, 4, 4], 3, true), ([1, 7, 3], 2, false), ([4, 4], 0, true)])
    func cropAndFlipEqualPadSliceMirror(_ shape: [Int], _ p: Int, _ flip: Bool) {
        let (c, h, w) = shape.count == 2 ? (1, shape[0], shape[1]) : (shape[0], shape[1], shape[2])
        let width = c * h * w
        let a = Augmentation(cropPadding: p, flip: flip)
        let augmenter = Augmenter(a, seed: 11, sampleShape: shape)
        // 600 samples of nonzero integers (exact in Float), rows in no particular order.
        let rows: [Int32] = (0..<600).map { (i: Int) -> Int32 in Int32((i * 7919 + 13) % 100_003) }
        let images = (0..<(rows.count * width)).map { (i: Int) -> Int in (i * 37 + 11) % 251 + 1 }
        var x = images.map(Float.init)
        for epoch in [0, 3] {
            x = images.map(Float.init)
            rows.withUnsafeBufferPointer { augmenter.apply(&x, rows: $0, epoch: epoch) }
            var corners = Set<[Int]>()
            for (i, row) in rows.enumerated() {
                let d = Self.referenceDraw(a, seed: 11, epoch: epoch, row: Int(row))
                corners.insert([d.dy, d.dx, d.flip ? 1 : 0])
                let want = Self.reference(Array(images[(i * width)..<((i + 1) * width)]), channels: c, height: h, width: w,
                                          p: p, dy: d.dy, dx: d.dx, flip: d.flip)
                #expect(x[(i * width)..<((i + 1) * width)].map { Int($0) } == want, "\(shape) p \(p) row \(row) draw \(d)")
            }
            // The samples covered every window (and mirror) where there are few: each case of the
            // transform ran, the identity (skipped) included.
            let windows = (2 * p + 1) * (2 * p + 1) * (flip ? 2 : 1)
            #expect(corners.count == windows || windows > 50, "\(corners.count) of \(windows) windows")
        }
    }

    @Test func theIdentityHasNoKey() {
        #expect(Augmentation.none.isIdentity && Augmentation.none.firstSetKey == nil)
        #expect(Augmentation(cropPadding: 2, flip: true).firstSetKey == "augment.crop_padding = 2")
        #expect(Augmentation(flip: true).firstSetKey == "augment.flip = true")
        #expect(Augmentation.image([784]) == nil && Augmentation.image([2, 3, 4, 5]) == nil)
        #expect(Augmentation.image([28, 28]).map { [$0.channels, $0.height, $0.width] } == [1, 28, 28])
        #expect(Augmentation.image([3, 32, 30]).map { [$0.channels, $0.height, $0.width] } == [3, 32, 30])
    }
}

extension FileTests {
    /// The loader's augmentation: keyed by the dataset row, never by the window or the loader.
    @Suite struct AugmentedLoaderTests {
        static let augmentation = Augmentation(cropPadding: 2, flip: true)

        static let bytes: [UInt8] = (0..<(40 * 60)).map { (i: Int) -> UInt8 in UInt8((i * 53 + 7) % 255 + 1) }

        /// 40 uint8 samples of [2, 5, 6] (nonzero, so padding shows), raw values (normalization "none").
        static func dataset(_ dir: TemporaryDirectory) throws -> Dataset {
            let bytes = Self.bytes
            let file = try DatasetTests.file(dir) { f in
                try f.write("/x", bytes, shape: [40, 2, 5, 6])
                try f.write("/y", (0..<40).map { UInt8($0 % 4) }, shape: [40])
            }
            let data = try Dataset(file: file, xPath: "/x", yPath: "/y", classes: 4, name: "t")
            data.normalize(.none, stats: nil)
            return data
        }

        /// Dataset row `row` augmented by itself: a one-row gather, then the augmenter.
        static func single(_ data: Dataset, row: Int32, epoch: Int, seed: UInt64) -> [Float] {
            var x = [Float](repeating: .nan, count: data.width)
            var y: [Int32] = [0]
            [row].withUnsafeBufferPointer { rows in
                data.gather(rows, x: &x, y: &y)
                Augmenter(augmentation, seed: seed, sampleShape: data.sampleShape).apply(&x, rows: rows, epoch: epoch)
            }
            return x
        }

        static func rows(of batch: LoadedBatch, _ n: Int, width: Int) -> [[Float]] {
            (0..<n).map { Array(UnsafeBufferPointer(start: batch.x + $0 * width, count: width)) }
        }

        @Test func aRowIsTheSameSampleInAnyWindowAndLoader() throws {
            let dir = try TemporaryDirectory()
            let data = try Self.dataset(dir)
            var order = [Int32](repeating: 0, count: data.count)
            // One loader for a global batch of 12 (1 rank), three for its thirds (3 ranks), and one
            // whose windows start elsewhere (another batch size): asked for directly or prefetched.
            let whole = BatchLoader(data: data, seed: 5, capacity: 12, augmentation: Self.augmentation)
            let thirds = (0..<3).map { _ in BatchLoader(data: data, seed: 5, capacity: 4, augmentation: Self.augmentation) }
            let shifted = BatchLoader(data: data, seed: 5, capacity: 8, augmentation: Self.augmentation)
            defer { ([whole, shifted] + thirds).forEach { $0.shutdown() } }
            for epoch in [0, 1] {
                EpochOrder.permutation(seed: 5, epoch: epoch, into: &order)
                for start in [0, 12, 24] {
                    let one = Self.rows(of: whole.batch(epoch: epoch, window: start..<(start + 12)).batch, 12, width: data.width)
                    whole.prefetch(epoch: epoch, window: (start + 12)..<(start + 24))
                    for (rank, loader) in thirds.enumerated() {
                        let window = EpochOrder.localWindow(step: start / 12, globalBatch: 12, rank: rank, ranks: 3)
                        let part = Self.rows(of: loader.batch(epoch: epoch, window: window).batch, 4, width: data.width)
                        #expect(part == Array(one[(rank * 4)..<(rank * 4 + 4)]), "epoch \(epoch) step \(start / 12) rank \(rank) of 3")
                    }
                    for (i, position) in (start..<(start + 12)).enumerated() {
                        #expect(one[i] == Self.single(data, row: order[position], epoch: epoch, seed: 5), "epoch \(epoch) position \(position)")
                    }
                }
                // Positions 3..<11 in a window of 8: the same rows at other places in their batch.
                shifted.prefetch(epoch: epoch, window: 3..<11)
                let moved = Self.rows(of: shifted.batch(epoch: epoch, window: 3..<11).batch, 8, width: data.width)
                for (i, position) in (3..<11).enumerated() {
                    #expect(moved[i] == Self.single(data, row: order[position], epoch: epoch, seed: 5))
                }
            }
        }

        @Test func epochsDrawAnewAndTheSplitStaysAsItIs() throws {
            let dir = try TemporaryDirectory()
            let data = try Self.dataset(dir)
            let a = Self.augmentation
            // The same row in epochs 0 and 1: other draws for almost every row (25 windows × 2 flips).
            let differ = (0..<40).filter { a.draw(seed: 5, epoch: 0, row: $0) != a.draw(seed: 5, epoch: 1, row: $0) }.count
            #expect(differ >= 30, "\(differ) of 40 rows")
            let augmentedDiffer = (0..<40).filter {
                Self.single(data, row: Int32($0), epoch: 0, seed: 5) != Self.single(data, row: Int32($0), epoch: 1, seed: 5)
            }.count
            #expect(augmentedDiffer >= 30)

            var raw = [Float](repeating: .nan, count: 40 * data.width), y = [Int32](repeating: 0, count: 40)
            data.gather(0..<40, x: &raw, y: &y)
            let loader = BatchLoader(data: data, seed: 5, capacity: 40, augmentation: a)
            defer { loader.shutdown() }
            let batch = loader.batch(epoch: 0, window: 0..<40).batch
            // The loader's rows are augmented (the plain gather of the same positions differs)...
            let plain = BatchLoaderTests.direct(data, seed: 5, epoch: 0, window: 0..<40).0
            #expect(Array(UnsafeBufferPointer(start: batch.x, count: plain.count)) != plain)
            // ... but what evaluation and full-batch passes read (DataSource.gather) is the split as stored.
            var again = [Float](repeating: .nan, count: raw.count)
            data.gather(0..<40, x: &again, y: &y)
            #expect(again == raw)
            #expect(raw == Self.bytes.map(Float.init))
        }
    }
}
