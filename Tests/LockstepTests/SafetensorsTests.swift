// The safetensors encoder's layout (the package itself reads real exports in
// Tests/MultiRankTests/ExportTests.swift): length prefix, sorted keys, padding, offsets.

import Lockstep
import Testing

@Suite struct SafetensorsTests {
    @Test func headerIsSortedPaddedAndOffsetsAreContiguous() throws {
        let a: [Float] = [1, -2, 0.5]
        let tensors = [
            a.withUnsafeBufferPointer { SafetensorsTensor(name: "z.weight", shape: [3], floats: $0) },
            SafetensorsTensor(name: "bn0.num_batches_tracked", shape: [], int64s: [7]),
        ]
        let bytes = Safetensors.encode(tensors, metadata: ["config": "a = \"b\"\n"])
        let n = bytes.prefix(8).enumerated().reduce(0) { $0 | Int($1.element) << (8 * $1.offset) }
        #expect(n % 8 == 0 && bytes.count == 8 + n + 8 + 12)
        let header = String(decoding: bytes[8..<(8 + n)], as: UTF8.self)
        #expect(header.hasPrefix(#"{"__metadata__":{"config":"a = \"b\"\n"},"bn0.num_batches_tracked":{"dtype":"I64","shape":[],"data_offsets":[0,8]},"z.weight":{"dtype":"F32","shape":[3],"data_offsets":[8,20]}}"#))
        let padding = header.reversed().prefix { $0 == " " }.count
        #expect(padding < 8 && header.dropLast(padding).hasSuffix("[8,20]}}"))
        #expect(Array(bytes[(8 + n)..<(8 + n + 8)]) == [7, 0, 0, 0, 0, 0, 0, 0])
        let floats = (0..<3).map { i in
            Float(bitPattern: (0..<4).reduce(UInt32(0)) { $0 | UInt32(bytes[8 + n + 8 + 4 * i + $1]) << (8 * $1) })
        }
        #expect(floats == a)
    }
}
