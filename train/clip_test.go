package train

import (
	"math"
	"slices"
	"testing"

	"github.com/gomlx/gomlx/pkg/core/graph"
	"github.com/gomlx/gomlx/pkg/core/tensors"
	gomlxcontext "github.com/gomlx/gomlx/pkg/ml/context"
)

// TestClipTrainableGradientsOrder: the clipped gradients of a training step are the same bits
// whatever order the trainable variables were created in (a fresh run creates them in the
// model's build order, a resumed run in its checkpoint's sorted order). The gradients are chosen
// so that float32 sums of their squares differ with the order: 4 + 2⁻²² rounds back to 4 four
// times, while 4·2⁻²² + 4 = 4 + 2⁻²⁰; summed in creation order, the norm, the clipping scale
// and the clipped gradients differed between the two contexts.
func TestClipTrainableGradientsOrder(t *testing.T) {
	b := lossBackend(t)
	grads := map[string]float32{"a": 2, "b": 0x1p-11, "c": 0x1p-11, "d": 0x1p-11, "e": 0x1p-11}
	clipped := func(order []string) map[string]uint32 {
		ctx := gomlxcontext.New()
		for _, name := range order {
			ctx.VariableWithValue(name, []float32{1})
		}
		exec, err := gomlxcontext.NewExec(b, ctx, func(ctx *gomlxcontext.Context, x *graph.Node) []*graph.Node {
			g := x.Graph()
			var loss *graph.Node
			for v := range ctx.IterVariables() {
				term := graph.ReduceAllSum(graph.Mul(v.ValueGraph(g), graph.Const(g, []float32{grads[v.Name()]})))
				if loss == nil {
					loss = term
				} else {
					loss = graph.Add(loss, term)
				}
			}
			loss = graph.Mul(loss, x)
			return clipTrainableGradients(ctx, g, ctx.BuildTrainableVariablesGradientsGraph(loss), 1)
		})
		if err != nil {
			t.Fatal(err)
		}
		out, err := exec.Exec(float32(1))
		if err != nil {
			t.Fatal(err)
		}
		got := map[string]uint32{}
		for i, name := range order { // ctx's variable order is creation order
			got[name] = math.Float32bits(tensors.MustCopyFlatData[float32](out[i])[0])
		}
		return got
	}
	names := []string{"a", "b", "c", "d", "e"}
	sorted := clipped(names)
	rev := slices.Clone(names)
	slices.Reverse(rev)
	reversed := clipped(rev)
	if a := math.Float32frombits(sorted["a"]); math.Abs(float64(a)-1) > 1e-5 {
		t.Fatalf("clipped gradient of a = %g, want ≈ 1 (2 scaled to norm 1)", a)
	}
	for _, name := range names {
		if sorted[name] != reversed[name] {
			t.Errorf("clipped gradient of %s: %g with the variables created in name order, %g in reverse order",
				name, math.Float32frombits(sorted[name]), math.Float32frombits(reversed[name]))
		}
	}
}
