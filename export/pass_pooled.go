package export

import (
	"math"
	"slices"
	"strings"

	"github.com/artnet/artnet/onnxpb"
)

// pooledPass: squeeze-excitation's pooled dense layers become GlobalAveragePool and 1×1 Convs
// (liftPooled). It runs before affinePass, so that its biases fold into its Convs.
var pooledPass = nodePass{label: "pooled", op: "ReduceSum", apply: func(e *emitter, g *nodeGraph, shapes map[string]valueShape, n *onnxpb.NodeProto) {
	e.liftPooled(g, e.nodes, shapes, n)
}}

// liftPooled rewrites a global average pool computed as Mul(ReduceSum(x [B,C,H,W], axes [2,3],
// keepdims 0), 1/(H·W)) → [B,C] and the small network on it — squeeze-excitation's
// MatMul(·, W [C,S]) + bias, activations, MatMul(·, [S,C]) + bias, Sigmoid — that ends in
// Reshape(→ [-1,C,1,1]) as GlobalAveragePool(x) → [B,C,1,1] followed by 1×1 Convs (bias Adds are
// left for foldAffine) and the same elementwise ops, the Reshape dropped. Every value between the
// pool and the Reshapes must be consumed only by nodes of the kinds above; otherwise nothing
// changes.
func (e *emitter) liftPooled(g *nodeGraph, nodes []*onnxpb.NodeProto, shapes map[string]valueShape, rs *onnxpb.NodeProto) {
	if len(rs.Input) != 2 || len(rs.Output) != 1 || len(rs.Attribute) != 1 || attrOf(rs, "keepdims") == nil ||
		attrOf(rs, "keepdims").GetI() != 0 {
		return
	}
	axes, ok := e.intsInit(rs.Input[1])
	if !ok || !slices.Equal(axes, []int64{2, 3}) {
		return
	}
	x := rs.Input[0]
	xs, ok := e.imageShape(shapes, x)
	if !ok {
		return
	}
	hw := float64(xs.a[2] * xs.a[3])
	mean := g.soleConsumer(rs.Output[0])
	if mean == nil || mean.GetOpType() != "Mul" || len(mean.Input) != 2 || len(mean.Attribute) != 0 {
		return
	}
	k := mean.Input[1]
	if k == rs.Output[0] {
		k = mean.Input[0]
	}
	kv, kd, ok := e.floatInit(k)
	if !ok || len(kv) != 1 || len(kd) > 1 || math.Abs(float64(kv[0])*hw-1) > 1e-6 {
		return
	}
	// Plan: walk the nodes after mean in order, tracking the channel count of each lifted value.
	type action struct {
		n    *onnxpb.NodeProto
		kind string // "conv", "bias", "keep", "drop"
		init string // conv weight or bias initializer to write, by its source
		ch   int64
		in   string // lifted input (drop: the value the Reshape's output is replaced by)
	}
	lifted := map[string]int64{mean.Output[0]: int64(xs.a[1])}
	pending := g.uses[mean.Output[0]]
	var plan []action
	start := slices.Index(nodes, mean)
	for _, n := range nodes[start+1:] {
		if pending == 0 {
			break
		}
		var ins []string
		for _, in := range n.Input {
			if _, ok := lifted[in]; ok {
				ins = append(ins, in)
			}
		}
		if len(ins) == 0 {
			continue
		}
		if len(n.Output) != 1 || g.uses[n.Output[0]] == 0 {
			return
		}
		a := action{n: n}
		op := n.GetOpType()
		switch {
		case op == "MatMul" && len(n.Input) == 2 && n.Input[0] == ins[0] && len(ins) == 1 && len(n.Attribute) == 0:
			_, d, ok := e.floatInit(n.Input[1])
			if !ok || len(d) != 2 || d[0] != lifted[ins[0]] {
				return
			}
			a.kind, a.init, a.ch = "conv", n.Input[1], d[1]
		case op == "Add" && len(n.Input) == 2 && len(ins) == 1 && len(n.Attribute) == 0:
			other := n.Input[0]
			if other == ins[0] {
				other = n.Input[1]
			}
			ch := lifted[ins[0]]
			_, d, ok := e.floatInit(other)
			if !ok || !(slices.Equal(d, []int64{ch}) || slices.Equal(d, []int64{1, ch})) {
				return
			}
			a.kind, a.init, a.ch = "bias", other, ch
		case (op == "Sigmoid" || op == "Tanh" || op == "Relu" || op == "Neg" || op == "Exp") && len(n.Input) == 1 &&
			len(n.Attribute) == 0:
			a.kind, a.ch = "keep", lifted[ins[0]]
		case (op == "Mul" || op == "Add" || op == "Sub") && len(n.Input) == 2 && len(ins) == 2 && len(n.Attribute) == 0 &&
			lifted[ins[0]] == lifted[ins[1]]:
			a.kind, a.ch = "keep", lifted[ins[0]]
		case op == "Reshape" && len(n.Input) == 2 && n.Input[0] == ins[0] && attrOf(n, "allowzero") == nil:
			s, ok := e.intsInit(n.Input[1])
			if !ok || !slices.Equal(s, []int64{-1, lifted[ins[0]], 1, 1}) || g.uses[n.Output[0]] != len(g.consumers[n.Output[0]]) {
				return
			}
			a.kind, a.in = "drop", ins[0]
		default:
			return
		}
		pending -= len(ins)
		if a.kind != "drop" {
			lifted[n.Output[0]] = a.ch
			pending += g.uses[n.Output[0]]
		}
		plan = append(plan, a)
	}
	if pending != 0 {
		return
	}
	// Apply.
	replace := map[string]string{}
	newInits := map[string]string{}
	for _, a := range plan {
		switch a.kind {
		case "conv":
			v, d, _ := e.floatInit(a.init)
			wt, _ := transposeFloats(v, []int{int(d[0]), int(d[1])}, []int{1, 0})
			name, err := e.init(strings.TrimSuffix(strings.TrimSuffix(a.init, "_T"), "_reshaped")+"_1x1",
				[]int{int(d[1]), int(d[0]), 1, 1}, wt)
			if err != nil {
				return
			}
			newInits[a.init] = name
		case "bias":
			v, _, _ := e.floatInit(a.init)
			name, err := e.init(a.init+"_4d", []int{1, int(a.ch), 1, 1}, v)
			if err != nil {
				return
			}
			newInits[a.init] = name
		}
	}
	rs.OpType, rs.Input, rs.Attribute = ptr("GlobalAveragePool"), []string{x}, nil
	rs.Output = []string{mean.Output[0]}
	g.removed[mean] = true
	for _, a := range plan {
		n := a.n
		switch a.kind {
		case "conv":
			n.OpType = ptr("Conv")
			n.Input = []string{n.Input[0], newInits[a.init]}
			n.Attribute = []*onnxpb.AttributeProto{attrInts("kernel_shape", []int{1, 1}), attrInt("group", 1)}
		case "bias":
			for j, in := range n.Input {
				if in == a.init {
					n.Input[j] = newInits[a.init]
				}
			}
		case "drop":
			replace[n.Output[0]] = a.in
			g.removed[n] = true
		}
	}
	for _, n := range nodes {
		for j, in := range n.Input {
			if r, ok := replace[in]; ok {
				n.Input[j] = r
			}
		}
	}
}
