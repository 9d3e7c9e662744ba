// A step driver turns the current batch into a parameter update: it runs the passes, the
// exchange and the optimizer, and says what the step's metrics line carries beyond the common
// fields. The trainer runs one driver and knows nothing of which (docs/design.md):
//
//   FirstOrderDriver   one gradient, one collective, then the optimizer's update (GSNR included);
//   LBFGSDriver        several evaluations of the same batch, one collective each, moving the
//                      parameters itself.

protocol StepDriver: AnyObject {
    /// The state checkpoints save and resume restores.
    var optimizer: any OptimizerState { get }
    /// Evaluates the batch of the step at `position` (every collective of the step happens here)
    /// and returns its global mean loss, before any update. L-BFGS also moves the parameters.
    func evaluate(at position: TrainingPosition, shape: StepShape, lr: Double) throws -> Double
    /// Applies the update after a finite loss (nothing for L-BFGS, which moved in `evaluate`).
    func apply(lr: Double)
    /// Whether any rank voted to stop in the step's last collective: the same on every rank.
    var stopAgreed: Bool { get }
    /// Whether rank 0 asked for a checkpoint (by wall time) in the step's last collective.
    var checkpointAgreed: Bool { get }
    /// The gradient the step's non-finite check reads (P floats).
    var gradient: UnsafePointer<Float> { get }
    /// ‖ḡ‖ of the last step (before weight decay and the GSNR multiplier; L-BFGS: at its start).
    var gradientNorm: Double { get }
    /// Seconds the steps so far waited for the exchange after backward (first-order steps only).
    var exchangeWait: Double { get }
    /// Buckets of the overlapped exchange (0: none), and whether steps use them.
    var bucketCount: Int { get }
    var overlapsExchange: Bool { get }
    /// The driver's fields of a metrics line, after the common ones; `waitsPerStep` are the
    /// mean waits since the previous line.
    func appendFields(to fields: inout [(String, Any)], waitsPerStep: StepWaits)
    /// `lockstep bench`'s overlap probe on the step at `position` (nil where it does not apply).
    func measureOverlap(passes: Int, at position: TrainingPosition, shape: StepShape) -> OverlapMeasurement?
}

extension StepDriver {
    var bucketCount: Int { 0 }
    var overlapsExchange: Bool { false }
    func measureOverlap(passes: Int, at position: TrainingPosition, shape: StepShape) -> OverlapMeasurement? { nil }
}
