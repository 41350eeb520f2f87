package quantize

import (
	"encoding/binary"
	"fmt"
	"math"
	"slices"

	"github.com/artnet/artnet/onnxpb"
)

// elementwiseOps are the float ops quantized by default besides Conv: ONNX Runtime fuses each,
// in QDQ form, into an int8 kernel (QLinearSigmoid, QLinearMul, QLinearAdd,
// QLinearGlobalAveragePool).
var elementwiseOps = []string{"Sigmoid", "Mul", "Add", "GlobalAveragePool"}

// QuantizableOps lists the op types Options.FloatOps may name: Conv, MatMul (with an
// initializer weight; off by default) and elementwiseOps.
func QuantizableOps() []string { return append([]string{"Conv", "MatMul"}, elementwiseOps...) }

// plan is the analysis of a float model: its initializers, and the candidate nodes with the
// activation tensors they read and write.
type plan struct {
	g       *onnxpb.GraphProto
	inits   map[string]*onnxpb.TensorProto
	outputs map[string]bool // graph outputs
	// nodes are the indexes (into g.Node) of the candidate nodes, in graph order.
	nodes []int
	// tensors are the activation tensors of the candidates (inputs and outputs that are not
	// initializers), in first-use order: the tensors calibrated.
	tensors []string
}

// weightInput reports whether input i of a node is the weight that is quantized per channel
// (Conv input 1, MatMul input 1) or the bias (Conv input 2).
func weightInput(op string, i int) (weight, bias bool) {
	switch op {
	case "Conv":
		return i == 1, i == 2
	case "MatMul":
		return i == 1, false
	}
	return false, false
}

// newPlan finds the candidate nodes of g among the op types in ops.
func newPlan(g *onnxpb.GraphProto, ops map[string]bool) (*plan, error) {
	p := &plan{g: g, inits: map[string]*onnxpb.TensorProto{}, outputs: map[string]bool{}}
	for _, t := range g.GetInitializer() {
		p.inits[t.GetName()] = t
	}
	for _, o := range g.GetOutput() {
		p.outputs[o.GetName()] = true
	}
	seen := map[string]bool{}
	notFloat := nonFloatTensors(g)
	for i, n := range g.GetNode() {
		op := n.GetOpType()
		if n.GetDomain() != "" || !ops[op] || slices.ContainsFunc(n.Input, func(s string) bool { return notFloat[s] }) {
			continue
		}
		switch op {
		case "Conv":
			if len(n.Input) < 2 || !p.isFloatInit(n.Input[1], 4) || (len(n.Input) > 2 && n.Input[2] != "" && !p.isFloatInit(n.Input[2], 1)) {
				continue
			}
		case "MatMul":
			if len(n.Input) != 2 || !p.isFloatInit(n.Input[1], 2) || p.inits[n.Input[0]] != nil {
				continue
			}
		default: // elementwise: every input an activation
			if slices.ContainsFunc(n.Input, func(s string) bool { return s == "" || p.inits[s] != nil }) {
				continue
			}
		}
		if len(n.Output) != 1 {
			continue
		}
		p.nodes = append(p.nodes, i)
		for j, in := range n.Input {
			if w, b := weightInput(op, j); w || b || in == "" {
				continue
			}
			if !seen[in] {
				seen[in] = true
				p.tensors = append(p.tensors, in)
			}
		}
		if out := n.Output[0]; !seen[out] {
			seen[out] = true
			p.tensors = append(p.tensors, out)
		}
	}
	if len(p.nodes) == 0 {
		return nil, fmt.Errorf("no node to quantize (op types %v with initializer weights)", sortedKeys(ops))
	}
	return p, nil
}

// nonFloatTensors returns the tensors of g known not to be float32: non-float graph inputs and
// initializers, the outputs of ops that make integers or booleans (Shape, Size, ArgMax, ArgMin,
// NonZero, comparisons, Cast to another type, Constant of another type), and what ops that keep
// their first input's type (shape arithmetic: Add, Mul, Gather, Concat, Slice, …) compute from
// those. Calibration declares every tensor it reads as float32, so these must stay out.
func nonFloatTensors(g *onnxpb.GraphProto) map[string]bool {
	nf := map[string]bool{}
	const f32 = int32(onnxpb.TensorProto_FLOAT)
	for _, t := range g.GetInitializer() {
		if t.GetDataType() != f32 {
			nf[t.GetName()] = true
		}
	}
	for _, in := range g.GetInput() {
		if in.GetType().GetTensorType().GetElemType() != f32 {
			nf[in.GetName()] = true
		}
	}
	for _, n := range g.GetNode() {
		mark := false
		switch n.GetOpType() {
		case "Shape", "Size", "ArgMax", "ArgMin", "NonZero", "Equal", "Less", "Greater", "LessOrEqual", "GreaterOrEqual", "Not", "And", "Or":
			mark = true
		case "Cast":
			for _, a := range n.GetAttribute() {
				if a.GetName() == "to" && int32(a.GetI()) != f32 {
					mark = true
				}
			}
		case "Constant", "ConstantOfShape":
			for _, a := range n.GetAttribute() {
				if t := a.GetT(); t != nil && t.GetDataType() != f32 {
					mark = true
				}
			}
		default:
			mark = len(n.Input) > 0 && nf[n.Input[0]]
		}
		if mark {
			for _, o := range n.Output {
				nf[o] = true
			}
		}
	}
	return nf
}

func (p *plan) isFloatInit(name string, rank int) bool {
	t := p.inits[name]
	return t != nil && t.GetDataType() == int32(onnxpb.TensorProto_FLOAT) && len(t.GetDims()) == rank
}

// qparams are the quantization parameters of one activation tensor.
type qparams struct {
	scale float32
	zero  int32 // in the activation type's range
}

// actParams computes asymmetric parameters for the range [lo, hi] (widened to contain 0, so
// that zero padding is exact) in uint8 (signed=false) or int8.
func actParams(lo, hi float32, signed bool) qparams {
	lo, hi = min(lo, 0), max(hi, 0)
	scale := (hi - lo) / 255
	if !(scale > 0) || math.IsInf(float64(scale), 0) {
		return qparams{scale: 1}
	}
	qmin := float32(0)
	if signed {
		qmin = -128
	}
	zp := int32(math.RoundToEven(float64(qmin - lo/scale)))
	return qparams{scale: scale, zero: min(max(zp, int32(qmin)), int32(qmin)+255)}
}

// perChannel quantizes w (dims, channel axis 0 for Conv, last axis for MatMul) symmetrically
// to int8 in [-qmax, qmax]; it returns the int8 values and one scale per channel.
func perChannel(w []float32, dims []int64, axis int, qmax float32) ([]int8, []float32) {
	nch := int(dims[axis])
	inner := 1
	for _, d := range dims[axis+1:] {
		inner *= int(d)
	}
	ch := func(i int) int { return (i / inner) % nch }
	amax := make([]float32, nch)
	for i, x := range w {
		amax[ch(i)] = max(amax[ch(i)], float32(math.Abs(float64(x))))
	}
	scales := make([]float32, nch)
	for c, a := range amax {
		scales[c] = a / qmax
		if !(scales[c] > 0) {
			scales[c] = 1
		}
	}
	q := make([]int8, len(w))
	for i, x := range w {
		v := math.RoundToEven(float64(x / scales[ch(i)]))
		q[i] = int8(min(max(v, -float64(qmax)), float64(qmax)))
	}
	return q, scales
}

func ptr[T any](v T) *T { return &v }

func tensor(name string, dt onnxpb.TensorProto_DataType, dims []int64, raw []byte) *onnxpb.TensorProto {
	return &onnxpb.TensorProto{Name: ptr(name), DataType: ptr(int32(dt)), Dims: slices.Clone(dims), RawData: raw}
}

func floatTensor(name string, dims []int64, v []float32) *onnxpb.TensorProto {
	raw := make([]byte, 4*len(v))
	for i, x := range v {
		binary.LittleEndian.PutUint32(raw[4*i:], math.Float32bits(x))
	}
	return tensor(name, onnxpb.TensorProto_FLOAT, dims, raw)
}

func int32Tensor(name string, dims []int64, v []int32) *onnxpb.TensorProto {
	raw := make([]byte, 4*len(v))
	for i, x := range v {
		binary.LittleEndian.PutUint32(raw[4*i:], uint32(x))
	}
	return tensor(name, onnxpb.TensorProto_INT32, dims, raw)
}

func int8Tensor(name string, dims []int64, v []int8) *onnxpb.TensorProto {
	raw := make([]byte, len(v))
	for i, x := range v {
		raw[i] = byte(x)
	}
	return tensor(name, onnxpb.TensorProto_INT8, dims, raw)
}

// zeroTensor is a zero point: a scalar (dims nil) or per-channel zeros of the activation type.
func zeroTensor(name string, signed bool, dims []int64, zp int32) *onnxpb.TensorProto {
	n := 1
	for _, d := range dims {
		n *= int(d)
	}
	raw := make([]byte, n)
	for i := range raw {
		raw[i] = byte(zp) // int8 two's complement or uint8
	}
	dt := onnxpb.TensorProto_UINT8
	if signed {
		dt = onnxpb.TensorProto_INT8
	}
	return tensor(name, dt, dims, raw)
}

func node(op, name string, inputs []string, output string, attrs ...*onnxpb.AttributeProto) *onnxpb.NodeProto {
	return &onnxpb.NodeProto{OpType: ptr(op), Name: ptr(name), Input: inputs, Output: []string{output}, Attribute: attrs}
}

func axisAttr(a int64) *onnxpb.AttributeProto {
	return &onnxpb.AttributeProto{Name: ptr("axis"), Type: ptr(onnxpb.AttributeProto_INT), I: ptr(a)}
}

func sortedKeys(m map[string]bool) []string {
	var k []string
	for s, ok := range m {
		if ok {
			k = append(k, s)
		}
	}
	slices.Sort(k)
	return k
}
