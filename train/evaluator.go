package train

import (
	"context"
	"errors"
	"fmt"

	"github.com/artnet/artnet/evaluate"
	"github.com/artnet/artnet/internal/errtext"
	"github.com/artnet/artnet/models/spec"
	"github.com/gomlx/gomlx/backends"
	"github.com/gomlx/gomlx/pkg/core/graph"
	"github.com/gomlx/gomlx/pkg/core/tensors"
	gomlxcontext "github.com/gomlx/gomlx/pkg/ml/context"
)

// evaluator computes per-task accuracy with a cached inference graph.
type evaluator struct {
	backend backends.Backend
	mctx    *gomlxcontext.Context
	cfg     spec.Config
	model   ModelFn
	batch   int
	exec    *gomlxcontext.Exec
	top5    map[string]float64 // of the last run
	counts  map[string]int     // examples with a label per task, of the last run
}

func newEvaluator(backend backends.Backend, mctx *gomlxcontext.Context, cfg spec.Config, model ModelFn, batch int) *evaluator {
	return &evaluator{backend: backend, mctx: mctx, cfg: cfg, model: model, batch: batch}
}

func (e *evaluator) close() {
	if e.exec != nil {
		e.exec.Finalize()
	}
}

// run returns the accuracy per task over the examples of ds whose label for that task is
// present; tasks without any present label are left out. The last batch is padded with absent
// examples so a single graph shape is compiled.
func (e *evaluator) run(ctx context.Context, ds Dataset) (map[string]float64, error) {
	if ds == nil || ds.Len() == 0 {
		return nil, errors.New("the validation set is empty")
	}
	if e.exec == nil {
		exec, err := gomlxcontext.NewExec(e.backend, e.mctx.Reuse(), func(ctx *gomlxcontext.Context, images *graph.Node) []*graph.Node {
			ctx.SetTraining(images.Graph(), false)
			logits := e.model(ctx, e.cfg, images)
			out := make([]*graph.Node, len(spec.Tasks))
			for k, task := range spec.Tasks {
				out[k] = logits[task]
			}
			return out
		})
		if err != nil {
			return nil, err
		}
		e.exec = exec
	}
	size := e.cfg.ImageSize
	nt := len(spec.Tasks)
	images := make([]float32, e.batch*3*size*size)
	labels := make([]int32, e.batch*nt)
	idx := make([]int, e.batch)
	correct, correct5, total := make([]int, nt), make([]int, nt), make([]int, nt)
	for start := 0; start < ds.Len(); start += e.batch {
		for b := range idx {
			idx[b] = -1
			if start+b < ds.Len() {
				idx[b] = start + b
			}
		}
		if err := loadBatch(ctx, ds, e.cfg, idx, images, labels); err != nil {
			return nil, err
		}
		imgT := tensors.FromFlatDataAndDimensions(images, e.batch, 3, size, size)
		out, err := safeExec(e.exec, imgT)
		_ = imgT.FinalizeAll()
		if err != nil {
			return nil, err
		}
		for k, task := range spec.Tasks {
			nc := e.cfg.NumClasses(task)
			lg := tensors.MustCopyFlatData[float32](out[k])
			for b := range e.batch {
				lb := labels[b*nt+k]
				if lb < 0 {
					continue
				}
				total[k]++
				rank := evaluate.Rank(lg[b*nc:(b+1)*nc], int(lb)) // logits rank as the probabilities do
				if rank == 0 {
					correct[k]++
				}
				if rank < 5 {
					correct5[k]++
				}
			}
		}
		finalizeAll(out)
	}
	acc, top5 := map[string]float64{}, map[string]float64{}
	e.top5, e.counts = top5, map[string]int{}
	for k, task := range spec.Tasks {
		if total[k] > 0 {
			acc[task] = float64(correct[k]) / float64(total[k])
			top5[task] = float64(correct5[k]) / float64(total[k])
			e.counts[task] = total[k]
		}
	}
	return acc, nil
}

// Evaluate returns the accuracy per task of the DeepArtNet in mctx (e.g. from
// models.LoadCheckpoint) on ds, in batches of batch examples; a task without any present label
// in ds is left out of the map.
func Evaluate(ctx context.Context, backend backends.Backend, mctx *gomlxcontext.Context, cfg spec.Config, ds Dataset, batch int) (map[string]float64, error) {
	if batch <= 0 {
		return nil, fmt.Errorf("evaluate: batch must be > 0, got %d", batch)
	}
	if err := cfg.Validate(); err != nil {
		return nil, fmt.Errorf("evaluate: %s", errtext.OneLine(err))
	}
	e := newEvaluator(backend, mctx, cfg, DeepArtNet, batch)
	defer e.close()
	acc, err := e.run(ctx, ds)
	if err != nil {
		return nil, fmt.Errorf("evaluate: %w", err)
	}
	return acc, nil
}
