package models

import (
	"testing"

	"github.com/gomlx/gomlx/pkg/core/dtypes"
	"github.com/gomlx/gomlx/pkg/core/graph"
	"github.com/gomlx/gomlx/pkg/core/shapes"
	"github.com/gomlx/gomlx/pkg/ml/context"

	"github.com/artnet/artnet/models/spec"
)

// TestBuildBF16Graph: with ParamComputeDType = BFloat16 on a graph, Build computes in bf16
// (the heads' matrix products take bf16 operands) yet keeps float32 variables and returns
// float32 outputs, and its training graph (batch-norm statistics update included) and
// gradients build — the graph XLA runs for train.precision: bf16. Nothing is executed (the go
// backend does not run bf16); another graph of the same context stays float32.
func TestBuildBF16Graph(t *testing.T) {
	cfg := spec.Tiny()
	ctx := context.New()
	g := graph.NewGraph(backend(t), "bf16")
	ctx.SetGraphParam(g, ParamComputeDType, dtypes.BFloat16.String())
	ctx.SetTraining(g, true)
	x := graph.Parameter(g, "x", shapes.Make(dtypes.Float32, 2, 3, cfg.ImageSize, cfg.ImageSize))
	var out Outputs
	if err := catch(func() { out = Build(ctx, cfg, x) }); err != nil {
		t.Fatalf("bf16 Build: %v", err)
	}
	for task, l := range out.Logits {
		if l.DType() != dtypes.Float32 || out.Probs[task].DType() != dtypes.Float32 {
			t.Errorf("%s logits %s, probs %s: want float32 outputs", task, l.DType(), out.Probs[task].DType())
		}
	}
	if out.Attention.DType() != dtypes.Float32 {
		t.Errorf("attention %s, want float32", out.Attention.DType())
	}
	bf16Ops := 0
	for _, n := range g.Nodes() {
		if n.DType() == dtypes.BFloat16 {
			bf16Ops++
		}
	}
	if bf16Ops < 50 {
		t.Errorf("only %d bf16 nodes in the graph: the model does not compute in bf16", bf16Ops)
	}
	var params []*graph.Node
	for v := range ctx.IterVariables() {
		if v.Shape().DType.IsFloat() && v.Shape().DType != dtypes.Float32 {
			t.Errorf("variable %s is %s, want float32", v.ScopeAndName(), v.Shape().DType)
		}
		if v.Trainable && v.InUseByGraph(g) {
			params = append(params, v.ValueGraph(g))
		}
	}
	loss := graph.ReduceAllSum(out.Logits["style"])
	if err := catch(func() { graph.Gradient(loss, params...) }); err != nil {
		t.Fatalf("bf16 gradient graph: %v", err)
	}

	g2 := graph.NewGraph(backend(t), "f32")
	o2 := Build(ctx.Reuse(), cfg, graph.Parameter(g2, "x", shapes.Make(dtypes.Float32, 1, 3, cfg.ImageSize, cfg.ImageSize)))
	for _, n := range g2.Nodes() {
		if n.DType() == dtypes.BFloat16 {
			t.Fatalf("the other graph has a bf16 node: %s", n)
		}
	}
	_ = o2
}
