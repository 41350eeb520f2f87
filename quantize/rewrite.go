package quantize

import (
	"fmt"
	"math"
	"slices"

	"github.com/artnet/artnet/onnxpb"
)

// Range is the calibrated range of one activation tensor, and its rank as seen in calibration.
type Range struct {
	Lo, Hi float32
	Rank   int
}

// rewrite holds what apply adds to the graph.
type rewrite struct {
	p       *plan
	signed  bool
	qmax    float32 // 127, or 63 with 7-bit weights
	params  map[string]qparams
	inits   []*onnxpb.TensorProto
	weights map[string]*weightQ // weight initializer → its quantized form (shared by users)
}

type weightQ struct {
	dq     string    // the DequantizeLinear output that replaces the weight
	scales []float32 // per channel
}

// apply rewrites p.g in place: the candidates that keep a calibrated range (and, for elementwise
// ops, whose tensors are all 4-D) get QDQ pairs on their activations and quantized weights. It
// returns the op types quantized and their node counts.
func apply(p *plan, ranges map[string]Range, signed bool, weightBits int) (map[string]int, error) {
	r := &rewrite{p: p, signed: signed, qmax: float32(int(1)<<(weightBits-1) - 1), params: map[string]qparams{},
		weights: map[string]*weightQ{}}
	g := p.g
	quantized := map[int]bool{}
	counts := map[string]int{}
	var tensors []string
	inT := map[string]bool{}
	for _, i := range p.nodes {
		n := g.Node[i]
		acts := activations(n)
		ok := true
		for _, t := range acts {
			rg, have := ranges[t]
			if !have || (n.GetOpType() != "Conv" && n.GetOpType() != "MatMul" && rg.Rank != 4) {
				ok = false
			}
		}
		if !ok {
			continue
		}
		quantized[i] = true
		counts[n.GetOpType()]++
		for _, t := range acts {
			if !inT[t] {
				inT[t] = true
				tensors = append(tensors, t)
				rg := ranges[t]
				r.params[t] = actParams(rg.Lo, rg.Hi, signed)
			}
		}
	}
	if len(quantized) == 0 {
		return nil, fmt.Errorf("no node to quantize after calibration (no calibrated 4-D tensors)")
	}
	dq := func(t string) string { return t + "_DequantizeLinear" }
	var out []*onnxpb.NodeProto
	addQDQ := func(t string) {
		qp := r.params[t]
		s, z := t+"_scale", t+"_zero_point"
		r.inits = append(r.inits, floatTensor(s, nil, []float32{qp.scale}), zeroTensor(z, signed, nil, qp.zero))
		out = append(out,
			node("QuantizeLinear", t+"_QuantizeLinear", []string{t, s, z}, t+"_quantized"),
			node("DequantizeLinear", t+"_DequantizeLinear", []string{t + "_quantized", s, z}, dq(t)))
	}
	for _, in := range g.GetInput() {
		if inT[in.GetName()] {
			addQDQ(in.GetName())
		}
	}
	for i, n := range g.Node {
		for j, in := range n.Input {
			if inT[in] {
				n.Input[j] = dq(in)
			}
		}
		if quantized[i] {
			if err := r.weightsOf(n, &out); err != nil {
				return nil, err
			}
		}
		out = append(out, n)
		for _, o := range n.Output {
			if inT[o] {
				addQDQ(o)
			}
		}
	}
	// Graph outputs keep their float producers' names (consumers inside the graph read the
	// dequantized copy).
	g.Node = out
	g.Initializer = append(g.Initializer, r.inits...)
	pruneInitializers(g)
	return counts, nil
}

// activations are the float activation inputs and the output of a candidate node.
func activations(n *onnxpb.NodeProto) []string {
	var a []string
	for j, in := range n.Input {
		if w, b := weightInput(n.GetOpType(), j); !w && !b && in != "" {
			a = append(a, in)
		}
	}
	return append(a, n.Output[0])
}

// weightsOf replaces the weight (and bias) inputs of a quantized Conv or MatMul by
// DequantizeLinear of int8 per-channel weights (and of int32 biases), appending those nodes.
func (r *rewrite) weightsOf(n *onnxpb.NodeProto, out *[]*onnxpb.NodeProto) error {
	op := n.GetOpType()
	if op != "Conv" && op != "MatMul" {
		return nil
	}
	wName := n.Input[1]
	w := r.p.inits[wName]
	axis := 0
	if op == "MatMul" {
		axis = 1
	}
	wq, ok := r.weights[wName]
	if !ok {
		vals, err := onnxpb.Floats(w)
		if err != nil {
			return err
		}
		q, scales := perChannel(vals, w.GetDims(), axis, r.qmax)
		nch := []int64{w.GetDims()[axis]}
		base := wName + "_quantized"
		wq = &weightQ{dq: wName + "_DequantizeLinear", scales: scales}
		r.inits = append(r.inits, int8Tensor(base, w.GetDims(), q), floatTensor(wName+"_scale", nch, scales),
			zeroTensor(wName+"_zero_point", true, nch, 0))
		*out = append(*out, node("DequantizeLinear", wq.dq, []string{base, wName + "_scale", wName + "_zero_point"}, wq.dq, axisAttr(int64(axis))))
		r.weights[wName] = wq
	}
	n.Input[1] = wq.dq
	if op != "Conv" || len(n.Input) < 3 || n.Input[2] == "" {
		return nil
	}
	// The bias in int32 at scale input_scale·weight_scale[c], zero point 0: the form
	// QLinearConv adds to its int32 accumulators.
	bName := n.Input[2]
	b := r.p.inits[bName]
	vals, err := onnxpb.Floats(b)
	if err != nil {
		return err
	}
	if len(vals) != len(wq.scales) {
		return fmt.Errorf("node %q: bias %q has %d values for %d output channels", n.GetName(), bName, len(vals), len(wq.scales))
	}
	x := activations(n)[0]
	inScale := r.params[trimDQ(x)].scale
	scales := make([]float32, len(vals))
	q := make([]int32, len(vals))
	for c, v := range vals {
		scales[c] = inScale * wq.scales[c]
		q[c] = int32(min(max(math.RoundToEven(float64(v/scales[c])), math.MinInt32), math.MaxInt32))
	}
	base := n.GetName() + "/" + bName + "_quantized"
	nch := []int64{int64(len(vals))}
	zeros := make([]int32, len(vals))
	r.inits = append(r.inits, int32Tensor(base, nch, q), floatTensor(base+"_scale", nch, scales), int32Tensor(base+"_zero_point", nch, zeros))
	*out = append(*out, node("DequantizeLinear", base+"_DequantizeLinear", []string{base, base + "_scale", base + "_zero_point"}, base+"_DequantizeLinear", axisAttr(0)))
	n.Input[2] = base + "_DequantizeLinear"
	return nil
}

// trimDQ maps a rewired input (t_DequantizeLinear) back to the tensor t.
func trimDQ(s string) string {
	const suf = "_DequantizeLinear"
	if len(s) > len(suf) && s[len(s)-len(suf):] == suf {
		return s[:len(s)-len(suf)]
	}
	return s
}

// pruneInitializers drops initializers no node reads any more (the float weights replaced).
func pruneInitializers(g *onnxpb.GraphProto) {
	used := map[string]bool{}
	for _, n := range g.Node {
		for _, in := range n.Input {
			used[in] = true
		}
	}
	for _, o := range g.Output {
		used[o.GetName()] = true
	}
	g.Initializer = slices.DeleteFunc(g.Initializer, func(t *onnxpb.TensorProto) bool { return !used[t.GetName()] })
}
