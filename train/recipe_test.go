package train

import (
	"context"
	"errors"
	"math"
	"math/rand/v2"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/gomlx/gomlx/pkg/core/graph"
	"github.com/gomlx/gomlx/pkg/core/tensors"
	gomlxcontext "github.com/gomlx/gomlx/pkg/ml/context"
	"github.com/gomlx/gomlx/pkg/ml/layers"

	"github.com/artnet/artnet/export"
	artgraph "github.com/artnet/artnet/graph"
	"github.com/artnet/artnet/internal/testenv"
	"github.com/artnet/artnet/models"
	"github.com/artnet/artnet/models/spec"
)

// runSoftFocal evaluates SoftTargets + SoftFocalLoss for labels a, b mixed with lam.
func runSoftFocal(t *testing.T, logits [][]float32, a, b []int32, lam []float32, smoothing, gamma float64) (loss float64, target []float32, mask []float32) {
	t.Helper()
	backend := lossBackend(t)
	exec, err := graph.NewExec(backend, func(lg, a, b, lam *graph.Node) []*graph.Node {
		tg, m := SoftTargets(a, b, lam, lg.Shape().Dimensions[1], smoothing)
		return []*graph.Node{SoftFocalLoss(lg, tg, m, gamma), tg, m}
	})
	if err != nil {
		t.Fatal(err)
	}
	out, err := exec.Exec(logits, a, b, lam)
	if err != nil {
		t.Fatal(err)
	}
	return scalar(out[0]), tensors.MustCopyFlatData[float32](out[1]), tensors.MustCopyFlatData[float32](out[2])
}

// TestSoftFocalLoss: with one-hot targets the soft loss is FocalLoss; label smoothing and a
// mixed pair give the hand-computed −Σ_c t_c (1−p_c)^γ log p_c; an example whose own or
// partner's label is absent is masked for that task (the rule chosen: both must be present).
func TestSoftFocalLoss(t *testing.T) {
	logits := [][]float32{{2, -1, 0.5}, {0.1, 0.2, 3}, {-2, 1, 1}, {0, 0, 0}}
	labels := []int32{0, 2, -1, 1}
	hard, _, _ := runFocal(t, logits, labels, 2)
	soft, _, mask := runSoftFocal(t, logits, labels, labels, []float32{1, 1, 1, 1}, 0, 2)
	if !near(soft, hard, 1e-6) {
		t.Errorf("one-hot soft focal loss %g, FocalLoss %g", soft, hard)
	}
	if want := []float32{1, 1, 0, 1}; !equalF32(mask, want) {
		t.Errorf("mask %v, want %v", mask, want)
	}

	// Hand computation: smoothing ε and mixing λ.
	const eps, gamma = 0.1, 2.0
	partner := []int32{1, -1, 0, 1} // example 1's partner lacks the label, example 2 lacks its own
	lam := []float32{0.7, 0.6, 0.5, 0.25}
	got, target, mask := runSoftFocal(t, logits, labels, partner, lam, eps, gamma)
	if want := []float32{1, 0, 0, 1}; !equalF32(mask, want) {
		t.Errorf("mixed mask %v, want %v (masked when either label is absent)", mask, want)
	}
	var sum float64
	n := 0
	for b, row := range logits {
		if labels[b] < 0 || partner[b] < 0 {
			continue
		}
		var z float64
		for _, v := range row {
			z += math.Exp(float64(v))
		}
		var fl float64
		for c, v := range row {
			tc := eps / 3
			if int32(c) == labels[b] {
				tc += (1 - eps) * float64(lam[b])
			}
			if int32(c) == partner[b] {
				tc += (1 - eps) * (1 - float64(lam[b]))
			}
			if d := float64(target[b*3+c]) - tc; math.Abs(d) > 1e-6 {
				t.Errorf("target[%d][%d] = %g, want %g", b, c, target[b*3+c], tc)
			}
			p := math.Exp(float64(v)) / z
			fl -= tc * math.Pow(1-p, gamma) * math.Log(p)
		}
		sum += fl
		n++
	}
	if want := sum / float64(n); !near(got, want, 1e-5) {
		t.Errorf("soft focal loss %g, hand-computed %g", got, want)
	}
}

func equalF32(a, b []float32) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i] != b[i] {
			return false
		}
	}
	return true
}

// TestMixBatch: mixup mixes example b with B−1−b by the batch's λ and gives the partner's
// labels; CutMix swaps one box between partners and λ is the area kept; both are functions of
// (seed, stream position) only; mix_prob 0.5 leaves about half the batches alone.
func TestMixBatch(t *testing.T) {
	const size, batch = 8, 6
	nt := len(spec.Tasks)
	per := 3 * size * size
	rng := rand.New(rand.NewPCG(1, 2))
	orig := make([]float32, batch*per)
	for i := range orig {
		orig[i] = float32(rng.NormFloat64())
	}
	labels := make([]int32, batch*nt)
	for i := range labels {
		labels[i] = int32(i % 5)
	}
	labels[1*nt+1] = -1
	run := func(m Mix, pos int) ([]float32, []int32, []float32, float64, string) {
		img := append([]float32(nil), orig...)
		partner := make([]int32, len(labels))
		lam := make([]float32, batch)
		l, kind := m.mixBatch(5, pos, img, labels, partner, lam, size)
		return img, partner, lam, l, kind
	}

	img, partner, lam, l, kind := run(Mix{Mixup: 0.4}, 100)
	if kind != "mixup" || !(l > 0 && l < 1) {
		t.Fatalf("mixup: kind %q λ %g", kind, l)
	}
	for b := range batch {
		q := batch - 1 - b
		if lam[b] != float32(l) {
			t.Errorf("λ[%d] = %g, want the batch's %g", b, lam[b], l)
		}
		for k := range nt {
			if partner[b*nt+k] != labels[q*nt+k] {
				t.Errorf("partner label [%d][%d] = %d, want example %d's %d", b, k, partner[b*nt+k], q, labels[q*nt+k])
			}
		}
		for i := range per {
			want := float32(l)*orig[b*per+i] + float32(1-l)*orig[q*per+i]
			if math.Abs(float64(img[b*per+i]-want)) > 1e-5 {
				t.Fatalf("mixup pixel %d of example %d = %g, want %g", i, b, img[b*per+i], want)
			}
		}
	}
	again, _, _, l2, _ := run(Mix{Mixup: 0.4}, 100)
	if l2 != l || !equalF32(again, img) {
		t.Error("mixup is not a function of (seed, position)")
	}
	if _, _, _, l3, _ := run(Mix{Mixup: 0.4}, 101); l3 == l {
		t.Error("the next position drew the same λ")
	}

	img, _, _, l, kind = run(Mix{CutMix: 1}, 7)
	if kind != "cutmix" {
		t.Fatalf("kind %q, want cutmix", kind)
	}
	for b := range batch {
		q := batch - 1 - b
		own, other := 0, 0
		for i := range per {
			switch img[b*per+i] {
			case orig[b*per+i]:
				own++
			case orig[q*per+i]:
				other++
			default:
				t.Fatalf("cutmix pixel %d of example %d is neither its own nor its partner's", i, b)
			}
		}
		if got := float64(own) / float64(per); math.Abs(got-l) > 1e-9 {
			t.Errorf("example %d keeps %g of its pixels, λ says %g", b, got, l)
		}
	}

	mixed := 0
	for pos := range 200 {
		if _, _, _, _, kind := run(Mix{Mixup: 1, CutMix: 1, Prob: 0.5}, pos); kind != "" {
			mixed++
		}
	}
	if mixed < 70 || mixed > 130 {
		t.Errorf("mix_prob 0.5 mixed %d of 200 batches", mixed)
	}
	if _, p, lam, l, kind := run(Mix{}, 3); kind != "" || l != 1 || lam[0] != 1 || p[0] != labels[0] {
		t.Errorf("no mixing configured, yet kind %q λ %g", kind, l)
	}
}

// TestBetaSample: Beta(α, α) has mean ½ and variance 1/(4(2α+1)).
func TestBetaSample(t *testing.T) {
	rng := rand.New(rand.NewPCG(3, 4))
	for _, a := range []float64{0.2, 1, 4} {
		var s, s2 float64
		const n = 20000
		for range n {
			x := betaSample(rng, a)
			if x < 0 || x > 1 {
				t.Fatalf("Beta(%g) drew %g", a, x)
			}
			s += x
			s2 += x * x
		}
		mean, v := s/n, s2/n-(s/n)*(s/n)
		if want := 1 / (4 * (2*a + 1)); math.Abs(mean-0.5) > 0.01 || math.Abs(v-want) > 0.1*want {
			t.Errorf("Beta(%g): mean %g variance %g, want 0.5 and %g", a, mean, v, want)
		}
	}
}

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

// TestAccumulationNotIdentityWithBatchStatistics guards the test above against vacuity: the
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

// TestEMA: the averages follow ema_k = d·ema_{k−1} + (1−d)·w_k step after step, OutDir/ema
// is a model checkpoint holding the newest averages under the model's own names, and the
// accuracy logged for the EMA weights is that checkpoint's.
func TestEMA(t *testing.T) {
	dir := t.TempDir()
	o := standInOptions(dir)
	const d = 0.8
	o.EMADecay = d
	o.Steps, o.CheckpointEvery, o.KeepCheckpoints, o.EvalEvery = 3, 1, 5, 0
	var evals []EvalMetrics
	o.OnEval = func(m EvalMetrics) { evals = append(evals, m) }
	val := NewSynthetic(o.Config, 16, 2)
	res, err := Run(context.Background(), o, NewSynthetic(o.Config, 48, 1), val, testLogger(t))
	if err != nil {
		t.Fatal(err)
	}
	vals := func(step int) (w, e map[string][]float64) {
		w, e = map[string][]float64{}, map[string][]float64{}
		ctx, _, err := models.LoadCheckpoint(filepath.Join(dir, CheckpointName(step)))
		if err != nil {
			t.Fatal(err)
		}
		for v := range ctx.IterVariables() {
			x, _ := v.Value()
			switch {
			case underScope(v.Scope(), EMAScope) && v.Scope() != EMAScope:
				e[strings.TrimPrefix(v.Scope(), EMAScope)+"/"+v.Name()] = flatFloats(x)
			case underScope(v.Scope(), "/hidden") || strings.HasPrefix(v.Scope(), "/head_"):
				w[v.Scope()+"/"+v.Name()] = flatFloats(x)
			}
		}
		return w, e
	}
	_, prev := vals(1)
	if len(prev) != 8 { // hidden and 3 heads: weights and biases
		t.Fatalf("EMA holds %d variables, want 8 (%v)", len(prev), prev)
	}
	for step := 2; step <= 3; step++ {
		w, e := vals(step)
		for name, ws := range w {
			for i := range ws {
				want := d*prev[name][i] + (1-d)*ws[i]
				if math.Abs(e[name][i]-want) > 1e-6*(1+math.Abs(want)) {
					t.Fatalf("step %d: ema %s[%d] = %g, want %g", step, name, i, e[name][i], want)
				}
			}
			if maxAbsDiff64(e[name], ws) == 0 {
				t.Errorf("step %d: ema %s equals the weights", step, name)
			}
		}
		prev = e
	}
	ectx, cfg, err := models.LoadCheckpoint(filepath.Join(dir, EMADir))
	if err != nil {
		t.Fatal(err)
	}
	n := 0
	for v := range ectx.IterVariables() {
		x, _ := v.Value()
		if want, ok := prev[v.Scope()+"/"+v.Name()]; !ok || maxAbsDiff64(flatFloats(x), want) != 0 {
			t.Errorf("ema checkpoint %s is not the step-3 average", v.ScopeAndName())
		}
		n++
	}
	if n != len(prev) {
		t.Errorf("ema checkpoint holds %d variables, want %d", n, len(prev))
	}
	backend, err := artgraph.NewBackend("go")
	if err != nil {
		t.Fatal(err)
	}
	defer backend.Finalize()
	ev := newEvaluator(backend, ectx, cfg, o.Model, o.Batch)
	defer ev.close()
	acc, err := ev.run(context.Background(), val)
	if err != nil {
		t.Fatal(err)
	}
	last := evals[len(evals)-1]
	if len(evals) != 1 || last.EMAAccuracy == nil || res.Step != 3 {
		t.Fatalf("evaluations %+v, want one at step 3 with EMA accuracy", evals)
	}
	for task, a := range acc {
		if last.EMAAccuracy[task] != a {
			t.Errorf("%s: logged EMA accuracy %g, the ema checkpoint's %g", task, last.EMAAccuracy[task], a)
		}
	}
}

func maxAbsDiff64(a, b []float64) float64 {
	if len(a) != len(b) {
		return math.Inf(1)
	}
	var m float64
	for i := range a {
		m = math.Max(m, math.Abs(a[i]-b[i]))
	}
	return m
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

// TestEMACheckpointIsADeepArtNet: with the real model, OutDir/ema holds every DeepArtNet
// variable (batch-norm statistics included), loads as a model checkpoint, and Evaluate on it
// gives the EMA accuracy the run logged, exports to ONNX; with decay d it is neither the last weights nor the
// first.
func TestEMACheckpointIsADeepArtNet(t *testing.T) {
	cfg := learnConfig()
	val := NewSynthetic(cfg, 16, 2)
	o := Options{Config: cfg, OutDir: t.TempDir(), Steps: 3, Batch: 8, LR: 3e-3, Seed: 3, EMADecay: 0.5,
		LabelSmoothing: 0.1, Mix: Mix{Mixup: 0.2}}
	var last EvalMetrics
	o.OnEval = func(m EvalMetrics) { last = m }
	res, err := Run(context.Background(), o, NewSynthetic(cfg, 32, 1), val, nil)
	if err != nil {
		t.Fatal(err)
	}
	ectx, ckCfg, backend := loadCheckpoint(t, filepath.Join(o.OutDir, EMADir))
	defer backend.Finalize()
	acc, err := Evaluate(context.Background(), backend, ectx, ckCfg, val, 8)
	if err != nil {
		t.Fatal(err)
	}
	for _, task := range spec.Tasks {
		if acc[task] != last.EMAAccuracy[task] {
			t.Errorf("%s: EMA checkpoint's accuracy %g, the run logged %g", task, acc[task], last.EMAAccuracy[task])
		}
	}
	if m, err := export.Model(ectx, ckCfg); err != nil || len(m.Graph.Node) == 0 {
		t.Errorf("export of the EMA checkpoint: %v", err)
	}
	wctx, _, err := models.LoadCheckpoint(res.CheckpointDir)
	if err != nil {
		t.Fatal(err)
	}
	n, differ := 0, 0
	for v := range wctx.IterVariables() {
		if !isModelVariable(v.Scope()) || underScope(v.Scope(), "/"+UncertaintyScope) {
			continue
		}
		e := ectx.GetVariableByScopeAndName(v.Scope(), v.Name())
		if e == nil {
			t.Fatalf("EMA checkpoint lacks %s", v.ScopeAndName())
		}
		a, _ := v.Value()
		b, _ := e.Value()
		if maxAbsDiff64(flatFloats(a), flatFloats(b)) > 0 {
			differ++
		}
		n++
	}
	if n == 0 || differ < n/2 {
		t.Errorf("%d of %d model variables differ between the EMA and the weights", differ, n)
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
