// Which DataSource a job's `data.load` opens for a split.

extension Job.Data {
    /// The split at `x`/`y` of `file`, held as `load` says (docs/data.md).
    public func open(_ file: HDF5File, x: String, y: String, classes: Int, name: String) throws -> any DataSource {
        switch load {
        case .memory:
            return try Dataset(file: file, xPath: x, yPath: y, classes: classes, name: name)
        case .node:
            return try NodeSharedDataset(file: file, xPath: x, yPath: y, classes: classes, name: name)
        case .stream:
            return try StreamedDataset(file: file, xPath: x, yPath: y, classes: classes, name: name,
                                       cacheBytes: Int(cacheMegabytes * 1_000_000))
        }
    }
}
