// `lockstep export CHECKPOINT --format safetensors`: the model's tensors under PyTorch's
// state_dict names in a safetensors file (CheckpointExport). Rank 0 alone writes under a launcher.

import ArgumentParser
import Lockstep

struct Export: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Export a checkpoint's model to another format (safetensors; onnx is not implemented yet).",
        discussion: """
            safetensors: every /model tensor (parameters and BatchNorm running statistics) under its PyTorch \
            state_dict key (/model/block0/conv1/weight → block0.conv1.weight), float32 in the checkpoint's \
            shapes and layouts, plus <bn>.num_batches_tracked (int64, the checkpoint's step) so that \
            load_state_dict(strict=True) works; the metadata holds the config and the input normalisation. \
            Written to OUTPUT.tmp and renamed when complete.
            """)

    @Argument(help: "A checkpoint file, or a run directory for its newest.")
    var checkpoint: String

    @Option(help: "safetensors (onnx: not implemented yet).")
    var format: String

    @Option(name: .shortAndLong, help: "The file to write (default: the checkpoint's name with .safetensors).")
    var output: String?

    @Option(help: ArgumentHelp("A data file for the sample shape, needed only for checkpoints older than @sample_shape whose data.file is gone.", valueName: "file"))
    var data: String?

    func validate() throws {
        switch CheckpointExport.Format(rawValue: format) {
        case .safetensors: return
        case .onnx: throw ValidationError("--format onnx is not implemented yet: use --format safetensors")
        case nil: throw ValidationError("--format must be safetensors (or onnx, not implemented yet), got \(format)")
        }
    }

    func run() throws {
        try Import.onRankZero {
            let (path, tensors, bytes) = try CheckpointExport.safetensors(checkpoint: checkpoint, output: output, data: data)
            Console.info("wrote \(path): \(tensors) tensors, \(bytes) bytes")
        }
    }
}
