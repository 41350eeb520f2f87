package onnxrt

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"slices"
	"strconv"
	"strings"
	"sync"

	ort "github.com/yalue/onnxruntime_go"

	"github.com/artnet/artnet/internal/errtext"
	"github.com/artnet/artnet/models/spec"
	"github.com/artnet/artnet/predict"
)

// Options configure how a model is loaded.
type Options struct {
	// LibraryPath is an explicit ONNX Runtime library (the --ort-lib flag); "" searches with
	// FindLibrary. Used only by the first Open/Init of the process.
	LibraryPath string
	// Providers are the execution providers to try, in order: "cpu" (the default when empty),
	// "cuda", "tensorrt". A provider that fails is an error unless a later entry is listed:
	// ["cuda","cpu"] falls back to the CPU, ["cuda"] fails. The session gets the failing-free
	// suffix of the list, so ["tensorrt","cuda","cpu"] gives TensorRT with CUDA behind it.
	// Entries after "cpu" would never be used and are an error.
	Providers []string
	// IntraOpThreads and InterOpThreads set ORT's thread pools; 0 keeps ORT's default.
	IntraOpThreads int
	InterOpThreads int
	// NoSpin turns off the spin-waiting of ORT's thread pools (session.intra_op.allow_spinning
	// and session.inter_op.allow_spinning = 0): idle ORT threads sleep instead of burning their
	// core, so other work of the process (a server's decoding) gets those cycles.
	NoSpin bool
	// DeviceID selects the GPU for "cuda" and "tensorrt" (default 0); with a plugin library, the
	// DeviceID-th GPU device ONNX Runtime lists for that provider.
	DeviceID int
	// TensorRTCacheDir, when set, enables TensorRT's engine cache in that folder, so that the
	// engine (minutes to build) is built once per model and GPU.
	TensorRTCacheDir string
	// ProviderLibraries are plugin execution provider libraries to register, provider ("cuda",
	// "tensorrt") → path (the --ep-lib flag): that provider then attaches the library's devices
	// (see RegisterProviderLibrary and plugin.go). Registrations last until Shutdown.
	ProviderLibraries map[string]string
}

// outputNames are the ONNX outputs Run requests, in spec.OutputNames order.
var outputNames = spec.OutputNames()

// Model is an artnet model loaded into an ONNX Runtime session. Run is safe for concurrent
// use (ORT sessions are); Close waits for running calls.
type Model struct {
	name      string
	it        *spec.Interface
	providers []string

	mu      sync.RWMutex
	session *ort.DynamicAdvancedSession // nil once closed
}

// Open reads an ONNX file, checks that it is an artnet model (see Validate) and creates an
// ONNX Runtime session for it. Errors name the file.
func Open(modelPath string, o Options) (*Model, error) {
	b, err := os.ReadFile(modelPath)
	if err != nil {
		return nil, fmt.Errorf("model %s: %w", modelPath, err)
	}
	return OpenBytes(modelPath, b, o)
}

// OpenBytes is Open for an ONNX model held in memory; name is used in errors.
func OpenBytes(name string, onnx []byte, o Options) (*Model, error) {
	m, err := openBytes(name, onnx, o)
	if err != nil {
		return nil, fmt.Errorf("model %s: %w", name, errtext.Flat(err))
	}
	return m, nil
}

func openBytes(name string, onnx []byte, o Options) (*Model, error) {
	provs, err := normalizeProviders(o.Providers)
	if err != nil {
		return nil, err
	}
	if o.IntraOpThreads < 0 || o.InterOpThreads < 0 {
		return nil, fmt.Errorf("options: thread counts must be >= 0, got intra %d inter %d", o.IntraOpThreads, o.InterOpThreads)
	}
	if o.DeviceID < 0 {
		return nil, fmt.Errorf("options: device id must be >= 0, got %d", o.DeviceID)
	}
	mi, err := spec.Inspect(onnx)
	if err != nil {
		return nil, err
	}
	it, err := mi.Validate()
	if err != nil {
		return nil, err
	}

	// Count the model as open while its session is created (without holding the lock, since
	// that can take long), so that Shutdown cannot pull the environment away meanwhile.
	env.Lock()
	if err := initLocked(o.LibraryPath); err != nil {
		env.Unlock()
		return nil, err
	}
	if err := providerLibrariesLocked(o.ProviderLibraries); err != nil {
		env.Unlock()
		return nil, err
	}
	corePath := env.path
	env.models++
	env.Unlock()
	var errs []error
	for i, p := range provs {
		s, err := newSession(onnx, provs[i:], o, corePath)
		if err == nil {
			return &Model{name: name, it: it, providers: slices.Clone(provs[i:]), session: s}, nil
		}
		if p == CPU {
			errs = append(errs, fmt.Errorf("ONNX Runtime: %s", errtext.OneLine(err)))
		} else {
			errs = append(errs, fmt.Errorf("provider %s: %s", p, errtext.OneLine(err)))
		}
		if i+1 < len(provs) {
			slog.Warn("execution provider failed, falling back", "model", name, "provider", p, "next", provs[i+1], "err", errtext.OneLine(err))
		}
	}
	env.Lock()
	env.models--
	env.Unlock()
	return nil, errors.Join(errs...)
}

func normalizeProviders(in []string) ([]string, error) {
	if len(in) == 0 {
		return []string{CPU}, nil
	}
	out := make([]string, 0, len(in))
	for i, p := range in {
		p = strings.ToLower(strings.TrimSpace(p))
		if !slices.Contains(KnownProviders, p) {
			return nil, fmt.Errorf("options: unknown execution provider %q (want %s)", in[i], strings.Join(KnownProviders, ", "))
		}
		if slices.Contains(out, p) {
			return nil, fmt.Errorf("options: execution provider %q listed twice", p)
		}
		if slices.Contains(out, CPU) {
			return nil, fmt.Errorf("options: execution provider %q after \"cpu\" would never be used", p)
		}
		out = append(out, p)
	}
	return out, nil
}

// newSession creates a session with the given providers appended in order (the CPU provider is
// always ORT's last resort for nodes the others do not take).
func newSession(onnx []byte, provs []string, o Options, corePath string) (s *ort.DynamicAdvancedSession, err error) {
	so, err := ort.NewSessionOptions()
	if err != nil {
		return nil, fmt.Errorf("session options: %w", err)
	}
	defer func() {
		if derr := so.Destroy(); derr != nil {
			err = errors.Join(err, fmt.Errorf("session options: %w", derr))
		}
	}()
	if o.IntraOpThreads > 0 {
		if err := so.SetIntraOpNumThreads(o.IntraOpThreads); err != nil {
			return nil, fmt.Errorf("intra-op threads: %w", err)
		}
	}
	if o.InterOpThreads > 0 {
		if err := so.SetInterOpNumThreads(o.InterOpThreads); err != nil {
			return nil, fmt.Errorf("inter-op threads: %w", err)
		}
	}
	if o.NoSpin {
		for _, k := range []string{"session.intra_op.allow_spinning", "session.inter_op.allow_spinning"} {
			if err := so.AddSessionConfigEntry(k, "0"); err != nil {
				return nil, fmt.Errorf("session option %s: %w", k, err)
			}
		}
	}
	for _, p := range provs {
		if err := appendProvider(so, p, o.providerOptions(p), o.DeviceID, corePath); err != nil {
			return nil, err
		}
	}
	s, err = ort.NewDynamicAdvancedSessionWithONNXData(onnx, []string{spec.InputName}, outputNames, so)
	if err != nil {
		return nil, err
	}
	return s, nil
}

// providerOptions are the ORT provider options for a GPU provider (nil for the defaults).
func (o Options) providerOptions(p string) map[string]string {
	m := map[string]string{}
	if o.DeviceID != 0 {
		m["device_id"] = strconv.Itoa(o.DeviceID)
	}
	if p == TensorRT && o.TensorRTCacheDir != "" {
		m["trt_engine_cache_enable"] = "1"
		m["trt_engine_cache_path"] = o.TensorRTCacheDir
	}
	return m
}

// Name returns the path or name the model was opened with.
func (m *Model) Name() string { return m.name }

// Config returns the model's configuration read from its metadata.
func (m *Model) Config() spec.Config { return m.it.Config }

// Interface returns the validated interface (input size, class counts, tokens grid).
func (m *Model) Interface() spec.Interface { return *m.it }

// Providers returns the execution providers in effect, in priority order (ORT also runs nodes
// that no listed provider supports on the CPU).
func (m *Model) Providers() []string { return slices.Clone(m.providers) }

// Run runs a batch: images holds batch×3×H×W float32 (each image CHW, normalized as the
// model's metadata says). Any batch ≥ 1. Cancelling ctx terminates a running session call.
func (m *Model) Run(ctx context.Context, images []float32, batch int) (*predict.Result, error) {
	h, w := m.it.Height, m.it.Width
	if batch < 1 {
		return nil, fmt.Errorf("model %s: run: batch must be >= 1, got %d", m.name, batch)
	}
	if want := batch * 3 * h * w; len(images) != want {
		return nil, fmt.Errorf("model %s: run: images has %d floats, want batch %d × 3 × %d × %d = %d", m.name, len(images), batch, h, w, want)
	}
	if err := ctx.Err(); err != nil {
		return nil, fmt.Errorf("model %s: run: %w", m.name, err)
	}
	m.mu.RLock()
	defer m.mu.RUnlock()
	if m.session == nil {
		return nil, fmt.Errorf("model %s: run: model is closed", m.name)
	}
	res := &predict.Result{Batch: batch, Probs: map[string][]float32{}}
	res, err := m.run(ctx, images, batch, res)
	if err != nil {
		return nil, fmt.Errorf("model %s: run: %w", m.name, errtext.Flat(err))
	}
	return res, nil
}

func (m *Model) run(ctx context.Context, images []float32, batch int, res *predict.Result) (_ *predict.Result, err error) {
	b := int64(batch)
	var values []ort.Value
	defer func() {
		for _, v := range values {
			if derr := v.Destroy(); derr != nil {
				err = errors.Join(err, fmt.Errorf("destroy tensor: %w", derr))
			}
		}
	}()
	in, err := ort.NewTensor(ort.NewShape(b, 3, int64(m.it.Height), int64(m.it.Width)), images)
	if err != nil {
		return nil, fmt.Errorf("input tensor: %w", err)
	}
	values = append(values, in)
	outs := make([]ort.Value, len(outputNames))
	for i, name := range outputNames {
		n := m.it.Tokens
		if name != spec.OutputAttention {
			n = m.it.Classes[name]
		}
		data := make([]float32, batch*n)
		t, err := ort.NewTensor(ort.NewShape(b, int64(n)), data)
		if err != nil {
			return nil, fmt.Errorf("output tensor %s: %w", name, err)
		}
		values = append(values, t)
		outs[i] = t
		if name == spec.OutputAttention {
			res.Attention = data
		} else {
			res.Probs[name] = data
		}
	}
	ro, err := ort.NewRunOptions()
	if err != nil {
		return nil, fmt.Errorf("run options: %w", err)
	}
	defer func() {
		if derr := ro.Destroy(); derr != nil {
			err = errors.Join(err, fmt.Errorf("run options: %w", derr))
		}
	}()
	if ctx.Done() != nil {
		done := make(chan struct{})
		watch := make(chan struct{})
		go func() {
			defer close(watch)
			select {
			case <-ctx.Done():
				_ = ro.Terminate() // the run then fails with ORT's "Exiting due to terminate flag"
			case <-done:
			}
		}()
		defer func() { close(done); <-watch }()
	}
	err = m.session.RunWithOptions([]ort.Value{in}, outs, ro)
	if err != nil {
		if cerr := ctx.Err(); cerr != nil {
			return nil, cerr
		}
		return nil, err
	}
	return res, nil
}

// Close destroys the session. It is idempotent and waits for running Runs to end.
func (m *Model) Close() error {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.session == nil {
		return nil
	}
	err := m.session.Destroy()
	m.session = nil
	env.Lock()
	env.models--
	env.Unlock()
	if err != nil {
		return fmt.Errorf("model %s: close: %w", m.name, err)
	}
	return nil
}
