// Package evaluate measures how well an artnet model recognizes the three tasks on a labelled
// split: top-1 and top-k accuracy, per-class precision, recall, F1 and support, and the
// confusion matrix, computed per task over the samples that carry that task's label. It runs
// any predict.Predictor (ONNX Runtime or GoMLX), so both runtimes are measured by the same
// code, and it writes the report (summary.json, confusion CSVs and heat-map PNGs) atomically.
// It also draws training curves from a trainer's metrics.jsonl (PlotCurves).
//
// Conventions for undefined ratios (documented once, used everywhere):
//   - recall of a class with no labelled sample in the split (support 0) is undefined: the
//     class is listed in Absent, its recall and F1 are null in JSON, and it is left out of the
//     macro averages;
//   - precision of a class that the model never predicted is undefined (0/0): null in JSON,
//     counted as 0 in the macro average and in F1 (scikit-learn's zero_division=0), so a class
//     the model ignores scores F1 = 0 rather than disappearing from the average.
package evaluate

import (
	"fmt"
)

// Confusion is a confusion matrix: M[truth][predicted] counts samples.
type Confusion struct {
	Classes []string
	M       [][]int
}

// NewConfusion returns an empty n×n confusion matrix for the named classes.
func NewConfusion(classes []string) *Confusion {
	m := make([][]int, len(classes))
	for i := range m {
		m[i] = make([]int, len(classes))
	}
	return &Confusion{Classes: classes, M: m}
}

// Add counts one sample of class truth predicted as pred.
func (c *Confusion) Add(truth, pred int) error {
	n := len(c.Classes)
	if truth < 0 || truth >= n || pred < 0 || pred >= n {
		return fmt.Errorf("confusion: class out of range: truth %d, predicted %d, %d classes", truth, pred, n)
	}
	c.M[truth][pred]++
	return nil
}

// Total returns the number of samples counted.
func (c *Confusion) Total() int {
	s := 0
	for _, r := range c.M {
		for _, v := range r {
			s += v
		}
	}
	return s
}

// ClassMetrics are one class's scores. Nil pointers are undefined ratios (see the package doc).
type ClassMetrics struct {
	Class     string   `json:"class"`
	Support   int      `json:"support"`   // samples whose true class it is
	Predicted int      `json:"predicted"` // samples predicted as it
	Correct   int      `json:"correct"`   // true positives
	Precision *float64 `json:"precision"` // Correct/Predicted; nil when Predicted = 0
	Recall    *float64 `json:"recall"`    // Correct/Support; nil when Support = 0
	F1        *float64 `json:"f1"`        // harmonic mean, undefined precision as 0; nil when Support = 0
}

// Averages are the macro (unweighted over classes present in the split) and support-weighted
// averages of the per-class scores.
type Averages struct {
	MacroPrecision float64 `json:"macro_precision"`
	MacroRecall    float64 `json:"macro_recall"`
	MacroF1        float64 `json:"macro_f1"`
	WeightedF1     float64 `json:"weighted_f1"`
}

// PerClass computes every class's scores from the matrix.
func (c *Confusion) PerClass() []ClassMetrics {
	n := len(c.Classes)
	out := make([]ClassMetrics, n)
	for k := 0; k < n; k++ {
		m := ClassMetrics{Class: c.Classes[k], Correct: c.M[k][k]}
		for j := 0; j < n; j++ {
			m.Support += c.M[k][j]
			m.Predicted += c.M[j][k]
		}
		p := 0.0
		if m.Predicted > 0 {
			p = float64(m.Correct) / float64(m.Predicted)
			m.Precision = ptr(p)
		}
		if m.Support > 0 {
			r := float64(m.Correct) / float64(m.Support)
			m.Recall = ptr(r)
			f := 0.0
			if p+r > 0 {
				f = 2 * p * r / (p + r)
			}
			m.F1 = ptr(f)
		}
		out[k] = m
	}
	return out
}

// Average computes the macro and weighted averages of per-class scores over the classes with
// support > 0; all zero when none has.
func Average(pc []ClassMetrics) Averages {
	var a Averages
	present, total := 0, 0
	for _, m := range pc {
		if m.Support == 0 {
			continue
		}
		present++
		total += m.Support
		a.MacroPrecision += val(m.Precision)
		a.MacroRecall += val(m.Recall)
		a.MacroF1 += val(m.F1)
		a.WeightedF1 += val(m.F1) * float64(m.Support)
	}
	if present == 0 {
		return Averages{}
	}
	a.MacroPrecision /= float64(present)
	a.MacroRecall /= float64(present)
	a.MacroF1 /= float64(present)
	a.WeightedF1 /= float64(total)
	return a
}

// Argmax returns the index of the largest probability (the first one on ties).
func Argmax(probs []float32) int {
	best := 0
	for i, p := range probs {
		if p > probs[best] {
			best = i
		}
	}
	return best
}

// Rank returns the 0-based rank of class truth when probs are sorted best first, ties broken
// by the lower class index (so Rank(probs, Argmax(probs)) == 0). The sample is a top-k hit
// when Rank < k.
func Rank(probs []float32, truth int) int {
	r := 0
	pt := probs[truth]
	for j, p := range probs {
		if p > pt || (p == pt && j < truth) {
			r++
		}
	}
	return r
}

func ptr(f float64) *float64 { return &f }

func val(p *float64) float64 {
	if p == nil {
		return 0
	}
	return *p
}
