package models

import (
	"fmt"
	"math"
	"math/rand"
	"testing"

	"github.com/gomlx/gomlx/pkg/core/graph"
	"github.com/gomlx/gomlx/pkg/core/tensors"
	"github.com/gomlx/gomlx/pkg/ml/context"
)

// naiveLSTM is PyTorch's nn.LSTM (batch_first, bidirectional, zero initial state) in float64,
// written directly from the documented equations. w[name] holds the flat row-major weights.
func naiveLSTM(x [][][]float64, w map[string][]float64, hidden, layers int) [][][]float64 {
	sig := func(v float64) float64 { return 1 / (1 + math.Exp(-v)) }
	for k := 0; k < layers; k++ {
		bsz, steps, in := len(x), len(x[0]), len(x[0][0])
		out := make([][][]float64, bsz)
		for b := range out {
			out[b] = make([][]float64, steps)
			for t := range out[b] {
				out[b][t] = make([]float64, 2*hidden)
			}
		}
		for dir := 0; dir < 2; dir++ {
			sfx := fmt.Sprintf("_l%d", k)
			if dir == 1 {
				sfx += "_reverse"
			}
			wih, whh, bih, bhh := w["weight_ih"+sfx], w["weight_hh"+sfx], w["bias_ih"+sfx], w["bias_hh"+sfx]
			for b := 0; b < bsz; b++ {
				h := make([]float64, hidden)
				c := make([]float64, hidden)
				for i := 0; i < steps; i++ {
					t := i
					if dir == 1 {
						t = steps - 1 - i
					}
					gates := make([]float64, 4*hidden)
					for r := 0; r < 4*hidden; r++ {
						s := bih[r] + bhh[r]
						for j := 0; j < in; j++ {
							s += wih[r*in+j] * x[b][t][j]
						}
						for j := 0; j < hidden; j++ {
							s += whh[r*hidden+j] * h[j]
						}
						gates[r] = s
					}
					for j := 0; j < hidden; j++ {
						ig, fg := sig(gates[j]), sig(gates[hidden+j])
						gg, og := math.Tanh(gates[2*hidden+j]), sig(gates[3*hidden+j])
						c[j] = fg*c[j] + ig*gg
						h[j] = og * math.Tanh(c[j])
						out[b][t][dir*hidden+j] = h[j]
					}
				}
			}
		}
		x = out
	}
	return x
}

func TestBiLSTMMatchesPyTorchEquations(t *testing.T) {
	const bsz, steps, in, hidden, layers = 2, 4, 3, 5, 2
	r := rand.New(rand.NewSource(7))
	ctx := context.New()
	weights := map[string][]float64{}
	lctx := ctx.In("lstm")
	for k := 0; k < layers; k++ {
		kin := in
		if k > 0 {
			kin = 2 * hidden
		}
		for _, sfx := range []string{fmt.Sprintf("_l%d", k), fmt.Sprintf("_l%d_reverse", k)} {
			for _, p := range []struct {
				name string
				dims []int
			}{{"weight_ih", []int{4 * hidden, kin}}, {"weight_hh", []int{4 * hidden, hidden}},
				{"bias_ih", []int{4 * hidden}}, {"bias_hh", []int{4 * hidden}}} {
				n := 1
				for _, d := range p.dims {
					n *= d
				}
				f64 := make([]float64, n)
				f32 := make([]float32, n)
				for i := range f64 {
					f32[i] = float32(r.Float64()*2 - 1)
					f64[i] = float64(f32[i])
				}
				weights[p.name+sfx] = f64
				lctx.VariableWithValue(p.name+sfx, tensors.FromFlatDataAndDimensions(f32, p.dims...))
			}
		}
	}
	x := make([][][]float64, bsz)
	xf := make([]float32, 0, bsz*steps*in)
	for b := range x {
		x[b] = make([][]float64, steps)
		for s := range x[b] {
			x[b][s] = make([]float64, in)
			for j := range x[b][s] {
				v := float32(r.NormFloat64())
				x[b][s][j] = float64(v)
				xf = append(xf, v)
			}
		}
	}
	want := naiveLSTM(x, weights, hidden, layers)

	exec := context.MustNewExec(backend(t), ctx.Reuse(), func(ctx *context.Context, xn *graph.Node) *graph.Node {
		return BiLSTM(ctx.In("lstm"), xn, hidden, layers)
	})
	out := exec.MustExec(tensors.FromFlatDataAndDimensions(xf, bsz, steps, in))[0]
	if got := out.Shape().Dimensions; len(got) != 3 || got[0] != bsz || got[1] != steps || got[2] != 2*hidden {
		t.Fatalf("output shape %v, want [%d %d %d]", got, bsz, steps, 2*hidden)
	}
	got := tensors.MustCopyFlatData[float32](out)
	worst := 0.0
	for b := 0; b < bsz; b++ {
		for s := 0; s < steps; s++ {
			for j := 0; j < 2*hidden; j++ {
				worst = math.Max(worst, math.Abs(float64(got[(b*steps+s)*2*hidden+j])-want[b][s][j]))
			}
		}
	}
	if worst > 1e-5 {
		t.Fatalf("BiLSTM differs from PyTorch's equations by %g (> 1e-5)", worst)
	}
	t.Logf("max abs difference to float64 reference: %.2g", worst)
}
