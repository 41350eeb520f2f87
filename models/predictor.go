package models

import (
	"context"
	"errors"
	"fmt"
	"sync"

	"github.com/gomlx/gomlx/backends"
	"github.com/gomlx/gomlx/pkg/core/graph"
	"github.com/gomlx/gomlx/pkg/core/tensors"
	gomlxcontext "github.com/gomlx/gomlx/pkg/ml/context"

	"github.com/artnet/artnet/engine"
	"github.com/artnet/artnet/models/spec"
	"github.com/artnet/artnet/predict"
)

// Predictor runs a trained model in GoMLX as a predict.Predictor (probabilities and attention,
// like the exported ONNX file), for `artnet predict --runtime gomlx`, `artnet evaluate` and the
// final evaluation of train.RunPhases: GoMLX inference beside runtime's ONNX Runtime inference.
// Safe for concurrent use (runs are serialized).
type Predictor struct {
	mu      sync.Mutex
	cfg     spec.Config
	backend backends.Backend
	mctx    *gomlxcontext.Context
	exec    *gomlxcontext.Exec
}

// OpenPredictor loads the checkpoint directory dir (LoadCheckpoint) and compiles it on the GoMLX
// backend backendConfig ("" → $GOMLX_BACKEND, else "go"; graph.NewBackend).
func OpenPredictor(dir, backendConfig string) (*Predictor, error) {
	mctx, cfg, err := LoadCheckpoint(dir)
	if err != nil {
		return nil, err
	}
	backend, err := engine.NewBackend(backendConfig)
	if err != nil {
		return nil, err
	}
	p, err := NewPredictor(backend, mctx, cfg)
	if err != nil {
		backend.Finalize()
		return nil, err
	}
	return p, nil
}

// Ordered returns the outputs in the order of the ONNX contract (spec.OutputNames): the tasks'
// probabilities in spec.Tasks order, then the attention weights. The exporter and the
// Predictor both build their graphs' outputs with it.
func (o Outputs) Ordered() []*graph.Node {
	outs := make([]*graph.Node, 0, len(spec.Tasks)+1)
	for _, t := range spec.Tasks {
		outs = append(outs, o.Probs[t])
	}
	return append(outs, o.Attention)
}

// NewPredictor compiles the inference graph of the model in mctx (e.g. from
// models.LoadCheckpoint) on backend. Close finalizes both the graph and the backend.
func NewPredictor(backend backends.Backend, mctx *gomlxcontext.Context, cfg spec.Config) (*Predictor, error) {
	exec, err := gomlxcontext.NewExec(backend, mctx.Reuse(), func(ctx *gomlxcontext.Context, images *graph.Node) []*graph.Node {
		return Build(ctx, cfg, images).Ordered()
	})
	if err != nil {
		return nil, fmt.Errorf("gomlx: %w", err)
	}
	return &Predictor{cfg: cfg, backend: backend, mctx: mctx, exec: exec}, nil
}

// Context is the GoMLX context holding the model's variables (e.g. for ParamCounts).
func (p *Predictor) Context() *gomlxcontext.Context { return p.mctx }

// Config is the model's configuration.
func (p *Predictor) Config() spec.Config { return p.cfg }

// newInputTensor makes Run's input tensor (a variable so a test can see it freed).
var newInputTensor = tensors.FromFlatDataAndDimensions[float32]

// Run computes the outputs of a batch of normalized images (batch·3·S·S values). Its input and
// output tensors are freed before it returns.
func (p *Predictor) Run(_ context.Context, images []float32, batch int) (res *predict.Result, err error) {
	s := p.cfg.ImageSize
	if batch < 1 || len(images) != batch*3*s*s {
		return nil, fmt.Errorf("gomlx: %d floats for batch %d of 3×%d×%d", len(images), batch, s, s)
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	in := newInputTensor(images, batch, 3, s, s)
	defer func() { err = errors.Join(err, in.FinalizeAll()) }()
	outs, err := safeExec(p.exec, in)
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
	if res.Attention, err = tensors.CopyFlatData[float32](outs[len(spec.Tasks)]); err != nil {
		return nil, fmt.Errorf("gomlx: output %s: %w", spec.OutputAttention, err)
	}
	return res, nil
}

// Close releases the graph and the backend.
func (p *Predictor) Close() error {
	p.exec.Finalize()
	p.backend.Finalize()
	return nil
}

var _ predict.Predictor = (*Predictor)(nil)

// safeExec runs exec, turning a panic of GoMLX into an error.
func safeExec(exec *gomlxcontext.Exec, args ...any) (out []*tensors.Tensor, err error) {
	defer func() {
		if r := recover(); r != nil {
			err = fmt.Errorf("%v", r)
		}
	}()
	return exec.Exec(args...)
}
