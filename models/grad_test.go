package models

import (
	"math"
	"testing"

	"github.com/gomlx/gomlx/pkg/core/graph"
	"github.com/gomlx/gomlx/pkg/core/tensors"
	"github.com/gomlx/gomlx/pkg/ml/context"

	"github.com/artnet/artnet/models/spec"
)

// trainStep builds a training-mode graph returning the summed negative log-likelihood of class
// 0 of every task and the gradients of every trainable variable.
func trainStep(cfg spec.Config) func(ctx *context.Context, x *graph.Node) []*graph.Node {
	return func(ctx *context.Context, x *graph.Node) []*graph.Node {
		ctx.SetTraining(x.Graph(), true)
		o := Build(ctx, cfg, x)
		var loss *graph.Node
		for _, task := range spec.Tasks {
			l := graph.Neg(graph.ReduceAllSum(graph.Log(graph.SliceAxis(o.Probs[task], 1, graph.AxisRange(0, 1)))))
			if loss == nil {
				loss = l
			} else {
				loss = graph.Add(loss, l)
			}
		}
		return append([]*graph.Node{loss}, ctx.BuildTrainableVariablesGradientsGraph(loss)...)
	}
}

// TestGradientsReachEveryParameter runs a Tiny forward+backward step in training mode: every
// trainable variable gets a finite, non-zero gradient, and BatchNorm running statistics are not
// trainable.
func TestGradientsReachEveryParameter(t *testing.T) {
	cfg := spec.Tiny()
	ctx := seededContext(21)
	exec := context.MustNewExec(backend(t), ctx, trainStep(cfg))
	outs := exec.MustExec(randomImages(22, 2, cfg.ImageSize))
	var trainable []*context.Variable
	for v := range ctx.IterVariables() {
		if v.Trainable {
			trainable = append(trainable, v)
		}
		if isBufferName(v.Name()) && v.Trainable {
			t.Errorf("%s is trainable", v.ScopeAndName())
		}
	}
	if len(outs) != 1+len(trainable) {
		t.Fatalf("%d outputs for %d trainable variables", len(outs), len(trainable))
	}
	if l := tensors.ToScalar[float32](outs[0]); !(l > 0) || math.IsInf(float64(l), 0) {
		t.Fatalf("loss %g", l)
	}
	for i, v := range trainable {
		g := tensors.MustCopyFlatData[float32](outs[i+1])
		norm := 0.0
		for _, x := range g {
			if math.IsNaN(float64(x)) || math.IsInf(float64(x), 0) {
				t.Fatalf("%s: non-finite gradient", v.ScopeAndName())
			}
			norm += float64(x) * float64(x)
		}
		if norm == 0 {
			t.Errorf("%s: zero gradient", v.ScopeAndName())
		}
	}
}

// BenchmarkTinyTrainStep measures a Tiny forward+backward step at batch 8 on the pure-Go backend.
func BenchmarkTinyTrainStep(b *testing.B) {
	cfg := spec.Tiny()
	ctx := seededContext(23)
	exec := context.MustNewExec(backend(b), ctx, trainStep(cfg))
	images := randomImages(24, 8, cfg.ImageSize)
	exec.MustExec(images)
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		exec.MustExec(images)
	}
}

// BenchmarkTinyForward measures Tiny inference at batch 8.
func BenchmarkTinyForward(b *testing.B) {
	cfg := spec.Tiny()
	ctx := seededContext(25)
	exec := context.MustNewExec(backend(b), ctx, func(ctx *context.Context, x *graph.Node) *graph.Node {
		return Build(ctx, cfg, x).Probs["style"]
	})
	images := randomImages(26, 8, cfg.ImageSize)
	exec.MustExec(images)
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		exec.MustExec(images)
	}
}

// BenchmarkB0TrainStep96 measures a full-structure b0 (7 stages, 3×3 tokens) forward+backward
// step at 96×96, batch 4.
func BenchmarkB0TrainStep96(b *testing.B) {
	cfg := spec.Default()
	cfg.Variant = "b0"
	cfg.ImageSize, cfg.ResizeSize = 96, 110
	ctx := seededContext(27)
	exec := context.MustNewExec(backend(b), ctx, trainStep(cfg))
	images := randomImages(28, 4, cfg.ImageSize)
	exec.MustExec(images)
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		exec.MustExec(images)
	}
}
