package export_test

import (
	"strings"
	"testing"

	"github.com/gomlx/gomlx/pkg/core/dtypes"
	. "github.com/gomlx/gomlx/pkg/core/graph"
	"github.com/gomlx/gomlx/pkg/core/shapes"
	"github.com/gomlx/gomlx/pkg/core/tensors/images"
	"github.com/gomlx/gomlx/pkg/ml/context"

	"github.com/artnet/artnet/onnxpb"
)

// pointwiseLike is models.pointwise (a 1×1 conv as a batched matrix product); with swap the
// result is reshaped to [B, O, W, H] instead of [B, O, H, W] — no longer a convolution's layout.
func pointwiseLike(x, w *Node, swap bool) *Node {
	d := x.Shape().Dimensions
	b, c, h, wd := d[0], d[1], d[2], d[3]
	o := w.Shape().Dimensions[0]
	w2 := BroadcastToDims(Reshape(w, 1, o, c), b, o, c)
	y := DotGeneral(w2, []int{2}, []int{0}, Reshape(x, b, c, h*wd), []int{1}, []int{0})
	if swap {
		return Reshape(y, b, o, wd, h)
	}
	return Reshape(y, b, o, h, wd)
}

// fusionModel has one pattern each rewrite must fuse and six it must leave (partly) alone.
func fusionModel(ctx *context.Context, x *Node) []*Node { // x [B, 4, 6, 5]
	g := x.Graph()
	w := func(name string, dims ...int) *Node {
		return ctx.In(name).VariableWithShape("weight", shapes.Make(dtypes.Float32, dims...)).ValueGraph(g)
	}
	perCh := func(name string, seed uint64, n int) *Node {
		v := ctx.In(name).VariableWithValue("v", randInput(seed, n)).ValueGraph(g)
		return Reshape(v, 1, n, 1, 1)
	}
	// Fused: pointwise conv, then (y·s + t) − m per channel (a batch norm), SiLU.
	a := pointwiseLike(x, w("pw1", 6, 4, 1, 1), false)
	a = Sub(Add(Mul(a, perCh("s", 1, 6)), perCh("t", 2, 6)), perCh("m", 3, 6))
	a = Mul(a, Sigmoid(a))
	// Lifted: squeeze-excitation (mean over H, W → dense + bias → Sigmoid → dense + bias →
	// Sigmoid → scale a's channels) becomes GlobalAveragePool → 1×1 Convs.
	dense := func(name string, v *Node, out int) *Node {
		in := v.Shape().Dimensions[1]
		y := DotGeneral(v, []int{1}, nil, w(name, out, in), []int{1}, nil)
		return Add(y, Reshape(ctx.In(name).VariableWithValue("bias", randInput(uint64(out), out)).ValueGraph(g), 1, out))
	}
	se := Sigmoid(dense("fc2", Sigmoid(dense("fc1", ReduceMean(a, 2, 3), 3)), 6))
	a2 := Mul(a, Reshape(se, se.Shape().Dimensions[0], 6, 1, 1))
	// Not fused: a 3×3 conv times a spatial (not per-channel) constant.
	c := Convolve(a2, w("c3", 6, 6, 3, 3)).ChannelsAxis(images.ChannelsFirst).PadSame().Done()
	c = Mul(c, Reshape(ctx.In("spatial").VariableWithValue("v", randInput(4, 30)).ValueGraph(g), 1, 1, 6, 5))
	// Not fused: a pointwise product whose result is laid out [B, O, W, H].
	d := pointwiseLike(c, w("pw2", 3, 6, 1, 1), true)
	// Not folded: a conv output used twice.
	e := Convolve(c, w("c1", 2, 6, 3, 3)).ChannelsAxis(images.ChannelsFirst).PadSame().Done()
	f := Add(Mul(e, perCh("s2", 6, 2)), e)
	// Tokens read out by a 1×1 projection (models' project): Conv → Reshape → Transpose, its bias
	// folded; a second one whose "bias" varies per token keeps its Add.
	tokens := func(name string, v *Node, out int, perToken bool) *Node {
		d := v.Shape().Dimensions
		xs := Reshape(v, d[0], d[1], d[2]*d[3])
		y := DotGeneral(xs, []int{1}, nil, w(name, out, d[1]), []int{1}, nil) // [B, T, out]
		n, dims := out, []int{1, 1, out}
		if perToken {
			n, dims = d[2]*d[3]*out, []int{1, d[2] * d[3], out}
		}
		return Add(y, Reshape(ctx.In(name).VariableWithValue("bias", randInput(uint64(n), n)).ValueGraph(g), dims...))
	}
	tk := Add(tokens("tok1", c, 4, false), tokens("tok2", c, 4, true))
	// Max(f, 0) is a Relu; Max(mean, 0.5) is not. Not lifted: the spatial mean (not followed by
	// dense layers and a Reshape).
	return []*Node{a, d, Max(f, ZerosLike(f)), MaxScalar(ReduceMean(c, 2, 3), 0.5), tk}
}

func opCount(m *onnxpb.ModelProto, op string) int {
	n := 0
	for _, nd := range m.GetGraph().GetNode() {
		if nd.GetOpType() == op {
			n++
		}
	}
	return n
}

// TestConvFusion: the 1×1-conv and affine-folding rewrites fire where the pattern matches
// exactly, fall back to the plain form where it does not, and keep GoMLX parity either way.
func TestConvFusion(t *testing.T) {
	ctx := newContext()
	m := checkParity(t, ctx, fusionModel, []int{4, 6, 5}, []string{"a", "d", "f", "mean", "tokens"}, testBatches, 1e-5)
	t.Log(opCounts(m))
	want := map[string]int{
		"Conv":              7, // pw1 (from MatMul), fc1, fc2, c3, c1, tok1, tok2
		"Transpose":         2, // tok1, tok2 (Conv → Reshape → Transpose)
		"MatMul":            1, // pw2: output layout [B, O, W, H]
		"Mul":               5, // SiLU, SE scale, the spatial constant, e·s2 (e has two consumers), mean's 1/HW
		"Add":               3, // f = e·s2 + e, tok2's per-token bias, tok1 + tok2
		"Sub":               0, // folded into pw1's bias
		"GlobalAveragePool": 1, // SE
		"ReduceSum":         1, // the output "mean"
		"Sigmoid":           3,
		"Relu":              1,
		"Max":               1,
	}
	for op, n := range want {
		if got := opCount(m, op); got != n {
			t.Errorf("%d %s nodes, want %d", got, op, n)
		}
	}
	for _, n := range m.GetGraph().GetNode() {
		if n.GetOpType() == "Conv" && len(n.GetInput()) == 3 {
			if w := n.GetInput()[1]; w != "pw1/weight_1x1_folded" && w != "tok1/weight_1x1" && !strings.HasPrefix(w, "fc") {
				t.Errorf("Conv %s has a bias (%v); only pw1's, fc1's, fc2's and tok1's should", n.GetName(), n.GetInput())
			}
		}
	}
	onnxCheck(t, m)
}
