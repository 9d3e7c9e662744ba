// The work buffers the conv layers of one network share: a chunk's column matrix and its
// transposed-output staging (Conv2d). Only one layer's forward or backward runs at a time (the
// network runs its layers in turn, a residual block its children in turn), and no layer keeps
// anything in them from one call to the next, so one set sized for the largest layer serves them
// all instead of one per layer.

public final class ConvWorkspace {
    /// col[K, B·P] of the chunk being worked on; in backward also dL/dcol, written over it.
    public private(set) var columns = FloatBuffer(count: 0)
    /// Y'[Cout, B·P] in forward, dY' in backward (chunks of more than one sample only).
    public private(set) var staging = FloatBuffer(count: 0)

    public init() {}

    /// Grows the buffers to at least these many floats (never shrinks them). Called from the
    /// layers' `reserve`, never per step: a buffer that grows is a new allocation.
    public func reserve(columns: Int, staging: Int) {
        if columns > self.columns.count { self.columns = FloatBuffer(count: columns) }
        if staging > self.staging.count { self.staging = FloatBuffer(count: staging) }
    }
}
