// The one way a layer tells the network that backward is under way (after each sample of a
// long layer): a non-blocking exchange in flight gets a chance to progress, since Open MPI moves
// its messages only inside MPI calls. The network owns one and hands it to its layers; whoever
// drives the exchange (the trainer's bucketed exchange) sets `tick` once. A class, so the
// layers and the network share it; calling it allocates nothing.

public final class BackwardProgress {
    /// What runs on each report; nil (the default) costs one check.
    public var tick: (() -> Void)?
    public init() {}
    @inline(__always) public func report() { tick?() }
}
