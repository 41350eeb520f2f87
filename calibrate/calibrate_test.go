package calibrate_test

import (
	"context"
	"math"
	"math/rand/v2"
	"testing"

	"github.com/artnet/artnet/calibrate"
	"github.com/artnet/artnet/models/spec"
	"github.com/artnet/artnet/onnxrt"
	"github.com/artnet/artnet/onnxrt/runtimetest"
)

// overconfident draws n rows of k classes whose labels follow softmax(z) while the rows report
// softmax(z·sharp): a model that is too sure of itself by the factor sharp (the temperature that
// undoes it).
func overconfident(n, k int, sharp float64, seed uint64) *calibrate.Set {
	rng := rand.New(rand.NewPCG(seed, 7))
	s := &calibrate.Set{}
	for range n {
		z := make([]float64, k)
		for i := range z {
			z[i] = 2 * rng.NormFloat64()
		}
		p := softmax(z, 1)
		u, y := rng.Float64(), 0
		for acc := p[0]; acc < u && y < k-1; {
			y++
			acc += p[y]
		}
		q := softmax(z, sharp)
		row := make([]float32, k)
		for i := range row {
			row[i] = float32(q[i])
		}
		if err := s.Add(row, y); err != nil {
			panic(err)
		}
	}
	return s
}

func softmax(z []float64, scale float64) []float64 {
	mx := math.Inf(-1)
	for _, v := range z {
		mx = math.Max(mx, v*scale)
	}
	out := make([]float64, len(z))
	var sum float64
	for i, v := range z {
		out[i] = math.Exp(v*scale - mx)
		sum += out[i]
	}
	for i := range out {
		out[i] /= sum
	}
	return out
}

// TestFitRecoversTemperature: rows made 2.5× too sharp are fitted with T ≈ 2.5, which lowers
// both NLL and ECE; an already calibrated set is fitted with T ≈ 1.
func TestFitRecoversTemperature(t *testing.T) {
	s := overconfident(6000, 10, 2.5, 1)
	temp, err := s.Fit()
	if err != nil {
		t.Fatal(err)
	}
	if math.Abs(temp-2.5) > 0.2 {
		t.Fatalf("fitted temperature %.3f, want ≈2.5", temp)
	}
	if a, b := s.NLL(temp), s.NLL(1); a >= b {
		t.Fatalf("NLL after %.4f not below before %.4f", a, b)
	}
	before, after := s.ECE(1, calibrate.DefaultBins), s.ECE(temp, calibrate.DefaultBins)
	if after >= before/2 {
		t.Fatalf("ECE %.4f → %.4f: want at least halved", before, after)
	}
	if temp1, _ := overconfident(6000, 10, 1, 2).Fit(); math.Abs(temp1-1) > 0.1 {
		t.Fatalf("calibrated set fitted with T=%.3f, want ≈1", temp1)
	}
	if _, err := (&calibrate.Set{}).Fit(); err == nil {
		t.Fatal("fit on an empty set: no error")
	}
}

// TestECE checks the definition on hand-made rows: two bins, one right and one wrong.
func TestECE(t *testing.T) {
	s := &calibrate.Set{}
	_ = s.Add([]float32{0.9, 0.1}, 0) // bin of 0.9, correct: |1 − 0.9| = 0.1
	_ = s.Add([]float32{0.3, 0.7}, 0) // bin of 0.7, wrong:   |0 − 0.7| = 0.7
	if got, want := s.ECE(1, 10), (0.1+0.7)/2; math.Abs(got-want) > 1e-6 {
		t.Fatalf("ECE %.6f, want %.6f", got, want)
	}
	if err := s.Add([]float32{0.5, 0.5}, 2); err == nil {
		t.Fatal("label out of range accepted")
	}
	if err := s.Add([]float32{1}, 0); err == nil {
		t.Fatal("row of the wrong width accepted")
	}
}

// TestScaleKeepsRanking: scaling changes confidences, never the order.
func TestScaleKeepsRanking(t *testing.T) {
	p := []float32{0.6, 0.3, 0.1}
	for _, temp := range []float64{0.5, 1, 2, 7} {
		q := calibrate.Scale(p, temp)
		if !(q[0] > q[1] && q[1] > q[2]) {
			t.Fatalf("T=%g: %v lost the ranking of %v", temp, q, p)
		}
		var sum float32
		for _, v := range q {
			sum += v
		}
		if math.Abs(float64(sum)-1) > 1e-6 {
			t.Fatalf("T=%g: sums to %g", temp, sum)
		}
	}
	if q := calibrate.Scale(p, 2); !(q[0] < p[0]) {
		t.Fatalf("T=2 did not soften %v: %v", p, q)
	}
}

// TestApplyInONNXRuntime: a model calibrated with temperatures returns, in ONNX Runtime,
// exactly Scale(original output, T) per task (to float tolerance), records the temperatures in
// its metadata, and a second calibration composes them (T1·T2) instead of stacking chains.
func TestApplyInONNXRuntime(t *testing.T) {
	cfg := spec.Tiny()
	raw := runtimetest.TinyModel(cfg)
	temps := map[string]float64{"style": 2, "artist": 0.5}
	cal, err := calibrate.Apply("tiny.onnx", raw, temps)
	if err != nil {
		t.Fatal(err)
	}
	twice, err := calibrate.Apply("tiny.onnx", cal, map[string]float64{"style": 1.5})
	if err != nil {
		t.Fatal(err)
	}
	open := func(name string, b []byte) *onnxrt.Model {
		m, err := onnxrt.OpenBytes(name, b, onnxrt.Options{})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { _ = m.Close() })
		return m
	}
	m0, m1, m2 := open("raw.onnx", raw), open("cal.onnx", cal), open("twice.onnx", twice)
	if got := m1.Config().Temperature; got["style"] != 2 || got["artist"] != 0.5 || len(got) != 2 {
		t.Fatalf("calibrated config temperature %v, want style 2, artist 0.5", got)
	}
	if got := m2.Config().Temperature["style"]; math.Abs(got-3) > 1e-12 {
		t.Fatalf("twice-calibrated style temperature %g, want 3", got)
	}
	const batch = 3
	images := runtimetest.Images(batch, cfg.ImageSize, 9)
	r0, err := m0.Run(context.Background(), images, batch)
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct {
		m     *onnxrt.Model
		temps map[string]float64
	}{{m1, temps}, {m2, map[string]float64{"style": 3, "artist": 0.5}}} {
		r, err := c.m.Run(context.Background(), images, batch)
		if err != nil {
			t.Fatal(err)
		}
		for _, task := range spec.Tasks {
			temp, ok := c.temps[task]
			if !ok {
				temp = 1
			}
			for i := range batch {
				want := calibrate.Scale(r0.Row(task, i), temp)
				got := r.Row(task, i)
				for k := range want {
					if d := math.Abs(float64(got[k] - want[k])); d > 1e-5 {
						t.Fatalf("%s row %d class %d: %g, want %g (T=%g)", task, i, k, got[k], want[k], temp)
					}
				}
			}
		}
	}
	if _, err := calibrate.Apply("x.onnx", raw, map[string]float64{"style": -1}); err == nil {
		t.Fatal("negative temperature accepted")
	}
	if _, err := calibrate.Apply("x.onnx", []byte("not onnx"), temps); err == nil {
		t.Fatal("garbage accepted")
	}
}
