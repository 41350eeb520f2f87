package benchmark

import (
	"fmt"
	"io"
	"math"
	"os"
	"path/filepath"
	"sort"

	"github.com/gomlx/gomlx/backends"
	"github.com/gomlx/gomlx/pkg/core/graph"
	"github.com/gomlx/gomlx/pkg/core/tensors"
	gomlxcontext "github.com/gomlx/gomlx/pkg/ml/context"

	"github.com/artnet/artnet/engine"
	"github.com/artnet/artnet/models"
	"github.com/artnet/artnet/models/spec"
	"github.com/artnet/artnet/train"
)

// StepComparison is one training step's loss and gradients computed on two backends from the
// same weights and batch.
type StepComparison struct {
	Backend, Reference string
	Loss, RefLoss      float64
	LossRelDiff        float64 // |Loss - RefLoss| / max(|RefLoss|, 1e-30)
	// GradRelDiff is the largest, over trainable variables, of max|g - g_ref| / max|g_ref| (the
	// normwise relative difference of each variable's gradient), the denominator at least 1e-3
	// of the largest gradient value of any variable; WorstVariable is where.
	GradRelDiff   float64
	WorstVariable string
	Variables     int
}

// Within reports whether loss and every gradient agree within tol (relative).
func (c *StepComparison) Within(tol float64) bool {
	return c.LossRelDiff <= tol && c.GradRelDiff <= tol
}

// Print writes the comparison for people.
func (c *StepComparison) Print(w io.Writer) error {
	_, err := fmt.Fprintf(w, "one training step, %s vs %s: loss %.8g vs %.8g (rel diff %.3g); gradients of %d variables: largest normwise rel diff %.3g (%s)\n",
		c.Backend, c.Reference, c.Loss, c.RefLoss, c.LossRelDiff, c.Variables, c.GradRelDiff, c.WorstVariable)
	return err
}

// CompareStep computes one training step's total loss (the trainer's multi-task focal loss) and
// the gradients of every trainable variable of DeepArtNet cfg on backend and on reference, from
// the same freshly initialized weights (seeded, initialized on the reference backend) and the
// same random batch. Dropout and stochastic depth are switched off (cfg's are overridden) so
// the step is deterministic; batch norm runs in training mode (batch statistics).
func CompareStep(cfg spec.Config, batch int, seed int64, backend, reference string) (*StepComparison, error) {
	cfg.Dropout, cfg.DropPath = 0, 0
	if err := cfg.Validate(); err != nil {
		return nil, fmt.Errorf("benchmark: model config: %w", err)
	}
	if batch < 1 {
		return nil, fmt.Errorf("benchmark: batch must be ≥ 1, got %d", batch)
	}
	dir, err := os.MkdirTemp("", "artnet-compare-")
	if err != nil {
		return nil, fmt.Errorf("benchmark: %w", err)
	}
	defer os.RemoveAll(dir)
	ckpt := filepath.Join(dir, "init")
	images := RandomImages(batch, cfg.ImageSize, seed)
	noise := NewNoise(cfg, batch, seed)
	labels := make([]int32, 0, batch*len(spec.Tasks))
	for i := 0; i < batch; i++ {
		l, _ := noise.Example(i, make([]float32, 3*cfg.ImageSize*cfg.ImageSize))
		labels = append(labels, l[:]...)
	}

	// Initialize on the reference backend (running the step once) and save the initial weights.
	ref, err := stepOn(reference, cfg, nil, seed, images, labels, ckpt)
	if err != nil {
		return nil, fmt.Errorf("benchmark: reference backend %q: %w", reference, err)
	}
	got, err := stepOn(backend, cfg, &ckpt, seed, images, labels, "")
	if err != nil {
		return nil, fmt.Errorf("benchmark: backend %q: %w", backend, err)
	}
	if len(got.grads) != len(ref.grads) {
		return nil, fmt.Errorf("benchmark: %d gradients on %s, %d on %s", len(got.grads), backend, len(ref.grads), reference)
	}
	c := &StepComparison{Backend: backendName(backend), Reference: backendName(reference), Loss: got.loss, RefLoss: ref.loss,
		LossRelDiff: math.Abs(got.loss-ref.loss) / math.Max(math.Abs(ref.loss), 1e-30), Variables: len(ref.grads)}
	if math.IsNaN(c.LossRelDiff) {
		c.LossRelDiff = math.Inf(1)
	}
	// Scale of the whole gradient: a variable whose gradient is tiny next to it (e.g. a batch-norm
	// bias followed by another batch norm, mathematically 0) is compared on 1e-3 of it.
	var global float64
	for _, g := range ref.grads {
		for _, r := range g {
			global = max(global, math.Abs(float64(r)))
		}
	}
	for i := range ref.grads {
		if got.names[i] != ref.names[i] || len(got.grads[i]) != len(ref.grads[i]) {
			return nil, fmt.Errorf("benchmark: gradient %d is %s (%d values) on %s, %s (%d) on %s",
				i, got.names[i], len(got.grads[i]), backend, ref.names[i], len(ref.grads[i]), reference)
		}
		var diff, scale float64
		for j, r := range ref.grads[i] {
			d := math.Abs(float64(got.grads[i][j]) - float64(r))
			if math.IsNaN(d) {
				d = math.Inf(1)
			}
			diff = max(diff, d)
			scale = max(scale, math.Abs(float64(r)))
		}
		rel := 0.0
		if diff > 0 {
			rel = diff / math.Max(math.Max(scale, 1e-3*global), 1e-30)
		}
		if rel > c.GradRelDiff || c.WorstVariable == "" {
			c.GradRelDiff, c.WorstVariable = rel, ref.names[i]
		}
	}
	return c, nil
}

type stepResult struct {
	loss  float64
	names []string
	grads [][]float32
}

// stepOn runs the loss and gradient graph once on backend config: from the checkpoint *from
// (nil: fresh, seeded), saving the initial weights to saveTo when set.
func stepOn(config string, cfg spec.Config, from *string, seed int64, images []float32, labels []int32, saveTo string) (res *stepResult, err error) {
	var mctx *gomlxcontext.Context
	if from != nil {
		if mctx, _, err = models.LoadCheckpoint(*from); err != nil {
			return nil, err
		}
		mctx = mctx.Reuse()
	} else {
		mctx = gomlxcontext.New()
		mctx.SetParam(gomlxcontext.ParamInitialSeed, seed)
		if err := mctx.SetRNGStateFromSeed(seed); err != nil {
			return nil, err
		}
	}
	backend, err := engine.NewBackend(config)
	if err != nil {
		return nil, err
	}
	defer backend.Finalize()
	if from == nil && saveTo != "" {
		// Create and initialize the variables, then save them before the step changes the
		// batch-norm statistics.
		if err := initVariables(backend, mctx, cfg); err != nil {
			return nil, err
		}
		if err := models.SaveCheckpoint(mctx, cfg, saveTo); err != nil {
			return nil, err
		}
		mctx = mctx.Reuse()
	}
	res = &stepResult{}
	exec, err := gomlxcontext.NewExec(backend, mctx, func(ctx *gomlxcontext.Context, img, lb *graph.Node) []*graph.Node {
		g := img.Graph()
		ctx.SetTraining(g, true)
		total, _ := train.MultiTaskLoss(ctx, models.Build(ctx, cfg, img).Logits, lb, train.DefaultGamma)
		grads := ctx.BuildTrainableVariablesGradientsGraph(total)
		ctx.EnumerateVariables(func(v *gomlxcontext.Variable) {
			if v.Trainable && v.InUseByGraph(g) {
				res.names = append(res.names, v.ScopeAndName())
			}
		})
		return append([]*graph.Node{total}, grads...)
	})
	if err != nil {
		return nil, err
	}
	defer exec.Finalize()
	defer func() {
		if r := recover(); r != nil {
			err = fmt.Errorf("%v", r)
		}
	}()
	s := cfg.ImageSize
	in := tensors.FromFlatDataAndDimensions(images, len(images)/(3*s*s), 3, s, s)
	lb := tensors.FromFlatDataAndDimensions(labels, len(labels)/len(spec.Tasks), len(spec.Tasks))
	defer in.FinalizeAll()
	defer lb.FinalizeAll()
	out, err := exec.Exec(in, lb)
	if err != nil {
		return nil, err
	}
	defer finalizeAll(out)
	res.loss = float64(tensors.ToScalar[float32](out[0]))
	for _, t := range out[1:] {
		res.grads = append(res.grads, tensors.MustCopyFlatData[float32](t))
	}
	if len(res.grads) != len(res.names) {
		return nil, fmt.Errorf("%d gradients for %d variable names", len(res.grads), len(res.names))
	}
	// A loaded context enumerates its variables in another order than a fresh one: sort by name.
	idx := make([]int, len(res.names))
	for i := range idx {
		idx[i] = i
	}
	sort.Slice(idx, func(a, b int) bool { return res.names[idx[a]] < res.names[idx[b]] })
	names, grads := make([]string, len(idx)), make([][]float32, len(idx))
	for i, j := range idx {
		names[i], grads[i] = res.names[j], res.grads[j]
	}
	res.names, res.grads = names, grads
	return res, nil
}

// initVariables creates DeepArtNet's and the loss's variables in mctx and initializes them, by
// running the loss once in inference mode (no batch-norm statistics update) on one image.
func initVariables(backend backends.Backend, mctx *gomlxcontext.Context, cfg spec.Config) (err error) {
	exec, err := gomlxcontext.NewExec(backend, mctx, func(ctx *gomlxcontext.Context, img, lb *graph.Node) *graph.Node {
		total, _ := train.MultiTaskLoss(ctx, models.Build(ctx, cfg, img).Logits, lb, train.DefaultGamma)
		return total
	})
	if err != nil {
		return err
	}
	defer exec.Finalize()
	defer func() {
		if r := recover(); r != nil {
			err = fmt.Errorf("%v", r)
		}
	}()
	s := cfg.ImageSize
	in := tensors.FromFlatDataAndDimensions(make([]float32, 3*s*s), 1, 3, s, s)
	lb := tensors.FromFlatDataAndDimensions(make([]int32, len(spec.Tasks)), 1, len(spec.Tasks))
	defer in.FinalizeAll()
	defer lb.FinalizeAll()
	out, err := exec.Exec(in, lb)
	finalizeAll(out)
	return err
}

func finalizeAll(ts []*tensors.Tensor) {
	for _, t := range ts {
		if t != nil {
			t.FinalizeAll()
		}
	}
}
