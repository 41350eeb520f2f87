package train

import (
	"context"
	"fmt"
	"sync"

	"github.com/gomlx/gomlx/backends"
	"github.com/gomlx/gomlx/pkg/core/graph"
	"github.com/gomlx/gomlx/pkg/core/tensors"
	gomlxcontext "github.com/gomlx/gomlx/pkg/ml/context"

	"github.com/artnet/artnet/models"
	"github.com/artnet/artnet/models/spec"
	"github.com/artnet/artnet/predict"
)

// Predictor runs a trained model in GoMLX as a predict.Predictor (probabilities and attention,
// like the exported ONNX file), for `artnet predict --runtime gomlx`, `artnet evaluate` and the
// final evaluation of RunPhases. Safe for concurrent use (runs are serialized).
type Predictor struct {
	mu      sync.Mutex
	cfg     spec.Config
	backend backends.Backend
	exec    *gomlxcontext.Exec
}

// NewPredictor compiles the inference graph of the model in mctx (e.g. from
// models.LoadCheckpoint) on backend. Close finalizes both the graph and the backend.
func NewPredictor(backend backends.Backend, mctx *gomlxcontext.Context, cfg spec.Config) (*Predictor, error) {
	exec, err := gomlxcontext.NewExec(backend, mctx.Reuse(), func(ctx *gomlxcontext.Context, images *graph.Node) []*graph.Node {
		out := models.Build(ctx, cfg, images)
		return []*graph.Node{out.Probs["style"], out.Probs["genre"], out.Probs["artist"], out.Attention}
	})
	if err != nil {
		return nil, fmt.Errorf("gomlx: %w", err)
	}
	return &Predictor{cfg: cfg, backend: backend, exec: exec}, nil
}

// Config is the model's configuration.
func (p *Predictor) Config() spec.Config { return p.cfg }

// Run computes the outputs of a batch of normalized images (batch·3·S·S values).
func (p *Predictor) Run(_ context.Context, images []float32, batch int) (res *predict.Result, err error) {
	s := p.cfg.ImageSize
	if batch < 1 || len(images) != batch*3*s*s {
		return nil, fmt.Errorf("gomlx: %d floats for batch %d of 3×%d×%d", len(images), batch, s, s)
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	in := tensors.FromFlatDataAndDimensions(images, batch, 3, s, s)
	defer func() { _ = in.FinalizeAll() }()
	outs, err := safeExec(p.exec, in)
	if err != nil {
		return nil, fmt.Errorf("gomlx: %w", err)
	}
	defer finalizeAll(outs)
	res = &predict.Result{Batch: batch, Probs: map[string][]float32{}}
	for i, t := range spec.Tasks {
		res.Probs[t] = tensors.MustCopyFlatData[float32](outs[i])
	}
	res.Attention = tensors.MustCopyFlatData[float32](outs[3])
	return res, nil
}

// Close releases the graph and the backend.
func (p *Predictor) Close() error {
	p.exec.Finalize()
	p.backend.Finalize()
	return nil
}

var _ predict.Predictor = (*Predictor)(nil)
