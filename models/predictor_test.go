package models

import (
	"context"
	"path/filepath"
	"testing"

	"github.com/gomlx/gomlx/pkg/core/tensors"
)

// TestPredictorFinalizesInput: Run frees its input tensor (and its outputs) before it returns,
// instead of leaving them to the garbage collector, and gives probabilities per task and
// attention per token. (Moved from cmd/artnet, then train, with the predictor.)
func TestPredictorFinalizesInput(t *testing.T) {
	ctx, cfg, _ := trainedContext(t, 16)
	dir := filepath.Join(t.TempDir(), "ckpt")
	if err := SaveCheckpoint(ctx, cfg, dir); err != nil {
		t.Fatal(err)
	}
	p, err := OpenPredictor(dir, "go")
	if err != nil {
		t.Fatal(err)
	}
	defer p.Close()
	var inputs []*tensors.Tensor
	orig := newInputTensor
	newInputTensor = func(data []float32, dims ...int) *tensors.Tensor {
		in := orig(data, dims...)
		inputs = append(inputs, in)
		return in
	}
	defer func() { newInputTensor = orig }()
	s := p.Config().ImageSize
	out, err := p.Run(context.Background(), make([]float32, 2*3*s*s), 2)
	if err != nil {
		t.Fatal(err)
	}
	if out.Batch != 2 || len(out.Attention) != 2*p.Config().Tokens() || len(out.Probs["genre"]) != 2*cfg.NumClasses("genre") {
		t.Errorf("result batch %d, %d attention values, %d genre probabilities", out.Batch, len(out.Attention), len(out.Probs["genre"]))
	}
	if len(inputs) != 1 {
		t.Fatalf("%d input tensors made, want 1", len(inputs))
	}
	if inputs[0].Ok() {
		t.Error("the input tensor is still alive after Run")
	}
}
