package train

import (
	"context"
	"testing"

	"github.com/artnet/artnet/models/spec"
)

// BenchmarkTinyStep measures one training step of spec.Tiny() (64×64, 4×4 tokens) at batch 16
// on the default backend; the first step (graph compilation) is excluded and reported apart.
//
//	go test -run XXX -bench TinyStep -benchtime 5x ./train/
func BenchmarkTinyStep(b *testing.B) {
	cfg := spec.Tiny()
	o := Options{Config: cfg, OutDir: b.TempDir(), Steps: 1 + b.N, Batch: 16, LR: 1e-3, Seed: 1}
	var first, rest float64
	o.OnStep = func(m StepMetrics) {
		if m.Step == 1 {
			first = m.Seconds
		} else {
			rest += m.Seconds
		}
	}
	b.ResetTimer()
	if _, err := Run(context.Background(), o, NewSynthetic(cfg, 256, 1), nil, nil); err != nil {
		b.Fatal(err)
	}
	b.ReportMetric(rest/float64(b.N), "s/step")
	b.ReportMetric(first, "s/first-step")
	b.ReportMetric(16*float64(b.N)/rest, "images/s")
}
