// The validation split of a job's data, opened the same way for training and for `lockstep eval`
// (which must reproduce the run's split row for row): the file's own, or the training split's
// last rows held out (`data.validation`, RowWindow.split), or none.

extension TrainingRun {
    /// The validation split `data` asks for: the file's own (`data.validation_x`/`_y`, when both
    /// exist), or the last rows of `train` held out (`data.validation`), or none. Returns the
    /// training split to use with it.
    static func openValidation(_ data: Job.Data, file: HDF5File, train: any DataSource,
                               classes: Int) throws -> (any DataSource, (any DataSource)?) {
        let stored = (x: file.exists(data.validationX), y: file.exists(data.validationY))
        // Half a stored split (or a named one that is missing) is a mistake, not "no validation".
        if (data.validationPathsGiven || stored.x || stored.y) && !(stored.x && stored.y) {
            let missing = stored.x ? ("validation_y", data.validationY) : ("validation_x", data.validationX)
            throw LockstepError.usage("data.\(missing.0) = \"\(missing.1)\": \(data.file) has no such dataset; set it to one of \(file.datasetPaths().joined(separator: ", ")), or remove data.validation_x and data.validation_y")
        }
        if stored.x && stored.y {
            guard data.validation == .none else {
                throw LockstepError.usage("data.validation: \(data.file) already has a validation split at \(data.validationX); remove data.validation to use it, or point data.validation_x/_y elsewhere")
            }
            let validation = try data.open(file, x: data.validationX, y: data.validationY, classes: classes, name: "validation")
            guard validation.sampleShape == train.sampleShape else {
                throw LockstepError.usage("\(data.file): validation samples have shape \(validation.sampleShape) but training samples \(train.sampleShape)")
            }
            return (train, validation)
        }
        let held = try data.heldOutRows(of: train.count)
        guard held > 0 else { return (train, nil) }
        let parts = RowWindow.split(train, holdingOut: held)
        return (parts.train, parts.validation)
    }
}
