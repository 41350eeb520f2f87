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
package models
