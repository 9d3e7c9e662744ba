// Training-data augmentation (`[augment]`, docs/jobs.md): a random crop with zero padding and a
// random horizontal flip of each image sample, applied by the batch loader in place, right after
// it gathers a step's rows. Each sample's draws come from (job seed, epoch, the sample's dataset
// row) only, never from the rank or the sample's place in a rank's share, so any rank count sees
// the same augmented samples (docs/design.md, "Models whose math sees the batch").
//
// Padding is with 0 in the normalised buffer: with `data.normalization = "scale"` or "none" that
// is a black pixel, with "standardize" the training set's mean (as torchvision's RandomCrop on a
// normalised tensor pads). Evaluation and full-batch passes never see any of this.

/// What `[augment]` asks for; the identity when every key has its default.
public struct Augmentation: Equatable, Sendable {
    /// `augment.crop_padding`: p zeros around the image, then a random H×W window of it.
    public var cropPadding: Int
    /// `augment.flip`: mirror left–right with probability 1/2.
    public var flip: Bool

    public init(cropPadding: Int = 0, flip: Bool = false) {
        self.cropPadding = cropPadding
        self.flip = flip
    }

    public static let none = Augmentation()

    public var isIdentity: Bool { cropPadding == 0 && !flip }

    /// The first key set away from its default (for messages), nil for the identity.
    public var firstSetKey: String? {
        cropPadding != 0 ? "augment.crop_padding = \(cropPadding)" : flip ? "augment.flip = true" : nil
    }

    /// (channels, height, width) of an image sample shape, [H, W] or [C, H, W]; nil otherwise.
    public static func image(_ sampleShape: [Int]) -> (channels: Int, height: Int, width: Int)? {
        switch sampleShape.count {
        case 2: return (1, sampleShape[0], sampleShape[1])
        case 3: return (sampleShape[0], sampleShape[1], sampleShape[2])
        default: return nil
        }
    }

    /// One sample's draws: the crop window's top-left corner in the padded image (dy, dx, each
    /// in 0...2p) and whether the window is mirrored.
    public struct Draw: Equatable, Sendable {
        public var dy: Int
        public var dx: Int
        public var flip: Bool
    }

    /// The stream of sample `row` in epoch `epoch`: SplitMix64's finaliser of a tag xor the
    /// epoch, then again xor the row; `Xoshiro256(seed:stream:)` mixes in the job seed. The tag
    /// keeps these streams apart from the data order's and the layers' (small stream numbers).
    @inline(__always)
    public static func stream(epoch: Int, row: Int) -> UInt64 {
        @inline(__always) func mix(_ x: UInt64) -> UInt64 {
            var z = x &+ 0x9E37_79B9_7F4A_7C15
            z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
            z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
            return z ^ (z >> 31)
        }
        return mix(mix(0x4155_474D_454E_5400 ^ UInt64(truncatingIfNeeded: epoch)) ^ UInt64(truncatingIfNeeded: row))
    }

    /// The draws for dataset row `row` in epoch `epoch` of a job with seed `seed`: dy, then dx
    /// (each uniform in 0...2p, drawn only when p > 0), then the flip (the top bit of the next
    /// number, drawn only when `flip` is on). Without padding the window is the image (dy = dx = 0).
    @inline(__always)
    public func draw(seed: UInt64, epoch: Int, row: Int) -> Draw {
        var rng = Xoshiro256(seed: seed, stream: Self.stream(epoch: epoch, row: row))
        var d = Draw(dy: cropPadding, dx: cropPadding, flip: false)
        if cropPadding > 0 {
            d.dy = rng.next(below: 2 * cropPadding + 1)
            d.dx = rng.next(below: 2 * cropPadding + 1)
        }
        if flip { d.flip = rng.next() >> 63 == 1 }
        return d
    }
}

/// Applies an `Augmentation` to gathered samples in place. One per batch loader, used by one
/// thread at a time; its only memory is one sample of scratch, allocated here.
public final class Augmenter {
    public let settings: Augmentation
    private let seed: UInt64
    private let channels, height, width: Int
    private let scratch: UnsafeMutablePointer<Float>

    /// For samples of `sampleShape`, which must be an image whose sides exceed the padding
    /// (`Job.validate(sampleShape:)` says so to the user).
    public init(_ settings: Augmentation, seed: UInt64, sampleShape: [Int]) {
        guard let image = Augmentation.image(sampleShape), image.height > settings.cropPadding, image.width > settings.cropPadding else {
            preconditionFailure("Augmenter: \(settings) on samples \(sampleShape) (validated by Job.validate(sampleShape:))")
        }
        self.settings = settings
        self.seed = seed
        (channels, height, width) = image
        scratch = .allocate(capacity: image.channels * image.height * image.width)
    }

    deinit { scratch.deallocate() }

    /// Augments `rows.count` samples at `x` (normalised, one after the other), sample i being
    /// dataset row `rows[i]` of epoch `epoch`.
    public func apply(_ x: UnsafeMutablePointer<Float>, rows: UnsafeBufferPointer<Int32>, epoch: Int) {
        let sampleWidth = channels * height * width
        for (i, row) in rows.enumerated() {
            let d = settings.draw(seed: seed, epoch: epoch, row: Int(row))
            let p = settings.cropPadding
            if d.dy == p && d.dx == p && !d.flip { continue }   // the window is the image itself
            transform(x + i * sampleWidth, d)
        }
    }

    /// out[c][i][j] = padded[c][i + dy][j' + dx] with j' = W − 1 − j when flipped (crop, then
    /// mirror the window), where padded[c][r][s] = x[c][r − p][s − p] inside the image, 0 outside.
    private func transform(_ sample: UnsafeMutablePointer<Float>, _ d: Augmentation.Draw) {
        let (h, w, p) = (height, width, settings.cropPadding)
        scratch.update(from: sample, count: channels * h * w)
        let oy = d.dy - p, ox = d.dx - p   // source offset: out (i, j) reads image (i + oy, j + ox)
        // Output columns whose source column is inside the image: j + ox in 0..<w, or
        // w − 1 − j + ox in 0..<w when mirrored.
        let (lo, hi) = d.flip ? (max(0, ox), min(w, w + ox)) : (max(0, -ox), min(w, w - ox))
        for c in 0..<channels {
            for i in 0..<h {
                let out = sample + (c * h + i) * w
                let sourceRow = i + oy
                guard sourceRow >= 0 && sourceRow < h, lo < hi else {
                    out.update(repeating: 0, count: w)
                    continue
                }
                let src = UnsafePointer(scratch + (c * h + sourceRow) * w)
                for j in 0..<lo { out[j] = 0 }
                if d.flip {
                    for j in lo..<hi { out[j] = src[w - 1 - j + ox] }
                } else {
                    for j in lo..<hi { out[j] = src[j + ox] }
                }
                for j in hi..<w { out[j] = 0 }
            }
        }
    }
}
