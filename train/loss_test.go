package train

import (
	"math"
	"testing"

	"github.com/gomlx/gomlx/backends"
	"github.com/gomlx/gomlx/backends/simplego"
	. "github.com/gomlx/gomlx/pkg/core/graph" //nolint:staticcheck
	"github.com/gomlx/gomlx/pkg/core/tensors"
	gomlxcontext "github.com/gomlx/gomlx/pkg/ml/context"
)

func lossBackend(t *testing.T) backends.Backend {
	t.Helper()
	b, err := simplego.New("")
	if err != nil {
		t.Fatalf("simplego backend: %v", err)
	}
	t.Cleanup(b.Finalize)
	return b
}

// Hand-computed (γ = 2): p_t = 0.5 → 0.25·ln 2; p_t = 0.75 → 0.0625·ln(4/3); p_t = 0.25 → 0.5625·ln 4.
const (
	flHalf    = 0.25 * 0.6931471805599453   // 0.173286795…
	flThree4  = 0.0625 * 0.2876820724517809 // 0.017980129…
	flQuarter = 0.5625 * 1.3862943611198906 // 0.779790578…
)

func runFocal(t *testing.T, logits [][]float32, labels []int32, gamma float64) (loss, count float64, grad []float32) {
	t.Helper()
	b := lossBackend(t)
	exec, err := NewExec(b, func(lg, lb *Node) []*Node {
		l, c := FocalLoss(lg, lb, gamma)
		return []*Node{l, c, Gradient(l, lg)[0]}
	})
	if err != nil {
		t.Fatal(err)
	}
	out, err := exec.Exec(logits, labels)
	if err != nil {
		t.Fatalf("exec: %v", err)
	}
	return float64(tensors.ToScalar[float32](out[0])), float64(tensors.ToScalar[float32](out[1])), tensors.MustCopyFlatData[float32](out[2])
}

func near(a, b, tol float64) bool { return math.Abs(a-b) <= tol*(1+math.Abs(b)) }

func TestFocalLossHandComputed(t *testing.T) {
	ln3 := float32(math.Log(3))
	logits := [][]float32{{0, 0}, {ln3, 0}, {ln3, 0}, {5, -5}}
	labels := []int32{0, 0, 1, -1} // the last sample has no label: masked out
	loss, count, grad := runFocal(t, logits, labels, 2)
	want := (flHalf + flThree4 + flQuarter) / 3
	if !near(loss, want, 1e-5) || count != 3 {
		t.Errorf("focal loss = %.7f (count %g), want %.7f (count 3)", loss, count, want)
	}
	// The absent sample gets no gradient.
	if grad[6] != 0 || grad[7] != 0 {
		t.Errorf("gradient of the masked sample = %v, want 0", grad[6:8])
	}

	// γ = 0 is the plain cross-entropy.
	loss, _, _ = runFocal(t, logits, labels, 0)
	wantCE := (math.Log(2) + math.Log(4.0/3) + math.Log(4)) / 3
	if !near(loss, wantCE, 1e-5) {
		t.Errorf("γ=0 loss = %.7f, want cross-entropy %.7f", loss, wantCE)
	}
}

func TestFocalLossAllAbsentIsZero(t *testing.T) {
	loss, count, grad := runFocal(t, [][]float32{{1, 2, 3}, {3, 2, 1}}, []int32{-1, -1}, 2)
	if loss != 0 || count != 0 {
		t.Errorf("all-absent batch: loss %g count %g, want 0, 0", loss, count)
	}
	for _, g := range grad {
		if g != 0 || math.IsNaN(float64(g)) {
			t.Fatalf("all-absent batch gradient %v, want zeros", grad)
		}
	}
}

func TestFocalLossConfidentIsFinite(t *testing.T) {
	loss, _, grad := runFocal(t, [][]float32{{100, -100}, {-100, 100}}, []int32{0, 0}, 2)
	if math.IsNaN(loss) || math.IsInf(loss, 0) {
		t.Fatalf("loss %g not finite", loss)
	}
	// Sample 1 is confidently wrong: its loss is ≈ 200/2 = 100 per sample → mean ≈ 100.
	if !near(loss, 100, 1e-3) {
		t.Errorf("loss = %g, want ≈ 100", loss)
	}
	for _, g := range grad {
		if math.IsNaN(float64(g)) || math.IsInf(float64(g), 0) {
			t.Fatalf("gradient %v not finite", grad)
		}
	}
}

func TestMultiTaskLossKendall(t *testing.T) {
	b := lossBackend(t)
	ctx := gomlxcontext.New()
	ln3 := float32(math.Log(3))
	logits := map[string][][]float32{
		"style":  {{0, 0}, {ln3, 0}, {ln3, 0}, {5, -5}},
		"genre":  {{1, 0, 0}, {0, 1, 0}, {0, 0, 1}, {1, 1, 1}},
		"artist": {{0, 0}, {0, 0}, {7, 1}, {7, 1}},
	}
	// Columns in spec.Tasks order: style, genre, artist. Genre has no label at all in this batch.
	labels := [][]int32{{0, -1, 0}, {0, -1, 1}, {1, -1, -1}, {-1, -1, -1}}
	exec, err := gomlxcontext.NewExec(b, ctx, func(ctx *gomlxcontext.Context, s, gn, a, lb *Node) []*Node {
		total, per := MultiTaskLoss(ctx, map[string]*Node{"style": s, "genre": gn, "artist": a}, lb, 2)
		return []*Node{total, per["style"], per["genre"], per["artist"]}
	})
	if err != nil {
		t.Fatal(err)
	}
	run := func() []float64 {
		out, err := exec.Exec(logits["style"], logits["genre"], logits["artist"], labels)
		if err != nil {
			t.Fatalf("exec: %v", err)
		}
		r := make([]float64, len(out))
		for i, o := range out {
			r[i] = float64(tensors.ToScalar[float32](o))
		}
		return r
	}
	lStyle := (flHalf + flThree4 + flQuarter) / 3
	lArtist := flHalf // two samples with p_t = 0.5

	// s_k = 0 initially: total = L_style + L_artist (genre absent → 0).
	got := run()
	if !near(got[0], lStyle+lArtist, 1e-5) || got[2] != 0 {
		t.Errorf("s=0: total %.7f genre %.7f, want %.7f and 0", got[0], got[2], lStyle+lArtist)
	}

	// Set s_style = 0.5, s_genre = -0.2, s_artist = 0: total = e^-0.5·L_s + 0.5 + L_a (= 0.8696122).
	for task, v := range map[string]float32{"style": 0.5, "genre": -0.2, "artist": 0} {
		variable := ctx.GetVariableByScopeAndName("/"+UncertaintyScope, "log_var_"+task)
		if variable == nil {
			t.Fatalf("variable %s/log_var_%s not created", UncertaintyScope, task)
		}
		if err := variable.SetValue(tensors.FromValue(v)); err != nil {
			t.Fatal(err)
		}
	}
	got = run()
	want := math.Exp(-0.5)*lStyle + 0.5 + lArtist
	if !near(got[0], want, 1e-5) || !near(want, 0.86961217773701, 1e-9) {
		t.Errorf("total = %.7f, want %.7f", got[0], want)
	}
	if !near(got[1], lStyle, 1e-5) || !near(got[3], lArtist, 1e-5) {
		t.Errorf("per-task losses %v, want style %.7f artist %.7f", got[1:], lStyle, lArtist)
	}
}
