package export

import (
	"math"
	"slices"
	"strings"

	"github.com/artnet/artnet/onnxpb"
)

// Graph-level rewrites of the emitted ONNX nodes that ONNX Runtime cannot do itself (it fuses
// Conv+BatchNormalization and Conv+Add(bias), but not a MatMul written for a 1×1 convolution,
// nor per-channel Mul/Add after a Conv). Every rewrite checks its pattern exactly — values,
// shapes, initializer dims and consumers — and leaves the nodes as they are otherwise.
//
//  1. pointwise convolution: Reshape(x [B,C,H,W] → [-1,C,H·W]) → MatMul(W [1,O,C] or [O,C], ·)
//     → Reshape(→ [-1,O,H,W]) becomes Conv(x, W [O,C,1,1]) with kernel 1×1 (models.pointwise);
//  2. affine folding: Conv(x, W[, b]) followed by a chain of Mul(·, s), Add(·, t), Sub(·, t)
//     whose constants are per output channel (broadcastable to [1,O,1,…] — a batch norm in
//     inference, a bias) or scalars becomes one Conv(x, W', b'); the chain stops at the first
//     node that is not such an op or at a value with more than one consumer;
//  3. pooled dense layers (squeeze-excitation): see liftPooled. It runs between 1 and 2, so that
//     its biases fold into its Convs;
//  4. Max(x, scalar 0) becomes Relu(x);
//  5. a 1×1 convolution read out as tokens (the projection): see fuseTokens.

// fuseConvs applies the rewrites to e.nodes; outputs are the graph's output names (values that
// must keep their producer). Bypassed nodes and initializers are dropped by prune.
func (e *emitter) fuseConvs(outputs []string) {
	shapes := e.valueShapes()
	g := newNodeGraph(e.nodes, outputs)
	for _, n := range e.nodes {
		if n.GetOpType() == "Reshape" {
			e.fusePointwise(g, shapes, n)
		}
		if n.GetOpType() == "MatMul" {
			e.fuseTokens(g, shapes, n)
		}
	}
	e.dropRemoved(g)
	e.prune(outputs) // drops the bypassed Reshape and MatMul nodes
	g = newNodeGraph(e.nodes, outputs)
	for _, n := range slices.Clone(e.nodes) {
		if n.GetOpType() == "ReduceSum" && !g.removed[n] {
			e.liftPooled(g, e.nodes, shapes, n)
		}
	}
	e.dropRemoved(g)
	g = newNodeGraph(e.nodes, outputs)
	for _, n := range e.nodes {
		if n.GetOpType() == "Conv" && !g.removed[n] {
			e.foldAffine(g, n)
		}
	}
	e.dropRemoved(g)
	for _, n := range e.nodes {
		e.maxToRelu(n)
	}
}

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

func (e *emitter) dropRemoved(g *nodeGraph) {
	var kept []*onnxpb.NodeProto
	for _, n := range e.nodes {
		if !g.removed[n] {
			kept = append(kept, n)
		}
	}
	e.nodes = kept
}

// nodeGraph indexes nodes by the values they produce and consume.
type nodeGraph struct {
	producer  map[string]*onnxpb.NodeProto
	uses      map[string]int // consumers of each value (a graph output counts as one)
	consumer  map[string]*onnxpb.NodeProto
	consumers map[string][]*onnxpb.NodeProto
	removed   map[*onnxpb.NodeProto]bool
}

func newNodeGraph(nodes []*onnxpb.NodeProto, outputs []string) *nodeGraph {
	g := &nodeGraph{producer: map[string]*onnxpb.NodeProto{}, uses: map[string]int{},
		consumer: map[string]*onnxpb.NodeProto{}, consumers: map[string][]*onnxpb.NodeProto{}, removed: map[*onnxpb.NodeProto]bool{}}
	for _, n := range nodes {
		for _, o := range n.Output {
			g.producer[o] = n
		}
		for _, in := range n.Input {
			g.uses[in]++
			g.consumer[in] = n
			g.consumers[in] = append(g.consumers[in], n)
		}
	}
	for _, o := range outputs {
		g.uses[o]++
		delete(g.consumer, o)
	}
	return g
}

// soleConsumer returns the only consumer of v (nil if v has none, several, or is an output).
func (g *nodeGraph) soleConsumer(v string) *onnxpb.NodeProto {
	if g.uses[v] != 1 {
		return nil
	}
	return g.consumer[v]
}

// valueShape is a value's recorded dims at the two batch sizes.
type valueShape struct{ a, b []int }

// valueShapes returns the recorded shapes of the values that stand for recorded ops.
func (e *emitter) valueShapes() map[string]valueShape {
	out := map[string]valueShape{}
	for id, name := range e.vals {
		if r, ok := e.renamed[name]; ok {
			name = r
		}
		out[name] = valueShape{e.a[id].shape.Dimensions, e.b[id].shape.Dimensions}
	}
	return out
}

// floatInit returns the float32 data and dims of initializer name (not yet moved to raw_data).
func (e *emitter) floatInit(name string) ([]float32, []int64, bool) {
	t := e.initByName[name]
	if t == nil || t.GetDataType() != int32(onnxpb.TensorProto_FLOAT) || len(t.RawData) > 0 {
		return nil, nil, false
	}
	n := int64(1)
	for _, d := range t.Dims {
		n *= d
	}
	if int64(len(t.FloatData)) != n {
		return nil, nil, false
	}
	return t.FloatData, t.Dims, true
}

// intsInit returns the data of a 1-D int64 initializer.
func (e *emitter) intsInit(name string) ([]int64, bool) {
	t := e.initByName[name]
	if t == nil || t.GetDataType() != int32(onnxpb.TensorProto_INT64) || len(t.RawData) > 0 ||
		len(t.Dims) != 1 || int64(len(t.Int64Data)) != t.Dims[0] {
		return nil, false
	}
	return t.Int64Data, true
}

func attrOf(n *onnxpb.NodeProto, name string) *onnxpb.AttributeProto {
	for _, a := range n.Attribute {
		if a.GetName() == name {
			return a
		}
	}
	return nil
}

// fusePointwise rewrites r2 = Reshape(MatMul(W, Reshape(x))) as a 1×1 Conv (see fuseConvs).
func (e *emitter) fusePointwise(g *nodeGraph, shapes map[string]valueShape, r2 *onnxpb.NodeProto) {
	if len(r2.Input) != 2 || len(r2.Output) != 1 || attrOf(r2, "allowzero") != nil {
		return
	}
	mm := g.producer[r2.Input[0]]
	if mm == nil || mm.GetOpType() != "MatMul" || len(mm.Input) != 2 || g.soleConsumer(mm.Output[0]) != r2 {
		return
	}
	r1 := g.producer[mm.Input[1]]
	if r1 == nil || r1.GetOpType() != "Reshape" || len(r1.Input) != 2 || attrOf(r1, "allowzero") != nil ||
		g.soleConsumer(r1.Output[0]) != mm {
		return
	}
	x := r1.Input[0]
	xs, ok := shapes[x]
	if !ok || len(xs.a) != 4 || len(xs.b) != 4 || xs.a[0] != e.batchA || xs.b[0] != e.batchB ||
		!slices.Equal(xs.a[1:], xs.b[1:]) {
		return
	}
	c, h, w := int64(xs.a[1]), int64(xs.a[2]), int64(xs.a[3])
	w8, wdims, ok := e.floatInit(mm.Input[0])
	if !ok {
		return
	}
	if len(wdims) == 3 && wdims[0] == 1 {
		wdims = wdims[1:]
	}
	if len(wdims) != 2 || wdims[1] != c {
		return
	}
	o := wdims[0]
	s1, ok1 := e.intsInit(r1.Input[1])
	s2, ok2 := e.intsInit(r2.Input[1])
	if !ok1 || !ok2 || !slices.Equal(s1, []int64{-1, c, h * w}) || !slices.Equal(s2, []int64{-1, o, h, w}) {
		return
	}
	k, err := e.init(strings.TrimSuffix(mm.Input[0], "_reshaped")+"_1x1", []int{int(o), int(c), 1, 1}, w8)
	if err != nil {
		return
	}
	r2.OpType = ptr("Conv")
	r2.Name = ptr(e.uniq(mm.GetName() + "_Conv1x1"))
	r2.Input = []string{x, k}
	r2.Attribute = []*onnxpb.AttributeProto{attrInts("kernel_shape", []int{1, 1}), attrInts("strides", []int{1, 1}),
		attrInts("dilations", []int{1, 1}), attrInts("pads", []int{0, 0, 0, 0}), attrInt("group", 1)}
}

// perChannel returns, for a constant operand of an elementwise op on a Conv output of rank r
// with o channels, its value per output channel (len o), or false if it is not a scalar or a
// tensor broadcastable to [1, o, 1, …] that leaves the output shape as it is.
func (e *emitter) perChannel(name string, r int, o int64) ([]float32, bool) {
	v, dims, ok := e.floatInit(name)
	if !ok || len(dims) > r {
		return nil, false
	}
	out := make([]float32, o)
	n := int64(1)
	for i, d := range dims {
		axis := r - len(dims) + i // output axis, right-aligned
		if d == 1 {
			continue
		}
		if axis != 1 || d != o {
			return nil, false
		}
		n = d
	}
	for i := range out {
		if n == 1 {
			out[i] = v[0]
		} else {
			out[i] = v[i]
		}
	}
	return out, true
}

// foldAffine folds per-channel Mul and Add after conv into its weight and bias.
func (e *emitter) foldAffine(g *nodeGraph, conv *onnxpb.NodeProto) {
	if len(conv.Input) < 2 || len(conv.Input) > 3 || len(conv.Output) != 1 {
		return
	}
	w, wdims, ok := e.floatInit(conv.Input[1])
	if !ok || len(wdims) < 3 {
		return
	}
	o := wdims[0]
	var bias []float32
	if len(conv.Input) == 3 && conv.Input[2] != "" {
		b, bdims, ok := e.floatInit(conv.Input[2])
		if !ok || len(bdims) != 1 || bdims[0] != o {
			return
		}
		bias = b
	}
	r := len(wdims)
	// The chain computes conv·scale + shift, per output channel.
	scale, shift := make([]float32, o), make([]float32, o)
	for i := range scale {
		scale[i] = 1
	}
	scaled := false
	last := conv.Output[0]
	var bypassed []*onnxpb.NodeProto
	for {
		next := g.soleConsumer(last)
		if next == nil || len(next.Input) != 2 || len(next.Output) != 1 || len(next.Attribute) != 0 {
			break
		}
		op := next.GetOpType()
		if op != "Mul" && op != "Add" && !(op == "Sub" && next.Input[0] == last) {
			break
		}
		other := next.Input[1]
		if next.Input[1] == last {
			other = next.Input[0]
		}
		if other == last {
			break // x·x, x+x
		}
		v, ok := e.perChannel(other, r, o)
		if !ok {
			break
		}
		for i := range v {
			switch op {
			case "Mul":
				scale[i] *= v[i]
				shift[i] *= v[i]
			case "Add":
				shift[i] += v[i]
			case "Sub":
				shift[i] -= v[i]
			}
		}
		scaled = scaled || op == "Mul"
		bypassed = append(bypassed, next)
		last = next.Output[0]
	}
	if len(bypassed) == 0 {
		return
	}
	per := int64(len(w)) / o
	nw := slices.Clone(w)
	nb := make([]float32, o)
	for i := int64(0); i < o; i++ {
		for j := i * per; j < (i+1)*per; j++ {
			nw[j] *= scale[i]
		}
		nb[i] = shift[i]
		if bias != nil {
			nb[i] += bias[i] * scale[i]
		}
	}
	dims := make([]int, len(wdims))
	for i, d := range wdims {
		dims[i] = int(d)
	}
	wName := conv.Input[1]
	if scaled {
		var err error
		if wName, err = e.init(conv.Input[1]+"_folded", dims, nw); err != nil {
			return
		}
	}
	bName, err := e.init(conv.Input[1]+"_bias", []int{int(o)}, nb)
	if err != nil {
		return
	}
	conv.Input = []string{conv.Input[0], wName, bName}
	conv.Output = []string{last}
	for _, n := range bypassed {
		g.removed[n] = true
	}
}

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
	xs, ok := shapes[x]
	if !ok || len(xs.a) != 4 || len(xs.b) != 4 || xs.a[0] != e.batchA || xs.b[0] != e.batchB ||
		!slices.Equal(xs.a[1:], xs.b[1:]) {
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

// fuseTokens rewrites a 1×1 convolution read out as tokens — MatMul(Transpose(Reshape(x
// [B,C,H,W] → [-1,C,H·W]), perm [0,2,1]), W [C,O]) → [B,H·W,O], optionally + bias [O] (models'
// projection) — as Conv(x, Wᵀ [O,C,1,1], bias) → Reshape [-1,O,H·W] → Transpose [0,2,1], the
// form PyTorch exports.
func (e *emitter) fuseTokens(g *nodeGraph, shapes map[string]valueShape, mm *onnxpb.NodeProto) {
	if len(mm.Input) != 2 || len(mm.Output) != 1 || len(mm.Attribute) != 0 {
		return
	}
	t := g.producer[mm.Input[0]]
	if t == nil || t.GetOpType() != "Transpose" || len(t.Input) != 1 || g.soleConsumer(t.Output[0]) != mm {
		return
	}
	if p := attrOf(t, "perm"); p == nil || !slices.Equal(p.Ints, []int64{0, 2, 1}) {
		return
	}
	r := g.producer[t.Input[0]]
	if r == nil || r.GetOpType() != "Reshape" || len(r.Input) != 2 || attrOf(r, "allowzero") != nil ||
		g.soleConsumer(r.Output[0]) != t {
		return
	}
	x := r.Input[0]
	xs, ok := shapes[x]
	if !ok || len(xs.a) != 4 || len(xs.b) != 4 || xs.a[0] != e.batchA || xs.b[0] != e.batchB ||
		!slices.Equal(xs.a[1:], xs.b[1:]) {
		return
	}
	c, hw := int64(xs.a[1]), int64(xs.a[2]*xs.a[3])
	if s, ok := e.intsInit(r.Input[1]); !ok || !slices.Equal(s, []int64{-1, c, hw}) {
		return
	}
	w, wd, ok := e.floatInit(mm.Input[1])
	if !ok || len(wd) != 2 || wd[0] != c {
		return
	}
	o := wd[1]
	out := mm.Output[0]
	var bias []float32
	var add *onnxpb.NodeProto
	if a := g.soleConsumer(out); a != nil && a.GetOpType() == "Add" && len(a.Input) == 2 && len(a.Attribute) == 0 {
		other := a.Input[1]
		if other == out {
			other = a.Input[0]
		}
		if v, d, ok := e.floatInit(other); ok && other != out && len(v) == int(o) && len(d) >= 1 && len(d) <= 3 && d[len(d)-1] == o {
			bias, add = v, a
		}
	}
	wt, _ := transposeFloats(w, []int{int(c), int(o)}, []int{1, 0})
	base := strings.TrimSuffix(strings.TrimSuffix(mm.Input[1], "_T"), "_reshaped")
	k, err := e.init(base+"_1x1", []int{int(o), int(c), 1, 1}, wt)
	if err != nil {
		return
	}
	convIn := []string{x, k}
	if add != nil {
		b, err := e.init(base+"_bias", []int{int(o)}, bias)
		if err != nil {
			return
		}
		convIn = append(convIn, b)
		out = add.Output[0]
		g.removed[add] = true
	}
	cv, rs := e.uniq(r.GetName()+"_conv"), e.uniq(t.GetName()+"_reshape")
	r.OpType, r.Input, r.Output = ptr("Conv"), convIn, []string{cv}
	r.Attribute = []*onnxpb.AttributeProto{attrInts("kernel_shape", []int{1, 1}), attrInt("group", 1)}
	t.OpType, t.Input, t.Output, t.Attribute = ptr("Reshape"), []string{cv, e.ints64([]int64{-1, o, hw}, false)}, []string{rs}, nil
	mm.OpType, mm.Input, mm.Output = ptr("Transpose"), []string{rs}, []string{out}
	mm.Attribute = []*onnxpb.AttributeProto{attrInts("perm", []int{0, 2, 1})}
}
