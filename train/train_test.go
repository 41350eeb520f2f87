package train

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"log/slog"
	"math"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"testing"
	"time"

	"github.com/gomlx/gomlx/backends"
	"github.com/gomlx/gomlx/pkg/core/graph"
	"github.com/gomlx/gomlx/pkg/core/tensors"
	gomlxcontext "github.com/gomlx/gomlx/pkg/ml/context"
	"github.com/gomlx/gomlx/pkg/ml/layers"

	"github.com/artnet/artnet/engine"
	"github.com/artnet/artnet/models"
	"github.com/artnet/artnet/models/spec"
)

// standIn is a small model (4×4 mean-pooled pixels → Dense(32) → tanh → dropout → heads) that
// exercises the trainer's mechanics (losses, optimizer, dropout RNG, checkpoints) in well under
// a second per run.
func standIn(ctx *gomlxcontext.Context, cfg spec.Config, images *graph.Node) map[string]*graph.Node {
	s := cfg.ImageSize
	b := images.Shape().Dimensions[0]
	x := graph.Reshape(images, b, 3, 4, s/4, 4, s/4)
	x = graph.ReduceMean(x, 3, 5)
	x = graph.Reshape(x, b, 48)
	x = graph.Tanh(layers.Dense(ctx.In("hidden"), x, true, 32))
	x = layers.DropoutStatic(ctx, x, 0.1)
	out := map[string]*graph.Node{}
	for _, task := range spec.Tasks {
		out[task] = layers.Dense(ctx.In("head_"+task), x, true, cfg.NumClasses(task))
	}
	return out
}

func testLogger(t *testing.T) *slog.Logger {
	return slog.New(slog.NewTextHandler(testWriter{t}, &slog.HandlerOptions{Level: slog.LevelInfo}))
}

type testWriter struct{ t *testing.T }

func (w testWriter) Write(p []byte) (int, error) {
	w.t.Log(strings.TrimRight(string(p), "\n"))
	return len(p), nil
}

func standInOptions(dir string) Options {
	return Options{
		Config: smallConfig(), OutDir: dir, Steps: 6, Batch: 8, LR: 3e-3, WeightDecay: 1e-4,
		WarmupSteps: 2, CheckpointEvery: 2, EvalEvery: 3, KeepCheckpoints: 2, Seed: 11,
		Model: standIn,
	}
}

// readMetrics returns the lines of metrics.jsonl decoded as maps.
func readMetrics(t *testing.T, dir string) []map[string]any {
	t.Helper()
	f, err := os.Open(filepath.Join(dir, MetricsFile))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	var out []map[string]any
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		var m map[string]any
		if err := json.Unmarshal(sc.Bytes(), &m); err != nil {
			t.Fatalf("metrics line %q: %v", sc.Text(), err)
		}
		out = append(out, m)
	}
	return out
}

func TestRunLayoutAndMetrics(t *testing.T) {
	dir := t.TempDir()
	o := standInOptions(dir)
	cfg := o.Config
	steps := 0
	o.OnStep = func(StepMetrics) { steps++ }
	res, err := Run(context.Background(), o, NewSynthetic(cfg, 64, 1), NewSynthetic(cfg, 20, 2), testLogger(t))
	if err != nil {
		t.Fatal(err)
	}
	if res.Step != 6 || steps != 6 || !finite(res.Loss) || len(res.TaskLoss) != 3 {
		t.Errorf("result %+v after %d OnStep calls, want step 6 with finite losses", res, steps)
	}
	if len(res.ValAccuracy) != 3 {
		t.Errorf("val accuracy %v, want 3 tasks", res.ValAccuracy)
	}
	if want := filepath.Join(dir, CheckpointName(6)); res.CheckpointDir != want {
		t.Errorf("checkpoint dir %q, want %q", res.CheckpointDir, want)
	}
	latest, err := os.ReadFile(filepath.Join(dir, LatestFile))
	if err != nil || strings.TrimSpace(string(latest)) != CheckpointName(6) {
		t.Errorf("latest = %q (%v), want %s", latest, err, CheckpointName(6))
	}
	ck, _ := listCheckpoints(dir)
	if len(ck) != 2 || ck[0].step != 6 || ck[1].step != 4 {
		t.Errorf("kept checkpoints %v, want steps 6 and 4 (KeepCheckpoints 2)", ck)
	}
	// The checkpoint holds the global step, the uncertainty weights and Adam's state.
	mctx, _, err := models.LoadCheckpoint(res.CheckpointDir)
	if err != nil {
		t.Fatal(err)
	}
	if gs := mctx.GetVariableByScopeAndName("/", "global_step"); gs == nil || tensors.ToScalar[int64](gs.MustValue()) != 6 {
		t.Errorf("global_step in checkpoint: %v, want 6", gs)
	}
	if mctx.GetVariableByScopeAndName("/"+UncertaintyScope, "log_var_genre") == nil {
		t.Error("checkpoint lacks the uncertainty weight log_var_genre")
	}

	lines := readMetrics(t, dir)
	var trainSteps []float64
	evals := 0
	for _, m := range lines {
		switch m["kind"] {
		case "train":
			trainSteps = append(trainSteps, m["step"].(float64))
			if lr := m["lr"].(float64); m["step"].(float64) == 1 && math.Abs(lr-o.LR/2) > 1e-12 {
				t.Errorf("step 1 lr %g, want warm-up LR/2 = %g", lr, o.LR/2)
			}
		case "eval":
			evals++
		}
	}
	if len(trainSteps) != 6 || trainSteps[5] != 6 || evals != 2 {
		t.Errorf("metrics: train steps %v, %d evals; want steps 1..6 and 2 evals (step 3 and the end)", trainSteps, evals)
	}

	// Running again into the same folder without Resume is refused.
	_, err = Run(context.Background(), o, NewSynthetic(cfg, 64, 1), nil, nil)
	if err == nil || !strings.Contains(err.Error(), "already holds checkpoints") {
		t.Errorf("second run without Resume: got %v, want an 'already holds checkpoints' error", err)
	}
	// Resuming at the target step trains nothing and keeps the step.
	o.Resume = true
	res2, err := Run(context.Background(), o, NewSynthetic(cfg, 64, 1), nil, nil)
	if err != nil || res2.Step != 6 {
		t.Errorf("resume at the target step: %+v, %v", res2, err)
	}
}

func TestLearningRateSchedule(t *testing.T) {
	o := Options{LR: 1, MinLR: 0.1, WarmupSteps: 4, Steps: 14}
	cases := map[int]float64{0: 0.25, 3: 1, 4: 1, 9: 0.55, 14: 0.1}
	for step, want := range cases {
		if got := o.LearningRate(step); math.Abs(got-want) > 1e-12 {
			t.Errorf("LearningRate(%d) = %g, want %g", step, got, want)
		}
	}
	o.ConstantLR = true
	if got := o.LearningRate(9); got != 1 {
		t.Errorf("constant LR at step 9 = %g, want 1", got)
	}
}

func TestRunRejectsBadOptions(t *testing.T) {
	cfg := smallConfig()
	ds := NewSynthetic(cfg, 8, 1)
	for name, mut := range map[string]func(*Options){
		"Steps":  func(o *Options) { o.Steps = 0 },
		"Batch":  func(o *Options) { o.Batch = -1 },
		"LR":     func(o *Options) { o.LR = math.NaN() },
		"OutDir": func(o *Options) { o.OutDir = "" },
		"classes.genre": func(o *Options) {
			o.Config.Classes = map[string][]string{"style": {"a", "b"}, "artist": {"a", "b"}}
		},
	} {
		o := standInOptions(t.TempDir())
		mut(&o)
		_, err := Run(context.Background(), o, ds, nil, nil)
		if err == nil || !strings.Contains(err.Error(), name) || strings.Contains(err.Error(), "\n") {
			t.Errorf("%s: got %v, want a one-line error naming %s", name, err, name)
		}
	}
	if _, err := Run(context.Background(), standInOptions(t.TempDir()), NewSynthetic(cfg, 0, 1), nil, nil); err == nil {
		t.Error("empty training set: want an error")
	}
}

// badLabels returns a label out of range for example 3.
type badLabels struct{ Dataset }

func (b badLabels) Example(i int, img []float32) (Labels, error) {
	lb, err := b.Dataset.Example(i, img)
	if i == 3 {
		lb[1] = 99
	}
	return lb, err
}

func TestRunRejectsOutOfRangeLabels(t *testing.T) {
	o := standInOptions(t.TempDir())
	_, err := Run(context.Background(), o, badLabels{NewSynthetic(o.Config, 8, 1)}, nil, nil)
	if err == nil || !strings.Contains(err.Error(), "genre label 99 out of range") {
		t.Errorf("got %v, want a 'genre label 99 out of range' error", err)
	}
}

// panicky panics on example 2.
type panicky struct{ Dataset }

func (p panicky) Example(i int, img []float32) (Labels, error) {
	if i == 2 {
		panic("decoder bug")
	}
	return p.Dataset.Example(i, img)
}

func TestRunSurvivesPanickingDataset(t *testing.T) {
	o := standInOptions(t.TempDir())
	_, err := Run(context.Background(), o, panicky{NewSynthetic(o.Config, 8, 1)}, nil, nil)
	if err == nil || !strings.Contains(err.Error(), "example 2: data set panicked: decoder bug") {
		t.Errorf("got %v, want an error naming example 2 and the panic", err)
	}
}

// nanData injects a NaN pixel into every example from nanFrom on.
type nanData struct {
	Dataset
	nanFrom int
}

func (d nanData) Example(i int, img []float32) (Labels, error) {
	lb, err := d.Dataset.Example(i, img)
	if i >= d.nanFrom {
		img[5] = float32(math.NaN())
	}
	return lb, err
}

func TestRunStopsOnNaN(t *testing.T) {
	t.Run("nan input", func(t *testing.T) {
		o := standInOptions(t.TempDir())
		o.CheckpointEvery = 0
		res, err := Run(context.Background(), o, nanData{NewSynthetic(o.Config, 16, 1), 0}, nil, testLogger(t))
		if err == nil || !strings.Contains(err.Error(), "loss is NaN") || !strings.Contains(err.Error(), "step 1") {
			t.Fatalf("got %v, want a 'step 1: loss is NaN' error", err)
		}
		if res == nil || res.Step != 0 {
			t.Errorf("result %+v, want step 0 (no finite step)", res)
		}
		if ck, _ := listCheckpoints(o.OutDir); len(ck) != 0 {
			t.Errorf("checkpoints %v written after a NaN loss", ck)
		}
	})
	t.Run("absurd learning rate", func(t *testing.T) {
		o := standInOptions(t.TempDir())
		o.LR, o.WarmupSteps, o.ConstantLR, o.Steps, o.CheckpointEvery = 1e36, 0, true, 30, 1
		res, err := Run(context.Background(), o, NewSynthetic(o.Config, 64, 1), nil, testLogger(t))
		if err == nil || !strings.Contains(err.Error(), "loss is") || !strings.Contains(err.Error(), "last good checkpoint") {
			t.Fatalf("got %v, want a non-finite loss error", err)
		}
		if res.Step >= 30 || (res.Step > 0 && res.CheckpointDir != filepath.Join(o.OutDir, CheckpointName(res.Step))) {
			t.Errorf("result %+v: want the last finite step and its checkpoint", res)
		}
	})
}

// compareCheckpoints checks that two checkpoints hold the same variables with values equal
// within tol (relative to the largest magnitude of each variable).
func compareCheckpoints(t *testing.T, dirA, dirB string, tol float64) {
	t.Helper()
	a, _, err := models.LoadCheckpoint(dirA)
	if err != nil {
		t.Fatal(err)
	}
	b, _, err := models.LoadCheckpoint(dirB)
	if err != nil {
		t.Fatal(err)
	}
	n := 0
	for va := range a.IterVariables() {
		vb := b.GetVariableByScopeAndName(va.Scope(), va.Name())
		if vb == nil {
			t.Errorf("variable %s missing from %s", va.ScopeAndName(), dirB)
			continue
		}
		n++
		ta, tb := va.MustValue(), vb.MustValue()
		if !ta.Shape().Equal(tb.Shape()) {
			t.Errorf("%s: shapes %s vs %s", va.ScopeAndName(), ta.Shape(), tb.Shape())
			continue
		}
		fa, fb := flatFloats(ta), flatFloats(tb)
		scale, diff := 1e-30, 0.0
		for i := range fa {
			scale = math.Max(scale, math.Abs(fa[i]))
			diff = math.Max(diff, math.Abs(fa[i]-fb[i]))
		}
		if diff > tol*math.Max(scale, 1e-3) {
			t.Errorf("%s differs: max |Δ| = %g (scale %g)", va.ScopeAndName(), diff, scale)
		}
	}
	if n == 0 {
		t.Fatal("no variables compared")
	}
}

func flatFloats(x *tensors.Tensor) []float64 {
	var out []float64
	x.ConstFlatData(func(flat any) {
		switch v := flat.(type) {
		case []float32:
			for _, f := range v {
				out = append(out, float64(f))
			}
		case []float64:
			out = append(out, v...)
		case []int64:
			for _, f := range v {
				out = append(out, float64(f))
			}
		case []uint64:
			for _, f := range v {
				out = append(out, float64(f))
			}
		case []int32:
			for _, f := range v {
				out = append(out, float64(f))
			}
		case []uint32:
			for _, f := range v {
				out = append(out, float64(f))
			}
		}
	})
	return out
}

// resumeEquivalence trains 2n steps in one go, and n steps (interrupted by cancelling the
// context after step n) followed by a resumed run to 2n, and compares the final checkpoints.
func resumeEquivalence(t *testing.T, o Options, trainSet Dataset, n int, tol float64) {
	o.Steps = 2 * n
	o.CheckpointEvery, o.EvalEvery = 0, 0

	full := o
	full.OutDir = filepath.Join(t.TempDir(), "full")
	resFull, err := Run(context.Background(), full, trainSet, nil, testLogger(t))
	if err != nil {
		t.Fatal(err)
	}

	part := o
	part.OutDir = filepath.Join(t.TempDir(), "part")
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	part.OnStep = func(m StepMetrics) {
		if m.Step == n {
			cancel()
		}
	}
	res, err := Run(ctx, part, trainSet, nil, testLogger(t))
	if !errors.Is(err, context.Canceled) || res.Step != n || res.CheckpointDir != filepath.Join(part.OutDir, CheckpointName(n)) {
		t.Fatalf("interrupted run: %+v, %v; want step %d, its checkpoint and context.Canceled", res, err, n)
	}
	part.OnStep = nil
	part.Resume = true
	part.Config = spec.Config{} // taken from the checkpoint
	res, err = Run(context.Background(), part, trainSet, nil, testLogger(t))
	if err != nil {
		t.Fatal(err)
	}
	if res.Step != 2*n {
		t.Fatalf("resumed run ended at step %d, want %d", res.Step, 2*n)
	}
	if math.Abs(res.Loss-resFull.Loss) > tol*math.Max(1, math.Abs(resFull.Loss)) {
		t.Errorf("last loss: resumed %g, uninterrupted %g", res.Loss, resFull.Loss)
	}
	compareCheckpoints(t, resFull.CheckpointDir, res.CheckpointDir, tol)

	// metrics.jsonl of the resumed run has each step exactly once.
	seen := map[float64]int{}
	for _, m := range readMetrics(t, part.OutDir) {
		if m["kind"] == "train" {
			seen[m["step"].(float64)]++
		}
	}
	for s := 1; s <= 2*n; s++ {
		if seen[float64(s)] != 1 {
			t.Errorf("metrics.jsonl has step %d %d times, want once", s, seen[float64(s)])
		}
	}
}

func TestResumeMatchesUninterruptedStandIn(t *testing.T) {
	o := standInOptions("")
	o.WarmupSteps = 3 // the schedule spans the interruption
	resumeEquivalence(t, o, NewSynthetic(o.Config, 20, 3), 5, 1e-6)
}

func TestResumePicksNewestLoadable(t *testing.T) {
	dir := t.TempDir()
	o := standInOptions(dir)
	o.Steps, o.CheckpointEvery, o.KeepCheckpoints, o.EvalEvery = 4, 2, 5, 0
	ds := NewSynthetic(o.Config, 32, 1)
	if _, err := Run(context.Background(), o, ds, nil, nil); err != nil {
		t.Fatal(err)
	}
	// Corrupt the newest checkpoint (step 4): resume must fall back to step 2.
	newest := filepath.Join(dir, CheckpointName(4))
	entries, _ := os.ReadDir(newest)
	for _, e := range entries {
		if strings.HasSuffix(e.Name(), ".json") {
			if err := os.WriteFile(filepath.Join(newest, e.Name()), []byte("{broken"), 0o644); err != nil {
				t.Fatal(err)
			}
		}
	}
	o.Resume = true
	o.Steps = 3
	var first int
	o.OnStep = func(m StepMetrics) {
		if first == 0 {
			first = m.Step
		}
	}
	res, err := Run(context.Background(), o, ds, nil, testLogger(t))
	if err != nil {
		t.Fatal(err)
	}
	if first != 3 || res.Step != 3 {
		t.Errorf("resumed run's first step %d, last %d; want 3 and 3 (from the step-2 checkpoint)", first, res.Step)
	}
}

func TestEvaluateMatchesRun(t *testing.T) {
	cfg := learnConfig()
	val := NewSynthetic(cfg, 21, 2) // not a multiple of the batch: the last batch is padded
	o := Options{Config: cfg, OutDir: t.TempDir(), Steps: 3, Batch: 8, LR: 3e-3, Seed: 3}
	before := runtime.NumGoroutine()
	res, err := Run(context.Background(), o, NewSynthetic(cfg, 32, 1), val, nil)
	if err != nil {
		t.Fatal(err)
	}
	mctx, ckCfg, backend := loadCheckpoint(t, res.CheckpointDir)
	acc, err := Evaluate(context.Background(), backend, mctx, ckCfg, val, 5)
	backend.Finalize()
	if err != nil {
		t.Fatal(err)
	}
	for _, task := range spec.Tasks {
		if math.Abs(acc[task]-res.ValAccuracy[task]) > 1e-9 {
			t.Errorf("%s: Evaluate %.4f, Run's final evaluation %.4f", task, acc[task], res.ValAccuracy[task])
		}
		// Accuracies are counts over 21 examples.
		if n := acc[task] * 21; math.Abs(n-math.Round(n)) > 1e-9 {
			t.Errorf("%s accuracy %.4f is not k/21", task, acc[task])
		}
	}
	if _, err := Evaluate(context.Background(), nil, mctx, ckCfg, val, 0); err == nil || !strings.Contains(err.Error(), "batch") {
		t.Errorf("batch 0: got %v, want an error naming batch", err)
	}
	// Every goroutine Run started has ended (a little slack for the runtime's own).
	time.Sleep(100 * time.Millisecond)
	if after := runtime.NumGoroutine(); after > before+2 {
		t.Errorf("%d goroutines before Run, %d after", before, after)
	}
}

func TestResumeRejectsOtherConfig(t *testing.T) {
	o := standInOptions(t.TempDir())
	o.Steps, o.EvalEvery = 2, 0
	ds := NewSynthetic(o.Config, 16, 1)
	if _, err := Run(context.Background(), o, ds, nil, nil); err != nil {
		t.Fatal(err)
	}
	o.Resume, o.Steps = true, 4
	o.Config.Classes = map[string][]string{"style": spec.Numbered("s", 6), "genre": spec.Numbered("g", 4), "artist": spec.Numbered("a", 4)}
	_, err := Run(context.Background(), o, ds, nil, nil)
	if err == nil || !strings.Contains(err.Error(), "config differs") {
		t.Errorf("resume with another config: got %v, want a 'config differs' error", err)
	}
}

// loadCheckpoint loads a run's checkpoint and opens a backend to run it on; the caller
// finalizes the backend.
func loadCheckpoint(t *testing.T, dir string) (*gomlxcontext.Context, spec.Config, backends.Backend) {
	t.Helper()
	mctx, cfg, err := models.LoadCheckpoint(dir)
	if err != nil {
		t.Fatal(err)
	}
	backend, err := engine.NewBackend("")
	if err != nil {
		t.Fatal(err)
	}
	return mctx, cfg, backend
}
