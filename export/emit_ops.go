package export

// Lowering of the structural ops (elementwise broadcasting, transpose, broadcast, reduce,
// slice, pad, dot, convolution, batch norm) into ONNX nodes.

import (
	"fmt"
	"math"
	"slices"
	"sort"

	"github.com/gomlx/gomlx/backends"
)

// elementwiseInputs returns the inputs of an elementwise op. An input that is a
// BroadcastInDim is passed without its Expand (ONNX broadcasts) when another, non-broadcast
// input already has the full output shape.
func (e *emitter) elementwiseInputs(a *rec) ([]string, error) {
	b := e.b[a.id]
	full := -1
	for j, in := range a.inputs {
		if in.op != backends.OpTypeBroadcastInDim && slices.Equal(in.shape.Dimensions, a.shape.Dimensions) &&
			slices.Equal(b.inputs[j].shape.Dimensions, b.shape.Dimensions) {
			full = j
			break
		}
	}
	out := make([]string, len(a.inputs))
	for j, in := range a.inputs {
		var err error
		if full >= 0 && j != full && in.op == backends.OpTypeBroadcastInDim {
			out[j], err = e.broadcast(in, e.b[in.id], true)
			if err != nil {
				return nil, err
			}
			continue
		}
		out[j], err = e.value(in.id)
		if err != nil {
			return nil, err
		}
	}
	return out, nil
}

func isIdentityPerm(p []int) bool {
	for i, v := range p {
		if i != v {
			return false
		}
	}
	return true
}

func (e *emitter) transpose(scope, in string, perm []int) string {
	if isIdentityPerm(perm) {
		return in
	}
	key := fmt.Sprint(in, " T", perm)
	if name, ok := e.folded[key]; ok {
		return name
	}
	if t := e.initByName[in]; t != nil && len(t.FloatData) > 0 {
		// Fold: transpose the float32 initializer's data now.
		dims := make([]int, len(t.Dims))
		for i, d := range t.Dims {
			dims[i] = int(d)
		}
		data, outDims := transposeFloats(t.FloatData, dims, perm)
		if name, err := e.init(in+"_T", outDims, data); err == nil {
			e.folded[key] = name
			return name
		}
	}
	return e.node(scope, "Transpose", []string{in}, attrInts("perm", perm))
}

// broadcast emits BroadcastInDim: (Transpose), Reshape to the output rank with 1s on the new
// axes, and (unless aligned) Expand to the output shape.
func (e *emitter) broadcast(a, b *rec, aligned bool) (string, error) {
	src, srcB := a.inputs[0], b.inputs[0]
	in, err := e.value(src.id)
	if err != nil {
		return "", err
	}
	axes := a.ints[0]
	rank := a.shape.Rank()
	// Operand axes sorted by their output axis.
	order := make([]int, len(axes))
	for i := range order {
		order[i] = i
	}
	sort.SliceStable(order, func(i, j int) bool { return axes[order[i]] < axes[order[j]] })
	in = e.transpose(a.scope, in, order)
	alA, alB := make([]int, rank), make([]int, rank)
	for j := range alA {
		alA[j], alB[j] = 1, 1
	}
	for p, j := range axes {
		alA[j], alB[j] = src.shape.Dimensions[p], srcB.shape.Dimensions[p]
	}
	if src.shape.Rank() != 0 && src.shape.Rank() != rank {
		shape, err := e.shapeTensor(a, alA, alB, true)
		if err != nil {
			return "", err
		}
		in = e.node(a.scope, "Reshape", []string{in, shape})
	}
	if aligned {
		return in, nil
	}
	tA, tB := slices.Clone(a.shape.Dimensions), slices.Clone(b.shape.Dimensions)
	same := true
	for j := range tA {
		if alA[j] == tA[j] && alB[j] == tB[j] && src.shape.Rank() != 0 {
			tA[j], tB[j] = 1, 1
		} else {
			same = false
		}
	}
	if same {
		return in, nil
	}
	shape, err := e.shapeTensor(a, tA, tB, false)
	if err != nil {
		return "", err
	}
	return e.node(a.scope, "Expand", []string{in, shape}), nil
}

func (e *emitter) reduce(a *rec) (string, error) {
	in, err := e.inputs(a)
	if err != nil {
		return "", err
	}
	axes := a.ints[0]
	if len(axes) == 0 {
		return in[0], nil
	}
	switch a.op {
	case backends.OpTypeReduceSum:
		return e.node(a.scope, "ReduceSum", []string{in[0], e.ints64(toInt64s(axes), false)}, attrInt("keepdims", 0)), nil
	case backends.OpTypeReduceMax:
		return e.node(a.scope, "ReduceMax", in, attrInts("axes", axes), attrInt("keepdims", 0)), nil
	case backends.OpTypeReduceMin:
		return e.node(a.scope, "ReduceMin", in, attrInts("axes", axes), attrInt("keepdims", 0)), nil
	default:
		return e.node(a.scope, "ReduceProd", in, attrInts("axes", axes), attrInt("keepdims", 0)), nil
	}
}

func (e *emitter) slice(a, b *rec) (string, error) {
	in, err := e.inputs(a)
	if err != nil {
		return "", err
	}
	dA, dB := a.inputs[0].shape.Dimensions, b.inputs[0].shape.Dimensions
	var starts, ends, axes, steps []int64
	for ax := range dA {
		sA, lA, stA := a.ints[0][ax], a.ints[1][ax], a.ints[2][ax]
		sB, lB, stB := b.ints[0][ax], b.ints[1][ax], b.ints[2][ax]
		fullA := sA == 0 && lA == dA[ax] && stA == 1
		fullB := sB == 0 && lB == dB[ax] && stB == 1
		switch {
		case fullA && fullB:
			continue
		case sA == sB && lA == lB && stA == stB:
			starts, ends = append(starts, int64(sA)), append(ends, int64(lA))
		case sA == sB && stA == stB && lA == dA[ax] && lB == dB[ax]:
			starts, ends = append(starts, int64(sA)), append(ends, math.MaxInt64)
		default:
			return "", e.errf(a, "slice of axis %d depends on the batch size", ax)
		}
		axes, steps = append(axes, int64(ax)), append(steps, int64(stA))
	}
	if len(axes) == 0 {
		return in[0], nil
	}
	return e.node(a.scope, "Slice", []string{in[0], e.ints64(starts, false), e.ints64(ends, false),
		e.ints64(axes, false), e.ints64(steps, false)}), nil
}

func (e *emitter) pad(a *rec) (string, error) {
	in, err := e.inputs(a)
	if err != nil {
		return "", err
	}
	n := len(a.padAxes)
	pads := make([]int64, 2*n)
	for i, p := range a.padAxes {
		if p.Interior != 0 || p.Start < 0 || p.End < 0 {
			return "", e.errf(a, "interior or negative padding not supported")
		}
		pads[i], pads[n+i] = int64(p.Start), int64(p.End)
	}
	return e.node(a.scope, "Pad", []string{in[0], e.ints64(pads, false), in[1]}, attrString("mode", "constant")), nil
}

func (e *emitter) dotGeneral(a *rec) (string, error) {
	in, err := e.inputs(a)
	if err != nil {
		return "", err
	}
	lc, lb, rc, rb := a.ints[0], a.ints[1], a.ints[2], a.ints[3]
	rl, rr := a.inputs[0].shape.Rank(), a.inputs[1].shape.Rank()
	nb := len(lb)
	leading := func(v []int) bool {
		for i, x := range v {
			if x != i {
				return false
			}
		}
		return true
	}
	if len(lc) == 1 && lc[0] == rl-1 && leading(lb) && leading(rb) {
		if nb == 0 && ((rr == 2 && rc[0] == 0) || (rr == 1 && rc[0] == 0)) {
			return e.node(a.scope, "MatMul", in), nil
		}
		if nb == 0 && rr == 2 && rc[0] == 1 {
			// x · Wᵀ (a Linear layer): the transpose of a weight is folded into its initializer.
			return e.node(a.scope, "MatMul", []string{in[0], e.transpose(a.scope, in[1], []int{1, 0})}), nil
		}
		if nb > 0 && rl == nb+2 && rr == nb+2 && rc[0] == nb {
			// Batched matmul: ONNX MatMul broadcasts the batch axes, so an operand that is only
			// broadcast along them (e.g. a weight shared by the batch) needs no Expand.
			for j, other := range []int{1, 0} {
				src, dst := a.inputs[j], a.inputs[other]
				if src.op != backends.OpTypeBroadcastInDim || dst.op == backends.OpTypeBroadcastInDim {
					continue
				}
				if al, ok, err := e.batchOnlyBroadcast(src, nb); err != nil {
					return "", err
				} else if ok {
					in[j] = al
				}
				break
			}
			return e.node(a.scope, "MatMul", in), nil
		}
	}
	if nb == 0 && len(lc) == 1 && rr == 2 {
		// Contracting a middle axis of lhs with a matrix (e.g. a 1×1 projection of [B, C, T]):
		// move it last, then MatMul.
		var perm []int
		for i := 0; i < rl; i++ {
			if i != lc[0] {
				perm = append(perm, i)
			}
		}
		x := e.transpose(a.scope, in[0], append(perm, lc[0]))
		w := in[1]
		if rc[0] == 1 {
			w = e.transpose(a.scope, w, []int{1, 0})
		}
		return e.node(a.scope, "MatMul", []string{x, w}), nil
	}
	if nb > 0 && leading(lb) && leading(rb) && len(lc) == 1 && rl == nb+1 && lc[0] == nb && rr == nb+2 && rc[0] == nb {
		// Batched vector × matrix (e.g. attention pooling [B,T]·[B,T,D]): [b…,1,k]·[b…,k,n].
		ax := e.ints64([]int64{int64(nb)}, false)
		x := e.node(a.scope, "Unsqueeze", []string{in[0], ax})
		y := e.node(a.scope, "MatMul", []string{x, in[1]})
		return e.node(a.scope, "Squeeze", []string{y, ax}), nil
	}
	// General case: Einsum.
	letter := 0
	next := func() byte { l := byte('a' + letter); letter++; return l }
	lhs, rhs := make([]byte, rl), make([]byte, rr)
	var out []byte
	for i := range lb {
		l := next()
		lhs[lb[i]], rhs[rb[i]] = l, l
		out = append(out, l)
	}
	for i := range lc {
		l := next()
		lhs[lc[i]], rhs[rc[i]] = l, l
	}
	for i := range lhs {
		if lhs[i] == 0 {
			lhs[i] = next()
			out = append(out, lhs[i])
		}
	}
	for i := range rhs {
		if rhs[i] == 0 {
			rhs[i] = next()
			out = append(out, rhs[i])
		}
	}
	if letter > 26 {
		return "", e.errf(a, "too many axes for Einsum")
	}
	eq := string(lhs) + "," + string(rhs) + "->" + string(out)
	return e.node(a.scope, "Einsum", in, attrString("equation", eq)), nil
}

// batchOnlyBroadcast returns the BroadcastInDim src without its Expand when the broadcast
// leaves the last rank-nb axes unchanged (so MatMul's own broadcasting does the rest).
func (e *emitter) batchOnlyBroadcast(src *rec, nb int) (string, bool, error) {
	in := src.inputs[0]
	axes := src.ints[0]
	rank := src.shape.Rank()
	if in.shape.Rank() != rank || !isIdentityPerm(axes) {
		return "", false, nil
	}
	for j := nb; j < rank; j++ {
		if in.shape.Dimensions[j] != src.shape.Dimensions[j] {
			return "", false, nil
		}
	}
	v, err := e.value(in.id)
	return v, err == nil, err
}

func (e *emitter) conv(a *rec) (string, error) {
	in, err := e.inputs(a)
	if err != nil {
		return "", err
	}
	c := a.conv
	strides, inDil, kDil := a.ints[0], a.ints[1], a.ints[2]
	for _, d := range inDil {
		if d != 1 {
			return "", e.errf(a, "input dilations %v not supported", inDil)
		}
	}
	if a.axis > 1 {
		return "", e.errf(a, "batch group count %d not supported", a.axis)
	}
	ns := len(c.InputSpatial)
	inPerm := append([]int{c.InputBatch, c.InputChannels}, c.InputSpatial...)
	kPerm := append([]int{c.KernelOutputChannels, c.KernelInputChannels}, c.KernelSpatial...)
	outPerm := make([]int, ns+2)
	outPerm[c.OutputBatch], outPerm[c.OutputChannels] = 0, 1
	for i, p := range c.OutputSpatial {
		outPerm[p] = 2 + i
	}
	x := e.transpose(a.scope, in[0], inPerm)
	k := in[1]
	if !isIdentityPerm(kPerm) {
		k = e.transpose(a.scope, k, kPerm)
	}
	kshape := make([]int, ns)
	for i, ax := range c.KernelSpatial {
		kshape[i] = a.inputs[1].shape.Dimensions[ax]
	}
	pads := make([]int, 2*ns)
	for i, p := range a.pairs {
		pads[i], pads[ns+i] = p[0], p[1]
	}
	y := e.node(a.scope, "Conv", []string{x, k},
		attrInts("kernel_shape", kshape), attrInts("strides", strides), attrInts("dilations", kDil),
		attrInts("pads", pads), attrInt("group", int64(a.groups)))
	return e.transpose(a.scope, y, outPerm), nil
}

func (e *emitter) batchNorm(a *rec) (string, error) {
	in, err := e.inputs(a)
	if err != nil {
		return "", err
	}
	rank := a.shape.Rank()
	if a.axis == 1 && rank >= 2 {
		return e.node(a.scope, "BatchNormalization", in, attrFloat("epsilon", a.eps), attrInt("training_mode", 0)), nil
	}
	// Composite: (x - mean) * scale / sqrt(var + eps) + offset, parameters reshaped to broadcast.
	shape := make([]int64, rank)
	for i := range shape {
		shape[i] = 1
	}
	shape[a.axis] = -1
	sh := e.ints64(shape, false)
	r := func(v string) string { return e.node(a.scope, "Reshape", []string{v, sh}) }
	eps, err := e.scalarLike(a.shape.DType, float64(a.eps))
	if err != nil {
		return "", e.errf(a, "%v", err)
	}
	inv := e.node(a.scope, "Div", []string{in[1], e.node(a.scope, "Sqrt", []string{e.node(a.scope, "Add", []string{in[4], eps})})})
	y := e.node(a.scope, "Mul", []string{e.node(a.scope, "Sub", []string{in[0], r(in[3])}), r(inv)})
	return e.node(a.scope, "Add", []string{y, r(in[2])}), nil
}

// transposeFloats returns data (row-major with dims) transposed by perm (ONNX semantics:
// output axis i is input axis perm[i]).
func transposeFloats(data []float32, dims, perm []int) ([]float32, []int) {
	rank := len(dims)
	outDims := make([]int, rank)
	for i, p := range perm {
		outDims[i] = dims[p]
	}
	inStrides := make([]int, rank)
	st := 1
	for i := rank - 1; i >= 0; i-- {
		inStrides[i] = st
		st *= dims[i]
	}
	out := make([]float32, len(data))
	idx := make([]int, rank) // index in the output
	for k := range out {
		off := 0
		for i := range idx {
			off += idx[i] * inStrides[perm[i]]
		}
		out[k] = data[off]
		for i := rank - 1; i >= 0; i-- {
			idx[i]++
			if idx[i] < outDims[i] {
				break
			}
			idx[i] = 0
		}
	}
	return out, outDims
}

// prune drops nodes whose outputs nothing uses and initializers no node uses (left behind by
