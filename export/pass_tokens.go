package export

import (
	"slices"
	"strings"

	"github.com/artnet/artnet/onnxpb"
)

// tokensPass: a 1×1 convolution read out as tokens (the projection) becomes Conv → Reshape →
// Transpose, as PyTorch exports it (fuseTokens).
var tokensPass = nodePass{label: "tokens", op: "MatMul", apply: (*emitter).fuseTokens, prune: true}

// fuseTokens rewrites a 1×1 convolution read out as tokens — MatMul(Transpose(Reshape(x
// [B,C,H,W] → [-1,C,H·W]), perm [0,2,1]), W [C,O]) → [B,H·W,O], optionally + bias [O] (models'
// projection) — as Conv(x, Wᵀ [O,C,1,1], bias) → Reshape [-1,O,H·W] → Transpose [0,2,1], the
// form PyTorch exports.
func (e *emitter) fuseTokens(g *nodeGraph, shapes map[string]valueShape, mm *onnxpb.NodeProto) {
	if len(mm.Input) != 2 || len(mm.Output) != 1 || len(mm.Attribute) != 0 {
		return
	}
	t := g.soleProducer(mm.Input[0], "Transpose", mm)
	if t == nil || len(t.Input) != 1 {
		return
	}
	if p := attrOf(t, "perm"); p == nil || !slices.Equal(p.Ints, []int64{0, 2, 1}) {
		return
	}
	r := g.soleProducer(t.Input[0], "Reshape", t)
	if r == nil || len(r.Input) != 2 || attrOf(r, "allowzero") != nil {
		return
	}
	x := r.Input[0]
	xs, ok := e.imageShape(shapes, x)
	if !ok {
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
