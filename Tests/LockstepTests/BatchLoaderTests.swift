// BatchLoader: what the background thread gathers is exactly what a synchronous gather of the
// same positions of the epoch's permutation gives, whether the batch was prefetched, asked for
// without a prefetch (first step, resume), prefetched for another position, or crosses epochs.
import Testing
import Lockstep

extension FileTests {
    @Suite struct BatchLoaderTests {
        /// 40 samples of [2, 3] bytes with labels 0..<4, and the rows a direct gather gives.
        static func dataset(_ dir: TemporaryDirectory) throws -> Dataset {
            let bytes: [UInt8] = (0..<240).map { UInt8(($0 * 53 + 7) % 256) }
            let labels: [UInt8] = (0..<40).map { UInt8($0 % 4) }
            let file = try DatasetTests.file(dir) { f in
                try f.write("/x", bytes, shape: [40, 2, 3])
                try f.write("/y", labels, shape: [40])
            }
            return try Dataset(file: file, xPath: "/x", yPath: "/y", classes: 4, name: "t")
        }

        static func direct(_ data: Dataset, seed: UInt64, epoch: Int, window: Range<Int>) -> ([Float], [Int32]) {
            var order = [Int32](repeating: 0, count: data.count)
            EpochOrder.permutation(seed: seed, epoch: epoch, into: &order)
            var x = [Float](repeating: .nan, count: window.count * data.width)
            var y = [Int32](repeating: -1, count: window.count)
            order.withUnsafeBufferPointer { data.gather(UnsafeBufferPointer(rebasing: $0[window]), x: &x, y: &y) }
            return (x, y)
        }

        @Test func prefetchedBatchesEqualDirectGathers() throws {
            let dir = try TemporaryDirectory()
            let data = try Self.dataset(dir)
            let loader = BatchLoader(data: data, seed: 5, capacity: 8)
            defer { loader.shutdown() }
            // (epoch, window, prefetch the next one?): a plain walk through two epochs, a batch
            // asked for twice (L-BFGS), a prefetch that is not used (a resume elsewhere), a
            // prefetch past the data (ignored), and a batch smaller than the capacity.
            let walk: [(Int, Range<Int>, (Int, Range<Int>)?)] = [
                (0, 0..<8, (0, 8..<16)), (0, 8..<16, (0, 16..<24)), (0, 8..<16, (0, 16..<24)),
                (0, 16..<24, (1, 0..<8)), (1, 0..<8, (1, 8..<16)), (1, 24..<32, (1, 36..<44)),
                (2, 4..<8, nil), (2, 4..<8, (0, 0..<8)), (0, 0..<8, nil),
            ]
            var previous: (Int, Range<Int>)?
            for (epoch, window, next) in walk {
                let (batch, waited) = loader.batch(epoch: epoch, window: window)
                // No wait at all for the batch already in hand (asked for twice in a row); any other
                // hands over through the semaphore or gathers, which the clock sees.
                let repeated = previous.map { $0 == (epoch, window) } ?? false
                #expect(repeated ? waited == 0 : waited > 0, "epoch \(epoch) \(window): waited \(waited)")
                previous = (epoch, window)
                let (x, y) = Self.direct(data, seed: 5, epoch: epoch, window: window)
                #expect(Array(UnsafeBufferPointer(start: batch.x, count: x.count)) == x, "epoch \(epoch) \(window)")
                #expect(Array(UnsafeBufferPointer(start: batch.y, count: y.count)) == y, "epoch \(epoch) \(window)")
                if let (e, w) = next { loader.prefetch(epoch: e, window: w) }
            }
        }
    }
}
