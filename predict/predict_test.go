package predict

import (
	"math"
	"testing"

	"github.com/artnet/artnet/models/spec"
)

func TestTopKOrdersAndClamps(t *testing.T) {
	names := []string{"a", "b", "c", "d"}
	got := TopK([]float32{0.1, 0.5, 0.15, 0.25}, names, 3)
	want := []string{"b", "d", "c"}
	if len(got) != 3 {
		t.Fatalf("len %d, want 3", len(got))
	}
	for i, w := range want {
		if got[i].Label != w {
			t.Errorf("rank %d: %s, want %s", i, got[i].Label, w)
		}
	}
	if math.Abs(got[0].Confidence-0.5) > 1e-7 {
		t.Errorf("confidence %g, want 0.5", got[0].Confidence)
	}
	if n := len(TopK([]float32{0.3, 0.7}, names[:2], 10)); n != 2 {
		t.Errorf("k beyond class count: %d entries, want 2", n)
	}
}

func TestPostprocessPicksRowOfBatch(t *testing.T) {
	cfg := spec.Tiny()
	res := &Result{Batch: 2, Probs: map[string][]float32{}}
	for _, task := range spec.Tasks {
		n := cfg.NumClasses(task)
		p := make([]float32, 2*n)
		p[3] = 0.9   // image 0 → class 3
		p[n+1] = 0.8 // image 1 → class 1
		res.Probs[task] = p
	}
	res.Attention = make([]float32, 2*cfg.Tokens())
	res.Attention[cfg.Tokens()+2] = 1
	pr, err := postprocess(cfg, res, 1, "x.png", 2, true)
	if err != nil {
		t.Fatal(err)
	}
	for _, task := range spec.Tasks {
		tp := *pr.Task(task)
		if tp.Label != cfg.Classes[task][1] || len(tp.TopK) != 2 {
			t.Errorf("%s: %+v, want label %s with top-2", task, tp, cfg.Classes[task][1])
		}
	}
	if len(pr.Attention) != cfg.Tokens() || pr.Attention[2] != 1 {
		t.Errorf("attention row not image 1's: %v", pr.Attention)
	}
	h, w := cfg.Grid()
	if pr.Grid[0] != h || pr.Grid[1] != w {
		t.Errorf("grid %v, want %dx%d", pr.Grid, h, w)
	}
	if p0, err := postprocess(cfg, res, 0, "y", 1, false); err != nil || p0.Style.Label != cfg.Classes["style"][3] || p0.Style.TopK != nil || p0.Attention != nil {
		t.Errorf("image 0: %+v, %v", p0, err)
	}
}

func TestPredictionTaskUnknown(t *testing.T) {
	var p Prediction
	for _, task := range spec.Tasks {
		if p.Task(task) == nil {
			t.Errorf("Task(%q) is nil", task)
		}
	}
	if got := p.Task("colour"); got != nil {
		t.Errorf("Task(%q) = %p, want nil (it is no task)", "colour", got)
	}
}

// TestResultOutputAndRow: Output finds a task's probabilities and the attention by output name,
// nil for an unknown one; Row slices image i's row of it, nil out of range.
func TestResultOutputAndRow(t *testing.T) {
	task := spec.Tasks[0]
	r := &Result{Batch: 2, Probs: map[string][]float32{task: {1, 2, 3, 4, 5, 6}}, Attention: []float32{7, 8, 9, 10}}
	if got := r.Output(task); len(got) != 6 || got[5] != 6 {
		t.Errorf("Output(%s) = %v", task, got)
	}
	if got := r.Output(spec.OutputAttention); len(got) != 4 || got[0] != 7 {
		t.Errorf("Output(attention) = %v", got)
	}
	if r.Output("nope") != nil || r.Row("nope", 0) != nil || r.Row(task, 2) != nil || r.Row(task, -1) != nil {
		t.Error("an unknown output or a row out of range is not nil")
	}
	if got := r.Row(task, 1); len(got) != 3 || got[0] != 4 {
		t.Errorf("Row(%s, 1) = %v", task, got)
	}
	if got := r.Row(spec.OutputAttention, 1); len(got) != 2 || got[0] != 9 {
		t.Errorf("Row(attention, 1) = %v", got)
	}
}
