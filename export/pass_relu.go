package export

import (
	"strings"

	"github.com/artnet/artnet/onnxpb"
)

// reluPass: Max(x, scalar 0) becomes Relu(x) (maxToRelu).
var reluPass = nodePass{label: "relu", op: "Max", apply: func(e *emitter, _ *nodeGraph, _ map[string]valueShape, n *onnxpb.NodeProto) {
	e.maxToRelu(n)
}}

// maxToRelu writes Max(x, 0) with a scalar zero constant (models' relu) as Relu(x), which ONNX
// Runtime fuses into a preceding Gemm or Conv.
func (e *emitter) maxToRelu(n *onnxpb.NodeProto) {
	if n.GetOpType() != "Max" || len(n.Input) != 2 || len(n.Attribute) != 0 {
		return
	}
	for j, in := range n.Input {
		v, d, ok := e.floatInit(in)
		if !ok || len(d) != 0 || len(v) != 1 || v[0] != 0 || n.Input[1-j] == in {
			continue
		}
		n.OpType, n.Input = ptr("Relu"), []string{n.Input[1-j]}
		n.Name = ptr(strings.Replace(n.GetName(), "/Max_", "/Relu_", 1))
		return
	}
}
