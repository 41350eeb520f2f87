// Package calibrate makes an artnet model's confidences mean what they say: it measures the
// expected calibration error (ECE) of a task's top-1 confidences, fits one temperature per task
// (Guo et al. 2017, "On Calibration of Modern Neural Networks": softmax(logits/T), T chosen to
// minimize the negative log-likelihood on held-out labelled images), and writes the temperatures
// into an ONNX model — in its graph, so every runtime (ONNX Runtime on any provider, the server,
// the Go API, other ONNX consumers) returns the calibrated probabilities, and in its metadata
// (spec.Config.Temperature, spec.MetaTemperature), so tools can say what was applied.
//
// Temperature scaling never changes a prediction's ranking (top-1/top-5 are the same); it only
// changes how confident the probabilities are. The model's outputs are softmax probabilities p,
// so the logits are log p up to a per-row constant and softmax(log p / T) is the scaled output.
package calibrate

import (
	"errors"
	"fmt"
	"math"
)

// DefaultBins is the number of equal-width confidence bins of ECE (Guo et al. use 15).
const DefaultBins = 15

// Scale returns softmax(log(p)/t) of one row of probabilities (a new slice). t = 1 returns a
// copy of p, renormalized.
func Scale(p []float32, t float64) []float32 {
	z, logZ := scaled(p, t)
	out := make([]float32, len(p))
	for i, v := range z {
		out[i] = float32(math.Exp(v - logZ))
	}
	return out
}

// scaled returns log(p)/t per class and the log of the sum of their exponentials (computed
// from the row's maximum), so that softmax(log(p)/t)_i = exp(z_i − logZ).
func scaled(p []float32, t float64) (z []float64, logZ float64) {
	z = make([]float64, len(p))
	mx := math.Inf(-1)
	for i, v := range p {
		z[i] = logp(v) / t
		mx = math.Max(mx, z[i])
	}
	var sum float64
	for _, v := range z {
		sum += math.Exp(v - mx)
	}
	return z, mx + math.Log(sum)
}

// logp is log(v), with v ≤ 0 (an underflowed probability) as the log of the smallest float32.
func logp(v float32) float64 {
	if v <= 0 {
		return math.Log(math.SmallestNonzeroFloat32)
	}
	return math.Log(float64(v))
}

// Set is one task's labelled predictions: Probs holds len(Labels) rows of Classes
// probabilities, row-major.
type Set struct {
	Classes int
	Probs   []float32
	Labels  []int
}

// Add appends one labelled row.
func (s *Set) Add(row []float32, label int) error {
	if s.Classes == 0 {
		s.Classes = len(row)
	}
	if len(row) != s.Classes {
		return fmt.Errorf("calibrate: row of %d probabilities, want %d", len(row), s.Classes)
	}
	if label < 0 || label >= s.Classes {
		return fmt.Errorf("calibrate: label %d out of range 0..%d", label, s.Classes-1)
	}
	s.Probs = append(s.Probs, row...)
	s.Labels = append(s.Labels, label)
	return nil
}

// Len is the number of rows.
func (s *Set) Len() int { return len(s.Labels) }

func (s *Set) row(i int) []float32 { return s.Probs[i*s.Classes : (i+1)*s.Classes] }

// NLL is the mean negative log-likelihood of the labels under softmax(log p / t).
func (s *Set) NLL(t float64) float64 {
	if s.Len() == 0 {
		return 0
	}
	var sum float64
	for i, y := range s.Labels {
		z, logZ := scaled(s.row(i), t)
		sum += logZ - z[y]
	}
	return sum / float64(s.Len())
}

// ECE is the expected calibration error of the top-1 confidences under temperature t, over
// bins equal-width confidence bins: Σ_b |B_b|/n · |accuracy(B_b) − mean confidence(B_b)|.
func (s *Set) ECE(t float64, bins int) float64 {
	if s.Len() == 0 || bins < 1 {
		return 0
	}
	cnt := make([]int, bins)
	conf := make([]float64, bins)
	acc := make([]float64, bins)
	for i, y := range s.Labels {
		r := s.row(i)
		if t != 1 {
			r = Scale(r, t)
		}
		best := 0
		for k, v := range r {
			if v > r[best] {
				best = k
			}
		}
		c := float64(r[best])
		b := min(int(c*float64(bins)), bins-1)
		cnt[b]++
		conf[b] += c
		if best == y {
			acc[b]++
		}
	}
	var e float64
	for b := range bins {
		if cnt[b] > 0 {
			e += math.Abs(acc[b]-conf[b]) / float64(s.Len())
		}
	}
	return e
}

// MinTemperature and MaxTemperature bound the fitted temperature.
const (
	MinTemperature = 0.05
	MaxTemperature = 20
)

// Fit returns the temperature in [MinTemperature, MaxTemperature] that minimizes the set's NLL
// (golden-section search on log t; the NLL is convex in 1/t).
func (s *Set) Fit() (float64, error) {
	if s.Len() == 0 {
		return 0, errors.New("calibrate: no labelled rows to fit a temperature on")
	}
	lo, hi := math.Log(MinTemperature), math.Log(MaxTemperature)
	g := (math.Sqrt(5) - 1) / 2
	a, b := hi-g*(hi-lo), lo+g*(hi-lo)
	fa, fb := s.NLL(math.Exp(a)), s.NLL(math.Exp(b))
	for hi-lo > 1e-4 {
		if fa < fb {
			hi, b, fb = b, a, fa
			a = hi - g*(hi-lo)
			fa = s.NLL(math.Exp(a))
		} else {
			lo, a, fa = a, b, fb
			b = lo + g*(hi-lo)
			fb = s.NLL(math.Exp(b))
		}
	}
	return math.Exp((lo + hi) / 2), nil
}
