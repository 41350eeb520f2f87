// Package benchmark measures artnet's GoMLX training step and inference (and ONNX Runtime
// inference of an exported model) the way `artnet bench` reports them: step time with the
// first (compiling) step and warm-up steps excluded, images per second, and achieved
// multiply-accumulates per second counted from the model's shapes (CountMACs). It also splits
// a CPU profile by GoMLX op type (OpBreakdown) and compares one training step's loss and
// gradients on two backends (CompareStep: the GPU check's xla:cuda vs go, or a fast kernel
// path vs the reference one).
//
// Timings are for people and scripts (bench/README.md, bench/train-vs-pytorch.sh,
// scripts/gpu-check.sh); tests never assert on them.
package benchmark
