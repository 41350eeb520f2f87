package main

import (
	"context"
	"testing"

	"github.com/gomlx/gomlx/pkg/core/tensors"
)

// TestGoMLXPredictorFinalizesInput: Run frees its input tensor (and its outputs) before it
// returns, instead of leaving them to the garbage collector.
func TestGoMLXPredictorFinalizesInput(t *testing.T) {
	ckpt, _ := evalTinyModels(t)
	p, err := openGoMLX(ckpt)
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
	res, err := p.Run(context.Background(), make([]float32, 2*3*s*s), 2)
	if err != nil {
		t.Fatal(err)
	}
	if res.Batch != 2 || len(res.Attention) != 2*p.Config().Tokens() {
		t.Errorf("result batch %d, %d attention values", res.Batch, len(res.Attention))
	}
	if len(inputs) != 1 {
		t.Fatalf("%d input tensors made, want 1", len(inputs))
	}
	if inputs[0].Ok() {
		t.Error("the input tensor is still alive after Run")
	}
}
