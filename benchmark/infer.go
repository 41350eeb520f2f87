package benchmark

import (
	"context"
	"errors"
	"fmt"
	"github.com/artnet/artnet/internal/cpustat"
	"io"
	"math"
	"math/rand/v2"
	"runtime/pprof"
	"strings"
	"time"

	"github.com/gomlx/gomlx/pkg/core/graph"
	"github.com/gomlx/gomlx/pkg/core/tensors"
	gomlxcontext "github.com/gomlx/gomlx/pkg/ml/context"

	"github.com/artnet/artnet/engine"
	"github.com/artnet/artnet/models"
	"github.com/artnet/artnet/models/spec"
	"github.com/artnet/artnet/onnxrt"
)

// InferOptions configure Infer. The model is, in this order: the exported ONNX file (run in ONNX
// Runtime), the GoMLX checkpoint, or a freshly initialized GoMLX model of Config.
type InferOptions struct {
	Config     spec.Config
	Checkpoint string
	ONNX       string
	Batch      int
	// Steps runs are measured after the first run (compilation, session warm-up) and Warmup more.
	Steps, Warmup int
	// Backend is the GoMLX backend config ("" → $GOMLX_BACKEND or "go").
	Backend string
	// ORT configures ONNX Runtime (providers, threads, library) for ONNX.
	ORT onnxrt.Options
	// Reference, for ONNX, is a second provider list (e.g. ["cpu"]) that runs the same input once;
	// the report then holds the largest difference of any output.
	Reference []string
	// ReferenceCheckpoint, for ONNX, is a GoMLX checkpoint (e.g. the one exported) whose forward
	// pass on Backend runs the same input once; the report then holds the largest difference.
	ReferenceCheckpoint string
	Seed                int64
	// Profile, when set, receives a CPU profile of the measured runs only.
	Profile io.Writer
}

// Infer measures forward passes of DeepArtNet on a fixed random batch.
func Infer(ctx context.Context, o InferOptions) (*Report, error) {
	if o.Batch < 1 || o.Steps < 1 || o.Warmup < 0 {
		return nil, fmt.Errorf("benchmark: batch and steps must be ≥ 1 and warm-up ≥ 0, got %d, %d, %d", o.Batch, o.Steps, o.Warmup)
	}
	var (
		run   func(images []float32) (outputs [][]float32, err error)
		close func()
		r     = &Report{Mode: "infer", Batch: o.Batch, Warmup: o.Warmup, Machine: ThisMachine()}
		cfg   = o.Config
		err   error
	)
	switch {
	case o.ONNX != "":
		var m *onnxrt.Model
		if m, err = onnxrt.Open(o.ONNX, o.ORT); err != nil {
			return nil, err
		}
		defer m.Close()
		cfg = m.Config()
		r.Runtime, r.Backend = "onnx", strings.Join(m.Providers(), ",")
		run = ortRunner(ctx, m, o.Batch)
	default:
		var g *gomlxRunner
		if g, err = newGoMLXRunner(o, cfg); err != nil {
			return nil, err
		}
		close = g.close
		cfg = g.cfg
		r.Runtime, r.Backend = "gomlx", backendName(o.Backend)
		run = g.run
	}
	if close != nil {
		defer close()
	}
	r.Variant, r.ImageSize, r.Config = cfg.Variant, cfg.ImageSize, cfg
	fwd, err := CountMACs(cfg, 1)
	if err != nil {
		return nil, err
	}
	r.ForwardMACsPerImage, r.MACsPerStep = fwd.Total(), int64(o.Batch)*fwd.Total()

	images := RandomImages(o.Batch, cfg.ImageSize, o.Seed)
	began := time.Now()
	first, err := run(images)
	if err != nil {
		return nil, err
	}
	r.FirstSeconds = time.Since(began).Seconds()
	for i := 0; i < o.Warmup; i++ {
		if _, err := run(images); err != nil {
			return nil, err
		}
	}
	if o.Profile != nil {
		if err := pprof.StartCPUProfile(o.Profile); err != nil {
			return nil, fmt.Errorf("benchmark: CPU profile: %w", err)
		}
	}
	for i := 0; i < o.Steps; i++ {
		if err := ctx.Err(); err != nil {
			if o.Profile != nil {
				pprof.StopCPUProfile()
			}
			return nil, err
		}
		began, cpu := time.Now(), cpustat.Process().Seconds()
		if _, err := run(images); err != nil {
			if o.Profile != nil {
				pprof.StopCPUProfile()
			}
			return nil, err
		}
		r.StepSeconds = append(r.StepSeconds, time.Since(began).Seconds())
		r.StepCPUSeconds = append(r.StepCPUSeconds, cpustat.Process().Seconds()-cpu)
	}
	if o.Profile != nil {
		pprof.StopCPUProfile()
	}
	if o.ONNX != "" && len(o.Reference) > 0 {
		ro := o.ORT
		ro.Providers = o.Reference
		ref, err := onnxrt.Open(o.ONNX, ro)
		if err != nil {
			return nil, fmt.Errorf("reference providers %v: %w", o.Reference, err)
		}
		defer ref.Close()
		want, err := ortRunner(ctx, ref, o.Batch)(images)
		if err != nil {
			return nil, fmt.Errorf("reference providers %v: %w", o.Reference, err)
		}
		r.Reference = strings.Join(ref.Providers(), ",")
		if r.MaxAbsDiff, err = maxAbsDiff(first, want); err != nil {
			return nil, err
		}
	}
	if o.ONNX != "" && o.ReferenceCheckpoint != "" {
		g, err := newGoMLXRunner(InferOptions{Checkpoint: o.ReferenceCheckpoint, Backend: o.Backend}, spec.Config{})
		if err != nil {
			return nil, fmt.Errorf("reference checkpoint: %w", err)
		}
		defer g.close()
		if g.cfg.ImageSize != cfg.ImageSize {
			return nil, fmt.Errorf("reference checkpoint %s: input %d px, the ONNX model's %d", o.ReferenceCheckpoint, g.cfg.ImageSize, cfg.ImageSize)
		}
		want, err := g.run(images)
		if err != nil {
			return nil, fmt.Errorf("reference checkpoint %s: %w", o.ReferenceCheckpoint, err)
		}
		d, err := maxAbsDiff(first, want)
		if err != nil {
			return nil, err
		}
		what := "GoMLX " + backendName(o.Backend) + " checkpoint"
		if r.Reference != "" {
			r.Reference += " and " + what
		} else {
			r.Reference = what
		}
		r.MaxAbsDiff = max(r.MaxAbsDiff, d)
	}
	r.finish()
	return r, nil
}

// RandomImages is a seeded batch of normalized Gaussian-noise images [batch, 3, size, size].
func RandomImages(batch, size int, seed int64) []float32 {
	rng := rand.New(rand.NewPCG(uint64(seed), 0x696d616765))
	v := make([]float32, batch*3*size*size)
	for i := range v {
		v[i] = float32(rng.NormFloat64())
	}
	return v
}

func ortRunner(ctx context.Context, m *onnxrt.Model, batch int) func([]float32) ([][]float32, error) {
	return func(images []float32) ([][]float32, error) {
		res, err := m.Run(ctx, images, batch)
		if err != nil {
			return nil, err
		}
		out := make([][]float32, 0, len(spec.Tasks)+1)
		for _, t := range spec.Tasks {
			out = append(out, res.Probs[t])
		}
		return append(out, res.Attention), nil
	}
}

// maxAbsDiff is the largest |a-b| over matching outputs (NaN anywhere counts as +Inf).
func maxAbsDiff(a, b [][]float32) (float64, error) {
	if len(a) != len(b) {
		return 0, fmt.Errorf("benchmark: %d outputs vs %d", len(a), len(b))
	}
	d := 0.0
	for i := range a {
		if len(a[i]) != len(b[i]) {
			return 0, fmt.Errorf("benchmark: output %d has %d values vs %d", i, len(a[i]), len(b[i]))
		}
		for j := range a[i] {
			x := math.Abs(float64(a[i][j]) - float64(b[i][j]))
			if math.IsNaN(x) {
				x = math.Inf(1)
			}
			d = max(d, x)
		}
	}
	return d, nil
}

// gomlxRunner runs DeepArtNet's forward pass in GoMLX.
type gomlxRunner struct {
	cfg  spec.Config
	exec *gomlxcontext.Exec
	fin  func()
}

func newGoMLXRunner(o InferOptions, cfg spec.Config) (*gomlxRunner, error) {
	var mctx *gomlxcontext.Context
	if o.Checkpoint != "" {
		var err error
		if mctx, cfg, err = models.LoadCheckpoint(o.Checkpoint); err != nil {
			return nil, err
		}
		mctx = mctx.Reuse()
	} else {
		if err := cfg.Validate(); err != nil {
			return nil, fmt.Errorf("benchmark: model config: %w", err)
		}
		mctx = gomlxcontext.New()
		mctx.SetParam(gomlxcontext.ParamInitialSeed, o.Seed)
		if err := mctx.SetRNGStateFromSeed(o.Seed); err != nil {
			return nil, fmt.Errorf("benchmark: random state: %w", err)
		}
	}
	backend, err := engine.NewBackend(o.Backend)
	if err != nil {
		return nil, err
	}
	exec, err := gomlxcontext.NewExec(backend, mctx, func(ctx *gomlxcontext.Context, images *graph.Node) []*graph.Node {
		out := models.Build(ctx, cfg, images)
		nodes := make([]*graph.Node, 0, len(spec.Tasks)+1)
		for _, t := range spec.Tasks {
			nodes = append(nodes, out.Probs[t])
		}
		return append(nodes, out.Attention)
	})
	if err != nil {
		backend.Finalize()
		return nil, fmt.Errorf("benchmark: %w", err)
	}
	return &gomlxRunner{cfg: cfg, exec: exec, fin: func() { exec.Finalize(); backend.Finalize() }}, nil
}

func (g *gomlxRunner) run(images []float32) (out [][]float32, err error) {
	s := g.cfg.ImageSize
	defer func() {
		if r := recover(); r != nil {
			err = fmt.Errorf("benchmark: gomlx: %v", r)
		}
	}()
	in := tensors.FromFlatDataAndDimensions(images, len(images)/(3*s*s), 3, s, s)
	defer in.FinalizeAll()
	res, err := g.exec.Exec(in)
	if err != nil {
		return nil, fmt.Errorf("benchmark: gomlx: %w", err)
	}
	for _, t := range res {
		out = append(out, tensors.MustCopyFlatData[float32](t))
		t.FinalizeAll()
	}
	if len(out) != len(spec.Tasks)+1 {
		return nil, errors.New("benchmark: gomlx: unexpected number of outputs")
	}
	return out, nil
}

func (g *gomlxRunner) close() { g.fin() }
