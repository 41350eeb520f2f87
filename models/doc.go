// Package models is DeepArtNet as one GoMLX model function (Build), shared by training, ONNX
// export and GoMLX inference, plus its checkpoints (SaveCheckpoint / LoadCheckpoint) and
// per-part parameter counts.
//
// The network follows ../shared/spec/deepartnet.md: torchvision 0.14's efficientnet_bN().features
// backbone (channels-first NCHW throughout), a 1×1 projection whose grid is read row-major as
// tokens, a bidirectional LSTM written in PyTorch's exact layout and math, additive attention and
// three classification heads.
//
// Every variable holds exactly one PyTorch tensor in PyTorch's layout (conv kernels OIHW, Linear
// weights [out, in], BatchNorm weight/bias/running_mean/running_var, LSTM weight_ih_l0 …) and
// sits at the scope of its PyTorch module path: the PyTorch name
// "backbone.features.1.0.block.1.fc1.weight" is the variable "weight" in scope
// "/backbone/features/1/0/block/1/fc1" (see TorchName and ScopeAndName).
//
// A checkpoint is a directory with config.json (the spec.Config), variables.json (an index:
// scope, name, dtype, shape, trainable flag, offset, length and CRC-32 of every variable of the
// context, including optimizer state, global step and random-number state) and variables.bin
// (the raw little-endian values), and checksums.json (the size and SHA-256 of those three,
// written last). SaveCheckpoint writes it into a temporary directory beside the target, fsyncs
// and renames it into place (replacing an old checkpoint with one atomic exchange on Linux);
// LoadCheckpoint checks every file against checksums.json (a hand-edited config.json is refused
// with an error naming it; a checkpoint saved before checksums.json existed loads with a
// warning), every byte count and CRC, and that the DeepArtNet variables of the config are all
// there with their shapes.
//
// ImportWeights reads PyTorch weights (safetensors; F32/F16/BF16) into such a context: a
// whole DeepArtNet state dict, an ImageNet-pretrained backbone alone (the rest freshly
// initialized), or torchvision's / timm's efficientnet_bN names, detected automatically and
// mapped by name with the spec's timm → torchvision table; its ImportReport lists what was
// loaded, renamed, ignored and left at initialization. timm's tf_efficientnet_bN weights have the
// same names but compute another network (see ImportWeights). Summarize lists a
// configuration's modules with parameter counts and output shapes, from the graph alone.
package models
