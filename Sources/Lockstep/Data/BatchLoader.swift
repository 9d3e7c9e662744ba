// Data loading off the critical path: while a step computes, a background thread gathers the
// rows of the next step (this rank's window of the epoch's permutation, normalised to Float)
// into the other of two buffers. The step then only waits when the gather has not finished,
// and that wait is what `metrics.jsonl` logs as `data_wait`.
//
// Handing a batch over costs two semaphore operations, no allocation and no copy. The loader
// thread owns the epoch permutation while a gather is in flight; the main thread touches it
// only after waiting for that gather (the semaphores order the accesses).
//
// The rows are gathered exactly as a synchronous gather would, so prefetching changes no number.
// With `[augment]` the loader then augments the gathered rows in place (Augmentation.swift):
// each sample's draws depend on (seed, epoch, dataset row) only, so a window gathered on any rank,
// prefetched or not, holds the same samples.

#if canImport(Glibc)
import Glibc
#endif

/// A gathered batch: rows of the dataset's width, and their labels.
public struct LoadedBatch {
    public let x: UnsafeMutablePointer<Float>
    public let y: UnsafeMutablePointer<Int32>
}

public final class BatchLoader: @unchecked Sendable {
    /// Which rows a batch holds: positions `window` of epoch `epoch`'s permutation.
    private struct Key: Equatable {
        var epoch: Int
        var window: Range<Int>
    }

    private let data: any DataSource
    private let seed: UInt64
    /// Augments each gathered batch in place (nil: the rows as gathered).
    private let augmenter: Augmenter?
    private let capacity: Int
    private let inputs: [FloatBuffer]
    private let labels: [UnsafeMutablePointer<Int32>]
    /// What each of the two slots holds (nil: nothing, or a gather into it is in flight). Plain
    /// memory rather than an array: the loader thread writes one element while the main thread
    /// reads the other.
    private let held: UnsafeMutablePointer<Key?>
    /// The slot the step reads; changed only by the main thread while no gather is in flight.
    private var front = 0
    /// The epoch whose permutation `order` holds (−1: none yet).
    private var orderEpoch = -1
    private var order: [Int32]

    /// The gather handed to the thread (in flight, or done and not yet waited for).
    private var pending: Key?
    private var job = (key: Key(epoch: 0, window: 0..<0), slot: 0)
    private let work: UnsafeMutablePointer<sem_t>
    private let done: UnsafeMutablePointer<sem_t>
    private var thread = pthread_t()
    private var stopping = false

    /// Batches of up to `capacity` rows of `data`, in the order of `EpochOrder.permutation(seed:)`,
    /// augmented by `augmentation` with draws from the same seed (`data` must then hold images
    /// that fit it: `Job.validate(sampleShape:)`).
    public init(data: any DataSource, seed: UInt64, capacity: Int, augmentation: Augmentation = .none) {
        self.data = data
        self.seed = seed
        augmenter = augmentation.isIdentity ? nil : Augmenter(augmentation, seed: seed, sampleShape: data.sampleShape)
        self.capacity = capacity
        inputs = (0..<2).map { _ in FloatBuffer(count: capacity * data.width) }
        labels = (0..<2).map { _ in .allocate(capacity: max(capacity, 1)) }
        held = .allocate(capacity: 2)
        held.initialize(repeating: nil, count: 2)
        order = [Int32](repeating: 0, count: data.count)
        work = .allocate(capacity: 1)
        done = .allocate(capacity: 1)
        sem_init(work, 0, 0)
        sem_init(done, 0, 0)
        // A plain pthread (no Foundation in the library). It holds the loader until `shutdown`.
        let context = Unmanaged.passRetained(self).toOpaque()
        let created = pthread_create(&thread, nil, { context in
            let loader = Unmanaged<BatchLoader>.fromOpaque(context!).takeRetainedValue()
            loader.serve()
            return nil
        }, context)
        precondition(created == 0, "BatchLoader: pthread_create failed (\(created))")
    }

    deinit {
        sem_destroy(work)
        sem_destroy(done)
        work.deallocate()
        done.deallocate()
        held.deallocate()
        labels.forEach { $0.deallocate() }
    }

    /// Ends the thread (after any gather in flight). The owner calls it once, when done.
    public func shutdown() {
        finishPending()
        stopping = true
        sem_post(work)
        pthread_join(thread, nil)
    }

    /// The rows at positions `window` of epoch `epoch`'s permutation, and the seconds spent
    /// waiting for them: 0 when they are already in hand, what was left of their prefetch, or
    /// the whole gather when none was asked for (the first step, after a resume).
    public func batch(epoch: Int, window: Range<Int>) -> (batch: LoadedBatch, waited: Double) {
        precondition(window.count <= capacity, "the loader is sized for the largest local batch")
        let key = Key(epoch: epoch, window: window)
        if held[front] == key { return (slot(front), 0) }
        let start = Clock.nanoseconds()
        finishPending()
        if held[1 - front] == key {
            front = 1 - front
        } else {
            gather(key, into: front)
        }
        return (slot(front), Double(Clock.nanoseconds() - start) * 1e-9)
    }

    /// Starts gathering the rows at `window` of epoch `epoch` into the slot the step is not
    /// reading, and returns at once. A window past the data or the capacity is ignored (the run
    /// is ending, or the next epoch's batch is not this run's).
    public func prefetch(epoch: Int, window: Range<Int>) {
        guard window.count <= capacity, window.upperBound <= data.count else { return }
        let key = Key(epoch: epoch, window: window)
        if pending == key { return }
        finishPending()
        if held[front] == key || held[1 - front] == key { return }
        held[1 - front] = nil
        pending = key
        job = (key, 1 - front)
        sem_post(work)
    }

    private func finishPending() {
        guard pending != nil else { return }
        Self.wait(done)
        pending = nil
    }

    /// sem_wait, again when a signal handler interrupted it: returning early would hand over a
    /// buffer still being written. (SIGUSR1/SIGTERM use SA_RESTART today; this does not rely on it.)
    private static func wait(_ semaphore: UnsafeMutablePointer<sem_t>) {
        while sem_wait(semaphore) != 0 && errno == EINTR {}
    }

    private func slot(_ i: Int) -> LoadedBatch { LoadedBatch(x: inputs[i].pointer, y: labels[i]) }

    private func serve() {
        while true {
            Self.wait(work)
            if stopping { return }
            gather(job.key, into: job.slot)
            sem_post(done)
        }
    }

    private func gather(_ key: Key, into slot: Int) {
        if orderEpoch != key.epoch {
            EpochOrder.permutation(seed: seed, epoch: key.epoch, into: &order)
            orderEpoch = key.epoch
        }
        order.withUnsafeBufferPointer { all in
            let rows = UnsafeBufferPointer(rebasing: all[key.window])
            data.gather(rows, x: inputs[slot].pointer, y: labels[slot])
            augmenter?.apply(inputs[slot].pointer, rows: rows, epoch: key.epoch)
        }
        held[slot] = key
    }
}
