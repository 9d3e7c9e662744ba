// The optimizer protocol: one update of the flat parameter buffer from the averaged gradient,
// plus named state buffers that checkpoints save and restore.

public protocol Optimizer: AnyObject {
    /// Applies one update with learning rate `lr`. `gradients` holds the gradient averaged over
    /// the global batch (after the exchange); weight decay is the optimizer's to add.
    func step(parameters: UnsafeMutablePointer<Float>, gradients: UnsafeMutablePointer<Float>, lr: Float)
    /// State to checkpoint, by name ("momentum", ...); each buffer is laid out like the parameters.
    var stateBuffers: [(name: String, buffer: FloatBuffer)] { get }
    /// Updates applied so far (Adam's t); checkpointed, and restored on resume.
    var updates: Int { get set }
}

/// Layer-wise optimizers (LARS, LAMB) report the trust ratio each parameter tensor got at the
/// last step, for metrics.jsonl.
public protocol TrustRatioReporting {
    var trustRatioNames: [String] { get }
    var trustRatios: [Double] { get }
}
