// JSON text for the few places that write JSON by hand (eval's --json, the safetensors header):
// a string literal with every character JSON requires escaped.

/// `text` as a JSON string literal, quotes included.
public func jsonString(_ text: String) -> String {
    var out = "\""
    for scalar in text.unicodeScalars {
        switch scalar {
        case "\"": out += "\\\""
        case "\\": out += "\\\\"
        case "\n": out += "\\n"
        case "\r": out += "\\r"
        case "\t": out += "\\t"
        case _ where scalar.value < 0x20:
            let hex = String(scalar.value, radix: 16)
            out += "\\u" + String(repeating: "0", count: 4 - hex.count) + hex
        default: out.unicodeScalars.append(scalar)
        }
    }
    return out + "\""
}

/// A Float64 as JSON: its shortest round-trip decimal (as metrics.jsonl writes it), or null.
public func jsonNumber(_ value: Double) -> String { value.isFinite ? "\(value)" : "null" }
