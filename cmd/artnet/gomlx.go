package main

import (
	"context"
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
		return []*Node{out.Probs["style"], out.Probs["genre"], out.Probs["artist"], out.Attention}
	})
	if err != nil {
		return nil, fmt.Errorf("gomlx: %w", err)
	}
	return &gomlxPredictor{cfg: cfg, backend: backend, exec: exec}, nil
}

func (p *gomlxPredictor) Config() spec.Config { return p.cfg }

func (p *gomlxPredictor) Run(_ context.Context, images []float32, batch int) (res *predict.Result, err error) {
	s := p.cfg.ImageSize
	if batch < 1 || len(images) != batch*3*s*s {
		return nil, fmt.Errorf("gomlx: %d floats for batch %d of 3×%d×%d", len(images), batch, s, s)
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	outs, err := p.exec.Exec(tensors.FromFlatDataAndDimensions(images, batch, 3, s, s))
	if err != nil {
		return nil, fmt.Errorf("gomlx: %w", err)
	}
	res = &predict.Result{Batch: batch, Probs: map[string][]float32{}}
	for i, t := range spec.Tasks {
		res.Probs[t] = tensors.MustCopyFlatData[float32](outs[i])
	}
	res.Attention = tensors.MustCopyFlatData[float32](outs[3])
	for _, o := range outs {
		o.FinalizeAll()
	}
	return res, nil
}

func (p *gomlxPredictor) Close() error {
	p.exec.Finalize()
	p.backend.Finalize()
	return nil
}
