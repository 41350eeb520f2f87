package export

import (
	"slices"

	"github.com/artnet/artnet/onnxpb"
)

// affinePass: Conv(x, W[, b]) followed by a chain of Mul(·, s), Add(·, t), Sub(·, t) whose
// constants are per output channel (broadcastable to [1,O,1,…] — a batch norm in inference, a
// bias) or scalars becomes one Conv(x, W', b'); the chain stops at the first node that is not
// such an op or at a value with more than one consumer (foldAffine).
var affinePass = nodePass{label: "affine", op: "Conv", apply: func(e *emitter, g *nodeGraph, _ map[string]valueShape, n *onnxpb.NodeProto) {
	e.foldAffine(g, n)
}}

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
