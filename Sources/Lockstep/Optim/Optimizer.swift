// The optimizer protocols. `OptimizerState` is what checkpoints save and restore of any
// optimizer; `Optimizer` adds the first-order update of the flat parameter buffer from the
// averaged gradient. L-BFGS (`LBFGS`) has state but no such update: it drives its own
// gradient evaluations through the trainer.

public protocol OptimizerState: AnyObject {
    /// State to checkpoint, by name ("momentum", ...); each buffer is laid out like the parameters.
    var stateBuffers: [(name: String, buffer: FloatBuffer)] { get }
    /// Updates applied so far (Adam's t); checkpointed, and restored on resume.
    var updates: Int { get set }
    /// Called after `stateBuffers` were overwritten from a checkpoint, to rebuild derived state.
    func stateRestored()
}

extension OptimizerState {
    public func stateRestored() {}
}

public protocol Optimizer: OptimizerState {
    /// Applies one update with learning rate `lr`. `gradients` holds the gradient averaged over
    /// the global batch (after the exchange); weight decay is the optimizer's to add.
    func step(parameters: UnsafeMutablePointer<Float>, gradients: UnsafeMutablePointer<Float>, lr: Float)
    /// Each parameter tensor's trust ratio at the last step, by path, for metrics.jsonl: LARS and
    /// LAMB (and GSNR around them) report them; empty for the others.
    var trustRatioReport: [(name: String, ratio: Double)] { get }
}

extension Optimizer {
    public var trustRatioReport: [(name: String, ratio: Double)] { [] }
}

extension Optimizer where Self: TrustRatioReporting {
    public var trustRatioReport: [(name: String, ratio: Double)] { zip(trustRatioNames, trustRatios).map { ($0, $1) } }
}

/// Layer-wise optimizers (LARS, LAMB) report the trust ratio each parameter tensor got at the
/// last step, for metrics.jsonl.
public protocol TrustRatioReporting {
    var trustRatioNames: [String] { get }
    var trustRatios: [Double] { get }
}
