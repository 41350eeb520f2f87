// Package quantize turns a float32 artnet ONNX model into a statically quantized one in the QDQ
// format (QuantizeLinear → DequantizeLinear pairs around the quantized ops), written with
// artnet's own ONNX types (onnxpb) — no Python tooling.
//
// What it does, in order:
//
//  1. Candidates: every Conv whose weight is an initializer, and the elementwise ops of the
//     backbone that ONNX Runtime has int8 kernels for (Sigmoid, Mul, Add, GlobalAveragePool:
//     the SiLU, squeeze-excitation and residual chains), unless Options.FloatOps keeps them in
//     float. MatMul (the LSTM's input projection, attention, heads), LSTM, Softmax and the
//     reductions stay float by default (README: measured).
//  2. Calibration: the model is run in ONNX Runtime with every candidate's activation tensors
//     added as outputs, on preprocessed calibration images (Calibrate); each tensor's range is
//     its min/max, or the Options.Percentile-th percentile of |values| on each side.
//     Elementwise candidates whose tensors are not 4-D (NCHW) after all are left in float.
//  3. Rewrite (Apply): every activation tensor of a quantized op gets one QuantizeLinear →
//     DequantizeLinear pair after its producer (uint8 or int8, asymmetric, per tensor) and all
//     its consumers read the dequantized value; Conv weights become int8, symmetric, per output
//     channel (DequantizeLinear axis 0), biases int32 at scale input·weight with zero point 0 —
//     the layout ONNX Runtime's QDQ transformer fuses into QLinearConv, QLinearMul, ….
//
// The model keeps its interface (float32 image in, float32 outputs) and all its metadata;
// spec.MetaQuantization records the method and the calibration images. The file loads in
// `artnet serve`, `predict` and `evaluate` like any artnet model.
package quantize
