package benchmark

import (
	"context"
	"math"
	"os"
	"path/filepath"
	"testing"

	"github.com/artnet/artnet/engine"
	"github.com/artnet/artnet/models/spec"
	"github.com/artnet/artnet/train"
	"github.com/artnet/artnet/wikiart"
)

// referenceBackend is the backend config of the pure-Go engine's previous implementation that
// the default "go" (artnet's fast kernels) is compared with: $ARTNET_REFERENCE_BACKEND, else
// "go:reference" (GoMLX's own executors, see graph.NewBackend).
func referenceBackend(t *testing.T) string {
	c := os.Getenv("ARTNET_REFERENCE_BACKEND")
	if c == "" {
		c = "go:reference"
	}
	b, err := engine.NewBackend(c)
	if err != nil {
		t.Fatalf("reference backend: %v", err)
	}
	b.Finalize()
	return c
}

// compareConfig is spec.Tiny() at 32 px (2×2 tokens): every kind of layer, fast.
func compareConfig() spec.Config {
	c := spec.Tiny()
	c.ImageSize, c.ResizeSize = 32, 36
	return c
}

func TestCompareStep(t *testing.T) {
	ref := referenceBackend(t)
	same, err := CompareStep(compareConfig(), 3, 7, "go", "go")
	if err != nil {
		t.Fatal(err)
	}
	if same.LossRelDiff != 0 || same.GradRelDiff != 0 || same.Variables < 50 || !(same.Loss > 0) {
		t.Errorf("go vs go: %+v, want identical (and > 50 variables, a positive loss)", same)
	}
	c, err := CompareStep(compareConfig(), 3, 7, "go", ref)
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("go vs %s: loss rel diff %.3g, gradients %.3g (%s)", ref, c.LossRelDiff, c.GradRelDiff, c.WorstVariable)
	if !c.Within(1e-4) {
		t.Errorf("go vs %s: %+v, want within 1e-4", ref, c)
	}
	if c.Loss != same.Loss && math.Abs(c.Loss-same.Loss) > 1e-4*math.Abs(same.Loss) {
		t.Errorf("the same seed gave losses %g and %g", c.Loss, same.Loss)
	}
	if _, err := CompareStep(compareConfig(), 0, 7, "go", "go"); err == nil {
		t.Error("batch 0: no error")
	}
	if _, err := CompareStep(compareConfig(), 1, 7, "nosuch", "go"); err == nil {
		t.Error("unknown backend: no error")
	}
}

// runSteps trains a few steps with o on backend and returns each step's metrics.
func runSteps(t *testing.T, o train.Options, backend string, trainSet train.Dataset) []train.StepMetrics {
	t.Helper()
	var steps []train.StepMetrics
	o.Backend, o.OutDir = backend, t.TempDir()
	o.OnStep = func(m train.StepMetrics) { steps = append(steps, m) }
	if _, err := train.Run(context.Background(), o, trainSet, nil, nil); err != nil {
		t.Fatalf("%s: %v", backend, err)
	}
	return steps
}

// checkSameSteps compares the total and per-task losses of two runs step by step.
func checkSameSteps(t *testing.T, got, want []train.StepMetrics, tol float64) {
	t.Helper()
	if len(got) != len(want) || len(want) == 0 {
		t.Fatalf("%d steps vs %d", len(got), len(want))
	}
	close := func(a, b float64) bool { return math.Abs(a-b) <= tol*math.Max(math.Abs(b), 1) }
	for i := range want {
		if !close(got[i].Loss, want[i].Loss) {
			t.Errorf("step %d: loss %.8g, reference %.8g", i+1, got[i].Loss, want[i].Loss)
		}
		for _, task := range spec.Tasks {
			if !close(got[i].TaskLoss[task], want[i].TaskLoss[task]) || !close(got[i].LogVar[task], want[i].LogVar[task]) {
				t.Errorf("step %d %s: loss %.8g s %.8g, reference %.8g s %.8g", i+1, task,
					got[i].TaskLoss[task], got[i].LogVar[task], want[i].TaskLoss[task], want[i].LogVar[task])
			}
		}
	}
	if want[0].Loss == want[len(want)-1].Loss {
		t.Errorf("loss did not change over %d steps (%g): nothing was trained", len(want), want[0].Loss)
	}
	t.Logf("%d steps: losses %.6g … %.6g agree within %g", len(want), want[0].Loss, want[len(want)-1].Loss, tol)
}

// TestSyntheticTrainingMatchesReference: the demo's training (`artnet train --synthetic`: the
// tiny model, its default lr 3e-3, weight decay 1e-4, warm-up 10, cosine) gives the same losses
// on the default go backend as on the reference implementation, for a fixed seed.
func TestSyntheticTrainingMatchesReference(t *testing.T) {
	ref := referenceBackend(t)
	cfg := spec.Tiny()
	o := train.Options{Config: cfg, Steps: 4, Batch: 4, LR: 3e-3, WeightDecay: 1e-4, WarmupSteps: 10, Seed: 1}
	data := train.NewSynthetic(cfg, 64, 1)
	checkSameSteps(t, runSteps(t, o, "go", data), runSteps(t, o, ref, data), 1e-4)
}

// TestWikiArtTrainingMatchesReference: the WikiArt trainer's pieces — decoded, augmented images
// (random resized crop, flip, colour jitter), the balanced style sampler, AdamW with weight
// decay 0.01, gradient clipping at 5, a frozen encoder and attention (phase 1 of
// configs/base.yaml) — give the same losses on go as on the reference implementation. The
// images are the repository's test images (no ../shared needed).
func TestWikiArtTrainingMatchesReference(t *testing.T) {
	ref := referenceBackend(t)
	cfg := spec.Tiny()
	root := filepath.Join("..", "testdata", "images")
	var samples []wikiart.Sample
	for i, f := range []string{"quad.jpg", "gray.jpg", "pil-420.jpg", "pil-422.jpg", "pil-progressive.jpg", "cmyk.jpg", "quad.png", "nrgba.png"} {
		lb := [3]int{i % 3, i % 4, wikiart.Absent}
		if i%2 == 0 {
			lb[2] = i % 5
		}
		samples = append(samples, wikiart.Sample{Path: f, Labels: lb})
	}
	data, err := train.NewWikiArt(context.Background(), samples, train.WikiArtOptions{
		Images: root, Config: cfg, Augment: true, Seed: 1, Jitter: 0.2, Workers: 2})
	if err != nil {
		t.Fatal(err)
	}
	style := make([]int, len(samples))
	for i, s := range samples {
		style[i] = s.Labels[0]
	}
	o := train.Options{Config: cfg, Steps: 4, Batch: 4, LR: 1e-3, WeightDecay: 0.01, WarmupSteps: 2, Seed: 1,
		ClipNorm: 5, Freeze: []string{"/encoder", "/attention"}, Sampler: train.BalancedSampler(style)}
	checkSameSteps(t, runSteps(t, o, "go", data), runSteps(t, o, ref, data), 1e-4)
}
