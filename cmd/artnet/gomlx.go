package main

import (
	"context"
	"errors"
	"fmt"
	"sync"

	"github.com/gomlx/gomlx/backends"
	. "github.com/gomlx/gomlx/pkg/core/graph"
	"github.com/gomlx/gomlx/pkg/core/tensors"
	gctx "github.com/gomlx/gomlx/pkg/ml/context"

	artgraph "github.com/artnet/artnet/graph"
	"github.com/artnet/artnet/models"
	"github.com/artnet/artnet/models/spec"
	"github.com/artnet/artnet/predict"
)

// gomlxPredictor runs a checkpoint's model in GoMLX, for parity with ONNX Runtime.
type gomlxPredictor struct {
	mu      sync.Mutex
	cfg     spec.Config
	backend backends.Backend
	exec    *gctx.Exec
}

func openGoMLX(dir string) (*gomlxPredictor, error) {
	dir, err := resolveCheckpoint(dir)
	if err != nil {
		return nil, err
	}
	mctx, cfg, err := models.LoadCheckpoint(dir)
	if err != nil {
		return nil, err
	}
	backend, err := artgraph.NewBackend("")
	if err != nil {
		return nil, err
	}
	return newGoMLXPredictor(backend, mctx, cfg)
}

func newGoMLXPredictor(backend backends.Backend, mctx *gctx.Context, cfg spec.Config) (*gomlxPredictor, error) {
	exec, err := gctx.NewExec(backend, mctx.Reuse(), func(ctx *gctx.Context, images *Node) []*Node {
		out := models.Build(ctx, cfg, images)
		outs := make([]*Node, 0, len(spec.Tasks)+1) // spec.OutputNames order
		for _, t := range spec.Tasks {
			outs = append(outs, out.Probs[t])
		}
		return append(outs, out.Attention)
	})
	if err != nil {
		return nil, fmt.Errorf("gomlx: %w", err)
	}
	return &gomlxPredictor{cfg: cfg, backend: backend, exec: exec}, nil
}

func (p *gomlxPredictor) Config() spec.Config { return p.cfg }

// newInputTensor makes Run's input tensor (a variable so a test can see it freed).
var newInputTensor = tensors.FromFlatDataAndDimensions[float32]

func (p *gomlxPredictor) Run(_ context.Context, images []float32, batch int) (res *predict.Result, err error) {
	s := p.cfg.ImageSize
	if batch < 1 || len(images) != batch*3*s*s {
		return nil, fmt.Errorf("gomlx: %d floats for batch %d of 3×%d×%d", len(images), batch, s, s)
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	in := newInputTensor(images, batch, 3, s, s)
	defer func() { err = errors.Join(err, in.FinalizeAll()) }()
	outs, err := p.exec.Exec(in)
	if err != nil {
		return nil, fmt.Errorf("gomlx: %w", err)
	}
	defer func() {
		for _, o := range outs {
			err = errors.Join(err, o.FinalizeAll())
		}
	}()
	res = &predict.Result{Batch: batch, Probs: map[string][]float32{}}
	for i, t := range spec.Tasks {
		if res.Probs[t], err = tensors.CopyFlatData[float32](outs[i]); err != nil {
			return nil, fmt.Errorf("gomlx: output %s: %w", t, err)
		}
	}
	if res.Attention, err = tensors.CopyFlatData[float32](outs[3]); err != nil {
		return nil, fmt.Errorf("gomlx: output %s: %w", spec.OutputAttention, err)
	}
	return res, nil
}

func (p *gomlxPredictor) Close() error {
	p.exec.Finalize()
	p.backend.Finalize()
	return nil
}
