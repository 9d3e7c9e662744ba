// Where each layer's tensors go in the network's flat buffers: the layer tree walked depth first
// (a layer's own tensors, then each child's), parameters and state each in one run of floats, and
// every tensor named by its layer's path ("block0/conv1/weight"). A network without composite or
// stateful layers gets exactly the flat layout it always had.

struct NetworkLayout {
    /// Each top-level layer followed by its descendants, depth first.
    var trees: [[any Layer]] = []
    /// Per layer of `trees.joined()`, where its own parameters, state and batch statistics start.
    var offsets: [(parameters: Int, state: Int, statistics: Int)] = []
    var views: [ParameterView] = []
    var stateViews: [StateView] = []
    var parameterCount = 0
    var stateCount = 0
    var statisticsCount = 0

    init(_ layers: [any Layer]) {
        var paths: Set<String> = []
        for (index, layer) in layers.enumerated() {
            var tree: [any Layer] = []
            visit(layer, prefix: "", top: index, tree: &tree, paths: &paths)
            trees.append(tree)
        }
    }

    private mutating func visit(_ layer: any Layer, prefix: String, top: Int, tree: inout [any Layer], paths: inout Set<String>) {
        let path = prefix + layer.name
        // A checkpoint group and a dataset cannot share a name, nor two datasets.
        precondition(paths.insert(path).inserted, "two layers or tensors are both named \(path)")
        tree.append(layer)
        offsets.append((parameterCount, stateCount, statisticsCount))
        statisticsCount += layer.statisticsCount
        for spec in layer.parameterSpecs {
            let view = ParameterView(layer: path, spec: spec, offset: parameterCount, topLayer: top)
            precondition(paths.insert(view.path).inserted, "two tensors are both named \(view.path)")
            views.append(view)
            parameterCount += spec.count
        }
        for spec in layer.stateSpecs {
            let view = StateView(layer: path, spec: spec, offset: stateCount)
            precondition(paths.insert(view.path).inserted, "two tensors are both named \(view.path)")
            stateViews.append(view)
            stateCount += spec.count
        }
        for child in layer.children {
            visit(child, prefix: path + "/", top: top, tree: &tree, paths: &paths)
        }
    }
}
