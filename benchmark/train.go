package benchmark

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"math/rand/v2"
	"os"
	"runtime/pprof"

	"github.com/artnet/artnet/engine"
	"github.com/artnet/artnet/internal/cpustat"
	"github.com/artnet/artnet/models/spec"
	"github.com/artnet/artnet/train"
)

// TrainOptions configure Train.
type TrainOptions struct {
	Config spec.Config
	Batch  int
	// Steps are measured after the first step (graph compilation) and Warmup further steps.
	Steps, Warmup int
	// Backend is the GoMLX backend config ("" → $GOMLX_BACKEND or "go").
	Backend string
	// LR and WeightDecay are AdamW's (0 → 1e-3 and 1e-4); Seed fixes weights and data.
	LR, WeightDecay float64
	Seed            int64
	// OutDir keeps the trained checkpoint there (e.g. to export it); "" trains in a temporary
	// folder that is removed.
	OutDir string
	// Profile, when set, receives a CPU profile (runtime/pprof) of the measured steps only.
	Profile io.Writer
}

// Train measures DeepArtNet training steps: train.Run (the trainer `artnet train` uses: model,
// focal loss with uncertainty weighting, AdamW) on fixed random images, so that data loading
// costs next to nothing. The first step (compilation) and o.Warmup steps are excluded.
func Train(ctx context.Context, o TrainOptions, log *slog.Logger) (*Report, error) {
	if o.Batch < 1 || o.Steps < 1 || o.Warmup < 0 {
		return nil, fmt.Errorf("benchmark: batch and steps must be ≥ 1 and warm-up ≥ 0, got %d, %d, %d", o.Batch, o.Steps, o.Warmup)
	}
	if o.LR == 0 {
		o.LR = 1e-3
	}
	if o.WeightDecay == 0 {
		o.WeightDecay = 1e-4
	}
	fwd, err := CountMACs(o.Config, 1)
	if err != nil {
		return nil, err
	}
	out := o.OutDir
	if out == "" {
		if out, err = os.MkdirTemp("", "artnet-bench-"); err != nil {
			return nil, fmt.Errorf("benchmark: %w", err)
		}
		defer os.RemoveAll(out)
	}
	r := &Report{Mode: "train", Runtime: "gomlx", Backend: backendName(o.Backend), Variant: o.Config.Variant,
		ImageSize: o.Config.ImageSize, Batch: o.Batch, Warmup: o.Warmup,
		ForwardMACsPerImage: fwd.Total(), MACsPerStep: int64(o.Batch) * TrainingMACs(fwd).Total(), Machine: ThisMachine(), Config: o.Config}
	first := 1 + o.Warmup // steps excluded
	total := first + o.Steps
	profiling := false
	var profErr error
	var lastCPU float64 // process CPU time at the end of the previous step
	defer func() {
		if profiling {
			pprof.StopCPUProfile()
		}
	}()
	_, err = train.Run(ctx, train.Options{
		Config: o.Config, OutDir: out, Steps: total, Batch: o.Batch, LR: o.LR, WeightDecay: o.WeightDecay,
		ConstantLR: true, Seed: o.Seed, Backend: o.Backend, LogEvery: 1,
		OnStep: func(m train.StepMetrics) {
			cpu := cpustat.Process().Seconds()
			switch {
			case m.Step == 1:
				r.FirstSeconds = m.Seconds
			case m.Step > first:
				r.StepSeconds = append(r.StepSeconds, m.Seconds)
				r.StepCPUSeconds = append(r.StepCPUSeconds, cpu-lastCPU)
			}
			lastCPU = cpu
			r.Loss = m.Loss
			if m.Step == first && o.Profile != nil {
				profErr = pprof.StartCPUProfile(o.Profile)
				profiling = profErr == nil
			}
			if m.Step == total && profiling {
				pprof.StopCPUProfile()
				profiling = false
			}
		},
	}, NewNoise(o.Config, 4*o.Batch, o.Seed), nil, log)
	if err != nil {
		return nil, fmt.Errorf("benchmark: %w", err)
	}
	if profErr != nil {
		return nil, fmt.Errorf("benchmark: CPU profile: %w", profErr)
	}
	if len(r.StepSeconds) != o.Steps {
		return nil, errors.New("benchmark: training ended before the measured steps")
	}
	r.finish()
	return r, nil
}

func backendName(config string) string { return engine.BackendConfig(config) }

// Noise is a train.Dataset of n fixed images of normalized Gaussian noise with random labels:
// a benchmark's data, which costs one copy per example.
type Noise struct {
	cfg    spec.Config
	images [][]float32
	labels []train.Labels
}

// NewNoise makes n noise examples for cfg, seeded.
func NewNoise(cfg spec.Config, n int, seed int64) *Noise {
	rng := rand.New(rand.NewPCG(uint64(seed), 0x6e6f697365))
	d := &Noise{cfg: cfg}
	px := 3 * cfg.ImageSize * cfg.ImageSize
	for i := 0; i < n; i++ {
		img := make([]float32, px)
		for j := range img {
			img[j] = float32(rng.NormFloat64())
		}
		var l train.Labels
		for k, task := range spec.Tasks {
			l[k] = int32(rng.IntN(max(cfg.NumClasses(task), 1)))
		}
		d.images = append(d.images, img)
		d.labels = append(d.labels, l)
	}
	return d
}

// Len is the number of examples.
func (d *Noise) Len() int { return len(d.images) }

// Example copies example i into img.
func (d *Noise) Example(i int, img []float32) (train.Labels, error) {
	if i < 0 || i >= len(d.images) {
		return train.Labels{}, fmt.Errorf("noise example %d: out of range [0,%d)", i, len(d.images))
	}
	if len(img) != len(d.images[i]) {
		return train.Labels{}, fmt.Errorf("noise example %d: buffer of %d floats, want %d", i, len(img), len(d.images[i]))
	}
	copy(img, d.images[i])
	return d.labels[i], nil
}
