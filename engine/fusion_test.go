package engine_test

import (
	"math"
	"slices"
	"testing"

	"github.com/artnet/artnet/engine"
	. "github.com/gomlx/gomlx/pkg/core/graph"
	"github.com/gomlx/gomlx/pkg/core/tensors"
)

// TestFusionSameBits: a graph of elementwise chains — SiLU and its gradient, an Adam-like
// update, a chain shared by two consumers, a broadcast operand that must stay unfused, a
// reduction in the middle — runs fused nodes on "go" and gives the same bits as "go:nofuse".
func TestFusionSameBits(t *testing.T) {
	if err := engine.FusedError(); err != nil {
		t.Fatal(err)
	}
	graphFn := func(x, m, v, row, img, ch, se *Node) []*Node {
		// 4-D: batch norm against per-channel vectors, squeeze-excitation scaling, a mean's gradient.
		mean4 := ReduceAndKeep(img, ReduceMean, 0, 2, 3)
		bn := Add(Mul(Sub(img, mean4), ch), MulScalar(ch, 0.5))
		seOut := Mul(Mul(img, Sigmoid(img)), se)
		g4 := Gradient(ReduceAllSum(Mul(seOut, bn)), img)[0]
		outs4 := []*Node{bn, seOut, g4}
		silu := Mul(x, Sigmoid(x))
		grad := Gradient(ReduceAllSum(Mul(silu, silu)), x)[0]
		m2 := Add(MulScalar(m, 0.9), MulScalar(grad, 0.1))
		v2 := Add(MulScalar(Abs(v), 0.999), MulScalar(Square(grad), 0.001))
		step := Div(MulScalar(m2, 0.01), AddScalar(Sqrt(v2), 1e-8))
		shared := Sub(x, MulScalar(v, 2)) // used twice: materialized once
		a := Mul(shared, Neg(m))
		c := Add(shared, row) // row [1, 64] broadcast: not fused into c
		mean := ReduceSum(Mul(a, a), 1)
		return append([]*Node{Sub(x, step), m2, v2, a, c, mean, grad, silu}, outs4...)
	}
	run := func(config string) [][]float32 {
		in := []*tensors.Tensor{shapedF32(1, 32, 64), shapedF32(2, 32, 64), shapedF32(3, 32, 64), shapedF32(4, 1, 64),
			reshaped(shapedF32(5, 4*6, 16*16), 4, 6, 16, 16), reshaped(shapedF32(6, 1, 6), 1, 6, 1, 1), reshaped(shapedF32(7, 4, 6), 4, 6, 1, 1)}
		b, err := engine.NewBackend(config)
		if err != nil {
			t.Fatal(err)
		}
		defer b.Finalize()
		exec, err := NewExec(b, func(xs []*Node) []*Node { return graphFn(xs[0], xs[1], xs[2], xs[3], xs[4], xs[5], xs[6]) })
		if err != nil {
			t.Fatal(err)
		}
		var outs [][]float32
		for _, o := range exec.MustExec(in) {
			v, err := tensors.CopyFlatData[float32](o)
			if err != nil {
				t.Fatal(err)
			}
			outs = append(outs, v)
		}
		return outs
	}
	before, bBefore := engine.FusedRuns(), engine.FusedBroadcastRuns()
	fused := run("go")
	if engine.FusedRuns() == before {
		t.Fatal(`no fused node ran on "go"`)
	}
	if engine.FusedBroadcastRuns() == bBefore {
		t.Fatal(`no fused node read a broadcast operand on "go"`)
	}
	before = engine.FusedRuns()
	plain := run("go:nofuse")
	if engine.FusedRuns() != before {
		t.Fatal(`fused nodes ran on "go:nofuse"`)
	}
	for i := range plain {
		if !slices.Equal(fused[i], plain[i]) {
			for j := range fused[i] {
				if a, b := fused[i][j], plain[i][j]; math.Float32bits(a) != math.Float32bits(b) && !(a != a && b != b) {
					t.Errorf("output #%d differs between fused and unfused runs: value #%d %g vs %g", i, j, fused[i][j], plain[i][j])
					break
				}
			}
		}
	}
}

// shapedF32 is a [rows, cols] float32 tensor of varied values (seeded by k), NaN-free.
func shapedF32(k, rows, cols int) *tensors.Tensor {
	x := tensors.FromShape(shapesF32(rows, cols))
	tensors.MutableFlatData(x, func(v []float32) {
		for i := range v {
			v[i] = float32((i*7+k*13)%101)/50 - 1
		}
	})
	return x
}

// reshaped returns x's values as a tensor of dims.
func reshaped(x *tensors.Tensor, dims ...int) *tensors.Tensor {
	v, err := tensors.CopyFlatData[float32](x)
	if err != nil {
		panic(err)
	}
	return tensors.FromFlatDataAndDimensions(v, dims...)
}
