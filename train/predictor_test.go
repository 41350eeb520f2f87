package train

import (
	"context"
	"path/filepath"
	"testing"

	"github.com/gomlx/gomlx/pkg/core/tensors"

	artgraph "github.com/artnet/artnet/graph"
	"github.com/artnet/artnet/models"
)

// TestPredictorFinalizesInput: Run frees its input tensor (and its outputs) before it returns,
// instead of leaving them to the garbage collector, and gives probabilities per task and
// attention per token. (Moved from cmd/artnet with the predictor.)
func TestPredictorFinalizesInput(t *testing.T) {
	cfg := smallConfig()
	cfg.Stages, cfg.LSTMLayers = 2, 1
	o := Options{Config: cfg, OutDir: filepath.Join(t.TempDir(), "run"), Steps: 1, Batch: 2, LR: 1e-3, Seed: 1}
	res, err := Run(context.Background(), o, NewSynthetic(cfg, 4, 1), nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	mctx, ckCfg, err := models.LoadCheckpoint(res.CheckpointDir)
	if err != nil {
		t.Fatal(err)
	}
	backend, err := artgraph.NewBackend("")
	if err != nil {
		t.Fatal(err)
	}
	p, err := NewPredictor(backend, mctx, ckCfg)
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
