package export

import (
	"slices"
	"strings"

	"github.com/artnet/artnet/onnxpb"
)

// pointwisePass: Reshape(x [B,C,H,W] → [-1,C,H·W]) → MatMul(W [1,O,C] or [O,C], ·) →
// Reshape(→ [-1,O,H,W]) becomes Conv(x, W [O,C,1,1]) with kernel 1×1 (models.pointwise).
var pointwisePass = nodePass{label: "pointwise", op: "Reshape", apply: (*emitter).fusePointwise}

// fusePointwise rewrites r2 = Reshape(MatMul(W, Reshape(x))) as a 1×1 Conv (pointwisePass).
func (e *emitter) fusePointwise(g *nodeGraph, shapes map[string]valueShape, r2 *onnxpb.NodeProto) {
	if len(r2.Input) != 2 || len(r2.Output) != 1 || attrOf(r2, "allowzero") != nil {
		return
	}
	mm := g.soleProducer(r2.Input[0], "MatMul", r2)
	if mm == nil || len(mm.Input) != 2 {
		return
	}
	r1 := g.soleProducer(mm.Input[1], "Reshape", mm)
	if r1 == nil || len(r1.Input) != 2 || attrOf(r1, "allowzero") != nil {
		return
	}
	x := r1.Input[0]
	xs, ok := e.imageShape(shapes, x)
	if !ok {
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
