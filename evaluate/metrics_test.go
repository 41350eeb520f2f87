package evaluate

import (
	"bytes"
	"image/png"
	"math"
	"os"
	"path/filepath"
	"testing"
)

func near(a, b float64) bool { return math.Abs(a-b) < 1e-12 }

// A hand-made 3-class matrix:
//
//	truth\pred  a  b  c
//	a           3  1  0
//	b           2  2  0
//	c           1  0  0   (c is never predicted: precision undefined)
func TestPerClassHandMade(t *testing.T) {
	c := NewConfusion([]string{"a", "b", "c"})
	c.M = [][]int{{3, 1, 0}, {2, 2, 0}, {1, 0, 0}}
	pc := c.PerClass()
	// a: support 4, predicted 6, correct 3 → P 0.5, R 0.75, F1 0.6
	// b: support 4, predicted 3, correct 2 → P 2/3, R 0.5, F1 4/7
	// c: support 1, predicted 0 → P undefined, R 0, F1 0
	want := []struct {
		sup, pred, corr int
		p, r, f         float64
		pDef            bool
	}{
		{4, 6, 3, 0.5, 0.75, 0.6, true},
		{4, 3, 2, 2.0 / 3, 0.5, 4.0 / 7, true},
		{1, 0, 0, 0, 0, 0, false},
	}
	for i, w := range want {
		m := pc[i]
		if m.Support != w.sup || m.Predicted != w.pred || m.Correct != w.corr {
			t.Errorf("%s: support/predicted/correct %d/%d/%d, want %d/%d/%d", m.Class, m.Support, m.Predicted, m.Correct, w.sup, w.pred, w.corr)
		}
		if (m.Precision != nil) != w.pDef {
			t.Errorf("%s: precision defined %v, want %v", m.Class, m.Precision != nil, w.pDef)
		}
		if w.pDef && !near(*m.Precision, w.p) {
			t.Errorf("%s: precision %g, want %g", m.Class, *m.Precision, w.p)
		}
		if m.Recall == nil || !near(*m.Recall, w.r) || m.F1 == nil || !near(*m.F1, w.f) {
			t.Errorf("%s: recall %v F1 %v, want %g %g", m.Class, m.Recall, m.F1, w.r, w.f)
		}
	}
	a := Average(pc)
	if !near(a.MacroPrecision, (0.5+2.0/3+0)/3) || !near(a.MacroRecall, (0.75+0.5+0)/3) ||
		!near(a.MacroF1, (0.6+4.0/7)/3) || !near(a.WeightedF1, (4*0.6+4*4.0/7)/9) {
		t.Errorf("averages %+v", a)
	}
}

// A class absent from the split (support 0) has undefined recall and F1 and is left out of the
// macro averages; if it is predicted, its precision is 0.
func TestAbsentClass(t *testing.T) {
	c := NewConfusion([]string{"a", "b", "absent"})
	c.M = [][]int{{2, 0, 1}, {0, 1, 0}, {0, 0, 0}}
	pc := c.PerClass()
	if pc[2].Recall != nil || pc[2].F1 != nil {
		t.Errorf("absent class: recall %v F1 %v, want undefined", pc[2].Recall, pc[2].F1)
	}
	if pc[2].Precision == nil || *pc[2].Precision != 0 {
		t.Errorf("absent but predicted class: precision %v, want 0", pc[2].Precision)
	}
	a := Average(pc)
	// a: P 1, R 2/3, F1 0.8; b: P 1, R 1, F1 1 → macro over 2 classes.
	if !near(a.MacroRecall, (2.0/3+1)/2) || !near(a.MacroF1, 0.9) || !near(a.MacroPrecision, 1) {
		t.Errorf("averages %+v", a)
	}
	if got := Average(NewConfusion([]string{"x", "y"}).PerClass()); got != (Averages{}) {
		t.Errorf("empty matrix averages %+v", got)
	}
	if err := c.Add(3, 0); err == nil {
		t.Error("Add out of range: no error")
	}
}

func TestArgmaxRank(t *testing.T) {
	p := []float32{0.1, 0.4, 0.4, 0.05, 0.05}
	if Argmax(p) != 1 {
		t.Errorf("argmax %d, want 1 (first of the tie)", Argmax(p))
	}
	for truth, want := range []int{2, 0, 1, 3, 4} {
		if r := Rank(p, truth); r != want {
			t.Errorf("rank of %d = %d, want %d", truth, r, want)
		}
	}
}

func TestConfusionCSVRoundTripAndHeatMap(t *testing.T) {
	c := NewConfusion([]string{"Art_Nouveau", "Baroque, late", "Cubism"})
	c.M = [][]int{{5, 1, 0}, {0, 0, 0}, {2, 0, 7}}
	dir := t.TempDir()
	f := filepath.Join(dir, "c.csv")
	if err := os.WriteFile(f, c.CSV(), 0o644); err != nil {
		t.Fatal(err)
	}
	back, err := ReadConfusionCSV(f)
	if err != nil {
		t.Fatal(err)
	}
	for i := range c.M {
		for j := range c.M[i] {
			if back.M[i][j] != c.M[i][j] || back.Classes[i] != c.Classes[i] {
				t.Fatalf("round trip: %v %v, want %v %v", back.Classes, back.M, c.Classes, c.M)
			}
		}
	}
	b, err := c.HeatMapPNG("test")
	if err != nil {
		t.Fatal(err)
	}
	img, err := png.Decode(bytes.NewReader(b))
	if err != nil {
		t.Fatal(err)
	}
	if img.Bounds().Dx() < 300 || img.Bounds().Dy() < 300 {
		t.Errorf("heat map %v too small", img.Bounds())
	}
	if os.Getenv("EVAL_KEEP_PNG") != "" {
		_ = os.WriteFile(os.Getenv("EVAL_KEEP_PNG"), b, 0o644)
	}
	if err := os.WriteFile(filepath.Join(dir, "bad.csv"), []byte("truth\\predicted,a,b\na,1,x\nb,0,1\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	if _, err := ReadConfusionCSV(filepath.Join(dir, "bad.csv")); err == nil {
		t.Error("bad count accepted")
	}
}
