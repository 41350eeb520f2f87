package train

import (
	"context"
	"math"
	"path/filepath"
	"strings"
	"testing"

	"github.com/artnet/artnet/engine"
	"github.com/artnet/artnet/export"
	"github.com/artnet/artnet/models"
	"github.com/artnet/artnet/models/spec"
)

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
	backend, err := engine.NewBackend("go")
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
