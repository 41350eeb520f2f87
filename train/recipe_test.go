package train

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/gomlx/gomlx/pkg/core/graph"
	gomlxcontext "github.com/gomlx/gomlx/pkg/ml/context"
	"github.com/gomlx/gomlx/pkg/ml/layers"

	"github.com/artnet/artnet/internal/testenv"
	"github.com/artnet/artnet/models"
	"github.com/artnet/artnet/models/spec"
)

// linearStandIn is standIn without dropout: each example's logits depend on that example only
// (no batch statistics, no random masks), the model class for which gradient accumulation is
// exact.
func linearStandIn(ctx *gomlxcontext.Context, cfg spec.Config, images *graph.Node) map[string]*graph.Node {
	s := cfg.ImageSize
	b := images.Shape().Dimensions[0]
	x := graph.Reshape(images, b, 3, 4, s/4, 4, s/4)
	x = graph.ReduceMean(x, 3, 5)
	x = graph.Reshape(x, b, 48)
	x = graph.Tanh(layers.Dense(ctx.In("hidden"), x, true, 32))
	out := map[string]*graph.Node{}
	for _, task := range spec.Tasks {
		out[task] = layers.Dense(ctx.In("head_"+task), x, true, cfg.NumClasses(task))
	}
	return out
}

// holes is a data set with some labels absent (genre of every other example, artist of every
// third): micro-batches then hold different numbers of labels per task.
type holes struct{ Dataset }

func (h holes) Example(i int, img []float32) (Labels, error) {
	lb, err := h.Dataset.Example(i, img)
	if i%2 == 1 {
		lb[1] = -1
	}
	if i%3 == 0 {
		lb[2] = -1
	}
	return lb, err
}

// TestAccumulationEqualsFullBatch: the property accum_steps guarantees. Batch 32 in 2 (and 4)
// micro-batches gives the same weights, optimizer state and losses as batch 32 in one, step
// after step (to float32 rounding), with masked labels, gradient clipping active, and with
// mixup and label smoothing, for a model whose output for an example does not depend on the
// rest of its batch. (With batch normalization in training mode it does: each micro-batch is
// normalized with its own statistics, and the updates then differ — recipe.go.)
func TestAccumulationEqualsFullBatch(t *testing.T) {
	base := standInOptions("")
	base.Model = linearStandIn
	base.Batch, base.Steps, base.CheckpointEvery, base.EvalEvery = 32, 4, 0, 0
	base.ClipNorm = 0.5
	ds := holes{NewSynthetic(base.Config, 80, 5)}
	for _, tc := range []struct {
		name  string
		setup func(o *Options)
	}{
		{"plain", func(o *Options) {}},
		{"mixup+smoothing", func(o *Options) { o.Mix = Mix{Mixup: 0.5, CutMix: 1}; o.LabelSmoothing = 0.1 }},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var ref *Result
			var refLoss []float64
			for _, k := range []int{1, 2, 4} {
				o := base
				tc.setup(&o)
				o.AccumSteps = k
				o.OutDir = filepath.Join(t.TempDir(), "run")
				var losses []float64
				o.OnStep = func(m StepMetrics) { losses = append(losses, m.Loss) }
				res, err := Run(context.Background(), o, ds, nil, nil)
				if err != nil {
					t.Fatal(err)
				}
				if k == 1 {
					ref, refLoss = res, losses
					continue
				}
				for i := range losses {
					if !near(losses[i], refLoss[i], 1e-5) {
						t.Errorf("accum %d: step %d loss %g, unsplit %g", k, i+1, losses[i], refLoss[i])
					}
				}
				compareCheckpoints(t, ref.CheckpointDir, res.CheckpointDir, 1e-4)
			}
		})
	}
}

// TestAccumulationDiffersWithDropout guards the test above against vacuity: the
// same comparison with a dropout model (random masks per micro-batch) must differ.
func TestAccumulationDiffersWithDropout(t *testing.T) {
	o := standInOptions("")
	o.Batch, o.Steps, o.CheckpointEvery, o.EvalEvery = 16, 3, 0, 0
	ds := NewSynthetic(o.Config, 48, 5)
	var losses [2][]float64
	for i, k := range []int{1, 2} {
		o.AccumSteps = k
		o.OutDir = filepath.Join(t.TempDir(), "run")
		o.OnStep = func(m StepMetrics) { losses[i] = append(losses[i], m.Loss) }
		if _, err := Run(context.Background(), o, ds, nil, nil); err != nil {
			t.Fatal(err)
		}
	}
	if near(losses[0][2], losses[1][2], 1e-6) {
		t.Errorf("dropout model: accumulated and unsplit losses agree (%g): the accumulation test would not notice a broken split", losses[0][2])
	}
}

// TestRecipeResumeExact: a run with label smoothing, mixup/CutMix, accumulation and EMA
// resumed from a checkpoint ends exactly as the uninterrupted run (weights, optimizer state and
// EMA averages).
func TestRecipeResumeExact(t *testing.T) {
	o := standInOptions("")
	o.WarmupSteps = 3
	o.LabelSmoothing, o.AccumSteps, o.EMADecay = 0.1, 2, 0.9
	o.Mix = Mix{Mixup: 0.4, CutMix: 1, Prob: 0.8}
	resumeEquivalence(t, o, NewSynthetic(o.Config, 20, 3), 4, 1e-6)
}

// TestBF16RefusedOnGo: precision bf16 is a one-line refusal on the go backend (from Run and
// from a configuration), accepted for XLA.
func TestBF16RefusedOnGo(t *testing.T) {
	o := standInOptions(t.TempDir())
	o.Precision, o.Backend = PrecisionBF16, "go"
	_, err := Run(context.Background(), o, NewSynthetic(o.Config, 16, 1), nil, nil)
	if !errors.Is(err, ErrBF16NeedsXLA) && (err == nil || !strings.Contains(err.Error(), ErrBF16NeedsXLA.Error())) {
		t.Fatalf("Run with bf16 on go: %v, want %q", err, ErrBF16NeedsXLA)
	}
	if strings.Contains(err.Error(), "\n") {
		t.Errorf("refusal is not one line: %q", err)
	}
	if err := checkPrecision(PrecisionBF16, "xla:cuda"); err != nil {
		t.Errorf("bf16 on xla:cuda refused: %v", err)
	}
	if err := checkPrecision("", "go"); err != nil {
		t.Errorf("float32 on go refused: %v", err)
	}
	path := filepath.Join(t.TempDir(), "c.yaml")
	if err := os.WriteFile(path, []byte("model: {preset: tiny}\ndata: {root: x}\ntrain: {precision: bf16, backend: go}\nphases: [{name: a, epochs: 1, batch: 2, lr: 0.1}]\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	fc, err := LoadFileConfig(path)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := RunPhases(context.Background(), PhasesOptions{Config: fc, ConfigFile: path, Out: t.TempDir()}); err == nil || !strings.Contains(err.Error(), ErrBF16NeedsXLA.Error()) {
		t.Errorf("RunPhases with bf16 on go: %v", err)
	}
}

// TestRunPhasesRecipe: the recipe's fields reach the trainer from a configuration file — a
// phase on the repository's WikiArt sample with every one of them on trains, records them in
// options.json, logs the EMA accuracy and leaves phase1/ema as a loadable checkpoint.
func TestRunPhasesRecipe(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "recipe.yaml")
	body := "model: {preset: tiny, image_size: 32, resize_size: 36, stages: 2, lstm_layers: 1}\n" +
		"data: {root: " + testenv.Sample(t) + ", augment: trivial, random_erasing: 0.25, mixup: 0.2, cutmix: 1.0, balanced: [style]}\n" +
		"train: {seed: 3, label_smoothing: 0.1, ema_decay: 0.9, accum_steps: 2, clip_norm: 5}\n" +
		"phases: [{name: \"1\", epochs: 0.5, batch: 4, lr: 1.0e-3}]\n"
	if err := os.WriteFile(path, []byte(body), 0o644); err != nil {
		t.Fatal(err)
	}
	fc, err := LoadFileConfig(path)
	if err != nil {
		t.Fatal(err)
	}
	out := filepath.Join(dir, "out")
	if _, err := RunPhases(context.Background(), PhasesOptions{Config: fc, ConfigFile: path, Out: out, Log: testLogger(t)}); err != nil {
		t.Fatal(err)
	}
	po, err := ReadPhaseOptions(PhaseDir(out, "1"))
	if err != nil {
		t.Fatal(err)
	}
	if po.Data.Augment != AugmentTrivial || po.Data.CutMix != 1 || po.Train.AccumSteps != 2 || po.Train.EMADecay != 0.9 || po.Train.LabelSmoothing != 0.1 {
		t.Errorf("options.json does not record the recipe: %+v %+v", po.Data, po.Train)
	}
	if _, _, err := models.LoadCheckpoint(filepath.Join(PhaseDir(out, "1"), EMADir)); err != nil {
		t.Errorf("phase1/ema: %v", err)
	}
	ema := 0
	for _, m := range readMetrics(t, PhaseDir(out, "1")) {
		if m["kind"] == "eval" && m["ema_accuracy"] != nil {
			ema++
		}
	}
	if ema == 0 {
		t.Error("metrics.jsonl has no evaluation of the EMA weights")
	}
}

// relabelled is a data set with the same images and other labels.
type relabelled struct{ Dataset }

func (r relabelled) Example(i int, img []float32) (Labels, error) {
	lb, err := r.Dataset.Example(i, img)
	for k := range lb {
		lb[k] = (lb[k] + 1) % 4
	}
	return lb, err
}

// TestSmoothingAndMixReachTheStep: in Run, label smoothing ε = 1 makes every target uniform,
// so the first step's loss no longer depends on the labels (it does with ε = 0); and mixup
// changes the first step's loss (the batch is mixed before the step).
func TestSmoothingAndMixReachTheStep(t *testing.T) {
	first := func(o Options, ds Dataset) float64 {
		t.Helper()
		o.OutDir = filepath.Join(t.TempDir(), "run")
		o.Steps, o.CheckpointEvery, o.EvalEvery = 1, 0, 0
		res, err := Run(context.Background(), o, ds, nil, nil)
		if err != nil {
			t.Fatal(err)
		}
		return res.Loss
	}
	o := standInOptions("")
	o.Model = linearStandIn
	ds := NewSynthetic(o.Config, 16, 4)
	other := relabelled{ds}
	if a, b := first(o, ds), first(o, other); a == b {
		t.Fatalf("without smoothing the labels do not matter (%g)", a)
	}
	s := o
	s.LabelSmoothing = 1
	if a, b := first(s, ds), first(s, other); !near(a, b, 1e-6) {
		t.Errorf("ε = 1: losses %g and %g differ with the labels", a, b)
	}
	m := o
	m.Mix = Mix{Mixup: 1}
	if a, b := first(o, ds), first(m, ds); near(a, b, 1e-6) {
		t.Errorf("mixup left the first loss at %g", a)
	}
}
