// `run.tensorboard = true`: rank 0 writes every scalar metrics.jsonl gets into a TensorBoard event
// file, `<run.out>/tensorboard/events.out.tfevents.<seconds>.<host>`, in TensorFlow's record
// format (u64 length, masked CRC-32C of it, a serialized `Event` protobuf, masked CRC-32C of that).
// The few protobuf fields needed are encoded here by hand (tensorflow/core/util/event.proto):
//   Event      { double wall_time = 1; int64 step = 2; string file_version = 3;
//                Summary summary = 5; SessionLog session_log = 7; }
//   Summary    { repeated Value value = 1; }   Value { string tag = 1; float simple_value = 2; }
//   SessionLog { SessionStatus status = 1; }   (START = 1)
// A resumed run starts a new file with a SessionLog START at the first step it redoes, which tells
// TensorBoard to drop the steps from there on that the first run logged past its checkpoint.

#if canImport(Glibc)
import Glibc
#endif

public final class TensorBoardEvents {
    private let file: UnsafeMutablePointer<FILE>
    public let path: String
    /// The first write failure (a full disk): the run goes on, and the caller reports it.
    public private(set) var failure: String?

    /// Creates a new event file in `folder` (made if missing); `resumedAt` writes the START marker.
    public init(folder: String, resumedAt step: Int?) throws {
        try makeDirectories(folder)
        var host = [CChar](repeating: 0, count: 256)
        gethostname(&host, host.count - 1)
        let hostName = String(decoding: host.prefix { $0 != 0 }.map { UInt8(bitPattern: $0) }, as: UTF8.self)
        var name = "\(folder)/events.out.tfevents.\(time(nil)).\(hostName)"
        // Two starts within a second (a quick resume) must not append to the same file.
        var n = 1
        while access(name, F_OK) == 0 { name = "\(folder)/events.out.tfevents.\(time(nil)).\(hostName).\(n)"; n += 1 }
        guard let f = fopen(name, "w") else {
            throw LockstepError.usage("cannot create \(name) for run.tensorboard: \(String(cString: strerror(errno))); choose a writable run.out or set run.tensorboard = false")
        }
        file = f
        path = name
        var version = Protobuf()
        version.double(1, Self.now())
        version.string(3, "brain.Event:2")
        write(version.bytes)
        if let step {
            var start = Protobuf(), log = Protobuf()
            log.varint(1, 1)
            start.double(1, Self.now())
            // TensorBoard drops what it read at or past a START's step: the first step redone.
            start.varint(2, UInt64(step + 1))
            start.message(7, log)
            write(start.bytes)
        }
    }

    deinit { fclose(file) }

    /// One event at `step` holding `scalars` (tag, value); non-finite values are written as they
    /// are (TensorBoard shows NaN and Inf).
    public func add(step: Int, _ scalars: [(tag: String, value: Double)]) {
        guard !scalars.isEmpty else { return }
        var summary = Protobuf()
        for (tag, value) in scalars {
            var v = Protobuf()
            v.string(1, tag)
            v.float(2, Float(value))
            summary.message(1, v)
        }
        var event = Protobuf()
        event.double(1, Self.now())
        event.varint(2, UInt64(bitPattern: Int64(step)))
        event.message(5, summary)
        write(event.bytes)
    }

    private func write(_ data: [UInt8]) {
        guard failure == nil else { return }
        var length = UInt64(data.count).littleEndian
        let lengthBytes = withUnsafeBytes(of: &length) { Array($0) }
        var record = lengthBytes
        Self.append(CRC32C.masked(lengthBytes), to: &record)
        record += data
        Self.append(CRC32C.masked(data), to: &record)
        let ok = record.withUnsafeBytes { fwrite($0.baseAddress, 1, $0.count, file) == $0.count } && fflush(file) == 0
        if !ok { failure = String(cString: strerror(errno)) }
    }

    private static func append(_ value: UInt32, to bytes: inout [UInt8]) {
        withUnsafeBytes(of: value.littleEndian) { bytes += $0 }
    }

    private static func now() -> Double {
        var t = timespec()
        clock_gettime(CLOCK_REALTIME, &t)
        return Double(t.tv_sec) + Double(t.tv_nsec) * 1e-9
    }
}

/// Protobuf wire format, the four field kinds an Event needs.
struct Protobuf {
    private(set) var bytes: [UInt8] = []

    private mutating func raw(_ v: UInt64) {
        var v = v
        while v >= 0x80 { bytes.append(UInt8(v & 0x7F) | 0x80); v >>= 7 }
        bytes.append(UInt8(v))
    }
    private mutating func key(_ field: Int, _ wireType: UInt64) { raw(UInt64(field) << 3 | wireType) }

    mutating func varint(_ field: Int, _ v: UInt64) { key(field, 0); raw(v) }
    mutating func double(_ field: Int, _ v: Double) { key(field, 1); withUnsafeBytes(of: v.bitPattern.littleEndian) { bytes += $0 } }
    mutating func float(_ field: Int, _ v: Float) { key(field, 5); withUnsafeBytes(of: v.bitPattern.littleEndian) { bytes += $0 } }
    mutating func string(_ field: Int, _ s: String) { let utf8 = Array(s.utf8); key(field, 2); raw(UInt64(utf8.count)); bytes += utf8 }
    mutating func message(_ field: Int, _ m: Protobuf) { key(field, 2); raw(UInt64(m.bytes.count)); bytes += m.bytes }
}
