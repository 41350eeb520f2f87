package onnxrt_test

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"math"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/artnet/artnet/models/spec"
	"github.com/artnet/artnet/onnxrt"
	"github.com/artnet/artnet/onnxrt/runtimetest"
)

func TestMain(m *testing.M) {
	if err := onnxrt.Init(""); err != nil {
		fmt.Fprintln(os.Stderr, "runtime tests:", err)
		os.Exit(1)
	}
	code := m.Run()
	if err := shutdownAndReinit(); err != nil {
		fmt.Fprintln(os.Stderr, "runtime tests:", err)
		code = 1
	}
	os.Exit(code)
}

// shutdownAndReinit checks that the environment can be destroyed, created again (the library
// is unloaded and reloaded) and used, and destroyed for good.
func shutdownAndReinit() error {
	if err := onnxrt.Shutdown(); err != nil {
		return fmt.Errorf("shutdown: %w", err)
	}
	if v := onnxrt.Version(); v != "" {
		return fmt.Errorf("version after shutdown: %q", v)
	}
	if err := onnxrt.Shutdown(); err != nil {
		return fmt.Errorf("second shutdown: %w", err)
	}
	// A bare file name in the working directory (dlopen alone would search system folders).
	lib, _, err := onnxrt.FindLibrary("")
	if err != nil {
		return err
	}
	wd, err := os.Getwd()
	if err != nil {
		return err
	}
	if err := os.Chdir(filepath.Dir(lib)); err != nil {
		return err
	}
	err = onnxrt.Init(filepath.Base(lib))
	if cerr := os.Chdir(wd); cerr != nil {
		return errors.Join(err, cerr)
	}
	if err != nil {
		return fmt.Errorf("init with a bare file name: %w", err)
	}
	if err := onnxrt.Init(lib); err != nil {
		return fmt.Errorf("init again with the absolute path: %w", err)
	}
	if err := onnxrt.Shutdown(); err != nil {
		return err
	}
	// Open initializes on demand.
	m, err := onnxrt.OpenBytes("reinit.onnx", runtimetest.TinyModel(spec.Tiny()), cpuOpts())
	if err != nil {
		return fmt.Errorf("open after shutdown: %w", err)
	}
	_, err = m.Run(context.Background(), runtimetest.Images(1, 64, 1), 1)
	return errors.Join(err, m.Close(), onnxrt.Shutdown())
}

func cpuOpts() onnxrt.Options { return onnxrt.Options{IntraOpThreads: 1, InterOpThreads: 1} }

func maxDiff(a, b []float32) float64 {
	if len(a) != len(b) {
		return math.Inf(1)
	}
	d := 0.0
	for i := range a {
		d = math.Max(d, math.Abs(float64(a[i])-float64(b[i])))
	}
	return d
}

func TestVersion(t *testing.T) {
	if v := onnxrt.Version(); !strings.HasPrefix(v, "1.30.") {
		t.Fatalf("ORT version %q, want 1.30.x", v)
	}
	if err := onnxrt.Init(""); err != nil {
		t.Fatalf("second Init: %v", err)
	}
	if err := onnxrt.Init(onnxrt.LibraryPath()); err != nil {
		t.Fatalf("Init with the same path: %v", err)
	}
	other := filepath.Join(t.TempDir(), "libonnxruntime.so.1")
	if err := os.WriteFile(other, []byte("x"), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := onnxrt.Init(other); err == nil || !strings.Contains(err.Error(), "already initialized") {
		t.Fatalf("Init with another library: err %v", err)
	}
}

// TestRunMatchesReference runs the tiny model against its Go reference, with the test's
// single-threaded options and with two threads whose spin-waiting is off (Options.NoSpin).
func TestRunMatchesReference(t *testing.T) {
	for name, o := range map[string]onnxrt.Options{"1-thread": cpuOpts(), "2-threads-nospin": {IntraOpThreads: 2, NoSpin: true}} {
		t.Run(name, func(t *testing.T) { runMatchesReference(t, o) })
	}
}

func runMatchesReference(t *testing.T, o onnxrt.Options) {
	cfg := spec.Tiny()
	tm := runtimetest.Model{Config: cfg}
	path := filepath.Join(t.TempDir(), "tiny.onnx")
	if err := os.WriteFile(path, tm.Bytes(), 0o644); err != nil {
		t.Fatal(err)
	}
	m, err := onnxrt.Open(path, o)
	if err != nil {
		t.Fatal(err)
	}
	defer func() {
		if err := m.Close(); err != nil {
			t.Error(err)
		}
		if err := m.Close(); err != nil {
			t.Errorf("second Close: %v", err)
		}
	}()
	if got := m.Providers(); !slices.Equal(got, []string{"cpu"}) {
		t.Errorf("providers %v, want [cpu]", got)
	}
	if got := m.Config(); got.ImageSize != 64 || got.NumClasses("style") != 27 || got.Tokens() != 16 {
		t.Errorf("config: image %d style %d tokens %d", got.ImageSize, got.NumClasses("style"), got.Tokens())
	}
	for _, batch := range []int{1, 3, 32} {
		imgs := runtimetest.Images(batch, cfg.ImageSize, uint64(batch))
		res, err := m.Run(context.Background(), imgs, batch)
		if err != nil {
			t.Fatalf("batch %d: %v", batch, err)
		}
		probs, att := tm.Reference(imgs, batch)
		if res.Batch != batch {
			t.Errorf("batch %d: result batch %d", batch, res.Batch)
		}
		for _, task := range spec.Tasks {
			if d := maxDiff(res.Probs[task], probs[task]); d > 1e-5 {
				t.Errorf("batch %d %s: max abs diff %g", batch, task, d)
			}
			if len(res.Row(task, batch-1)) != cfg.NumClasses(task) {
				t.Errorf("batch %d %s: row length %d", batch, task, len(res.Row(task, batch-1)))
			}
		}
		if d := maxDiff(res.Attention, att); d > 1e-5 {
			t.Errorf("batch %d attention: max abs diff %g", batch, d)
		}
		last := res.Row("attention", batch-1)
		if len(last) != 16 || maxDiff(last, res.Attention[(batch-1)*16:]) != 0 {
			t.Errorf("batch %d: Row(attention) wrong", batch)
		}
		if res.Row("style", batch) != nil || res.Row("nope", 0) != nil {
			t.Errorf("Row out of range should be nil")
		}
	}
	// The check can fail: outputs differ between images.
	imgs := runtimetest.Images(2, cfg.ImageSize, 7)
	res, err := m.Run(context.Background(), imgs, 2)
	if err != nil {
		t.Fatal(err)
	}
	if d := maxDiff(res.Row("style", 0), res.Row("style", 1)); d < 1e-3 {
		t.Errorf("two different images give the same style probabilities (diff %g)", d)
	}
}

func TestNonDefaultClassCounts(t *testing.T) {
	cfg := spec.Tiny()
	cfg.ImageSize, cfg.ResizeSize = 32, 36
	cfg.Classes = map[string][]string{"style": spec.Numbered("s", 5), "genre": spec.Numbered("g", 2), "artist": spec.Numbered("a", 7)}
	tm := runtimetest.Model{Config: cfg}
	m := runtimetest.Open(t, tm, cpuOpts())
	imgs := runtimetest.Images(2, 32, 1)
	res, err := m.Run(context.Background(), imgs, 2)
	if err != nil {
		t.Fatal(err)
	}
	probs, att := tm.Reference(imgs, 2)
	for _, task := range spec.Tasks {
		if len(res.Probs[task]) != 2*cfg.NumClasses(task) || maxDiff(res.Probs[task], probs[task]) > 1e-5 {
			t.Errorf("%s: got %d values, diff %g", task, len(res.Probs[task]), maxDiff(res.Probs[task], probs[task]))
		}
	}
	if len(res.Attention) != 2*cfg.Tokens() || maxDiff(res.Attention, att) > 1e-5 {
		t.Errorf("attention: %d values, want %d", len(res.Attention), 2*cfg.Tokens())
	}
}

func TestOpenErrors(t *testing.T) {
	cfg := spec.Tiny()
	dir := t.TempDir()
	write := func(name string, b []byte) string {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, b, 0o644); err != nil {
			t.Fatal(err)
		}
		return p
	}
	badMeta := cfg.Metadata()
	badMeta[spec.MetaTokensGrid] = "banana"
	cases := []struct {
		name string
		path string
		want string
	}{
		{"missing file", filepath.Join(dir, "missing.onnx"), "no such file"}, // also errors.Is(err, fs.ErrNotExist), below
		{"empty file", write("empty.onnx", nil), "not an ONNX model"},
		{"garbage", write("garbage.onnx", []byte("\xff\xfe this is not protobuf \x00\x01")), "not an ONNX model"},
		{"no metadata", write("nometa.onnx", runtimetest.Model{Config: cfg, NoMetadata: true}.Bytes()), "not an artnet model"},
		{"bad tokens grid", write("grid.onnx", runtimetest.Model{Config: cfg, Metadata: badMeta}.Bytes()), spec.MetaTokensGrid},
		{"wrong output name", write("name.onnx", runtimetest.Model{Config: cfg, Rename: map[string]string{"genre": "genres"}}.Bytes()), `output "genre" missing`},
		{"wrong class count", write("classes.onnx", runtimetest.Model{Config: cfg, Classes: map[string]int{"artist": 24}}.Bytes()), `output "artist": shape [batch,24], want [batch,23]`},
		{"wrong tokens", write("tokens.onnx", runtimetest.Model{Config: cfg, Tokens: 9}.Bytes()), `output "attention"`},
		{"wrong input size", write("size.onnx", runtimetest.Model{Config: cfg, InputSize: 48}.Bytes()), `input "image": shape [batch,3,48,48], want [batch,3,64,64]`},
		{"fixed batch", write("batch.onnx", runtimetest.Model{Config: cfg, FixedBatch: 1}.Bytes()), "fixed batch"},
	}
	for _, c := range cases {
		m, err := onnxrt.Open(c.path, cpuOpts())
		if err == nil {
			_ = m.Close()
			t.Errorf("%s: no error", c.name)
			continue
		}
		msg := err.Error()
		if !strings.Contains(msg, c.path) || !strings.Contains(msg, c.want) || strings.Contains(msg, "\n") {
			t.Errorf("%s: error %q, want one line naming %s and containing %q", c.name, msg, c.path, c.want)
		}
	}
	if _, err := onnxrt.Open(filepath.Join(dir, "missing.onnx"), cpuOpts()); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("missing file: err %v does not wrap fs.ErrNotExist", err)
	}
	// A structurally valid ONNX model that ORT itself rejects (a node's input is undefined).
	bad := runtimetest.Model{Config: cfg}.Bytes()
	bad = []byte(strings.Replace(string(bad), "masked", "maskeD", 1))
	if m, err := onnxrt.OpenBytes("broken.onnx", bad, cpuOpts()); err == nil {
		_ = m.Close()
		t.Errorf("broken graph: no error")
	} else if !strings.Contains(err.Error(), "broken.onnx") || strings.Contains(err.Error(), "\n") {
		t.Errorf("broken graph: error %q", err)
	}
}

func TestRunErrors(t *testing.T) {
	m := runtimetest.Open(t, runtimetest.Model{Config: spec.Tiny()}, cpuOpts())
	ctx := context.Background()
	imgs := runtimetest.Images(2, 64, 1)
	if _, err := m.Run(ctx, imgs, 3); err == nil || !strings.Contains(err.Error(), "want batch 3 × 3 × 64 × 64") {
		t.Errorf("short input: err %v", err)
	}
	if _, err := m.Run(ctx, imgs[:len(imgs)-1], 2); err == nil {
		t.Errorf("one float short: no error")
	}
	if _, err := m.Run(ctx, imgs, 0); err == nil || !strings.Contains(err.Error(), "batch") {
		t.Errorf("batch 0: err %v", err)
	}
	if _, err := m.Run(ctx, runtimetest.Images(1, 48, 1), 1); err == nil {
		t.Errorf("48×48 image into a 64×64 model: no error")
	}
	cctx, cancel := context.WithCancel(ctx)
	cancel()
	if _, err := m.Run(cctx, imgs, 2); !errors.Is(err, context.Canceled) {
		t.Errorf("cancelled context: err %v", err)
	}
	m2, err := onnxrt.OpenBytes("closed.onnx", runtimetest.TinyModel(spec.Tiny()), cpuOpts())
	if err != nil {
		t.Fatal(err)
	}
	if err := m2.Close(); err != nil {
		t.Fatal(err)
	}
	if _, err := m2.Run(ctx, imgs, 2); err == nil || !strings.Contains(err.Error(), "closed") {
		t.Errorf("run after close: err %v", err)
	}
}

// Cancelling the context stops a running session call: the slow model would run for many
// seconds, so an error wrapping context.Canceled shows ORT was terminated.
func TestCancelRunning(t *testing.T) {
	tm := runtimetest.Model{Config: spec.Tiny(), SlowMatMuls: 3000}
	m := runtimetest.Open(t, tm, cpuOpts())
	imgs := runtimetest.Images(1, 64, 3)
	ctx, cancel := context.WithCancel(context.Background())
	go func() {
		time.Sleep(100 * time.Millisecond)
		cancel()
	}()
	start := time.Now()
	_, err := m.Run(ctx, imgs, 1)
	if !errors.Is(err, context.Canceled) {
		t.Fatalf("err %v, want context.Canceled", err)
	}
	t.Logf("cancelled after %v", time.Since(start))
	// The model still works, and its outputs are the plain model's.
	small := runtimetest.Model{Config: spec.Tiny(), SlowMatMuls: 2}
	m2 := runtimetest.Open(t, small, cpuOpts())
	res, err := m2.Run(context.Background(), imgs, 1)
	if err != nil {
		t.Fatal(err)
	}
	probs, _ := small.Reference(imgs, 1)
	if d := maxDiff(res.Probs["style"], probs["style"]); d > 1e-5 {
		t.Errorf("slow model differs from reference: %g", d)
	}
}

func TestConcurrentRuns(t *testing.T) {
	tm := runtimetest.Model{Config: spec.Tiny()}
	m := runtimetest.Open(t, tm, cpuOpts())
	var wg sync.WaitGroup
	errs := make(chan error, 8)
	for g := 0; g < 8; g++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			batch := 1 + g%3
			imgs := runtimetest.Images(batch, 64, uint64(100+g))
			res, err := m.Run(context.Background(), imgs, batch)
			if err != nil {
				errs <- err
				return
			}
			probs, _ := tm.Reference(imgs, batch)
			if d := maxDiff(res.Probs["genre"], probs["genre"]); d > 1e-5 {
				errs <- fmt.Errorf("goroutine %d: diff %g", g, d)
			}
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
}

func TestProviders(t *testing.T) {
	avail, err := onnxrt.AvailableProviders()
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Contains(avail, "cpu") {
		t.Fatalf("available providers %v lack cpu", avail)
	}
	t.Logf("available providers: %v", avail)
	tiny := runtimetest.TinyModel(spec.Tiny())

	// CUDA alone: fails clearly where it is not available, works where it is.
	m, err := onnxrt.OpenBytes("tiny.onnx", tiny, onnxrt.Options{Providers: []string{"cuda"}})
	if slices.Contains(avail, "cuda") {
		if err != nil {
			t.Fatalf("cuda available but open failed: %v", err)
		}
		if got := m.Providers(); !slices.Equal(got, []string{"cuda"}) {
			t.Errorf("providers %v, want [cuda]", got)
		}
		_ = m.Close()
	} else {
		if err == nil {
			_ = m.Close()
			t.Fatalf("cuda unavailable but open succeeded")
		}
		if msg := err.Error(); !strings.Contains(msg, "provider cuda") || !strings.Contains(msg, "tiny.onnx") || strings.Contains(msg, "\n") {
			t.Errorf("cuda alone: error %q", msg)
		}
	}

	// CUDA then CPU: falls back (or keeps CUDA where available) and runs.
	m, err = onnxrt.OpenBytes("tiny.onnx", tiny, onnxrt.Options{Providers: []string{"CUDA", "cpu"}, IntraOpThreads: 1})
	if err != nil {
		t.Fatalf("cuda,cpu: %v", err)
	}
	want := []string{"cpu"}
	if slices.Contains(avail, "cuda") {
		want = []string{"cuda", "cpu"}
	}
	if got := m.Providers(); !slices.Equal(got, want) {
		t.Errorf("cuda,cpu: providers %v, want %v", got, want)
	}
	if _, err := m.Run(context.Background(), runtimetest.Images(1, 64, 1), 1); err != nil {
		t.Errorf("run after fallback: %v", err)
	}
	if err := m.Close(); err != nil {
		t.Error(err)
	}

	// GPU provider options are passed without breaking the fallback.
	m, err = onnxrt.OpenBytes("tiny.onnx", tiny, onnxrt.Options{Providers: []string{"tensorrt", "cuda", "cpu"}, DeviceID: 0, TensorRTCacheDir: t.TempDir()})
	if err != nil {
		t.Fatalf("tensorrt,cuda,cpu with options: %v", err)
	}
	if got := m.Providers(); !slices.Contains(avail, "tensorrt") && got[0] == "tensorrt" || !slices.Contains(avail, "cuda") && !slices.Equal(got, []string{"cpu"}) {
		t.Errorf("tensorrt,cuda,cpu: providers %v with %v available", got, avail)
	}
	if err := m.Close(); err != nil {
		t.Error(err)
	}
	if _, err := onnxrt.OpenBytes("tiny.onnx", tiny, onnxrt.Options{DeviceID: -1}); err == nil || !strings.Contains(err.Error(), "device id") {
		t.Errorf("device id -1: err %v", err)
	}

	for _, bad := range [][]string{{"gpu"}, {"cpu", "cuda"}, {"cpu", "cpu"}} {
		if m, err := onnxrt.OpenBytes("tiny.onnx", tiny, onnxrt.Options{Providers: bad}); err == nil {
			_ = m.Close()
			t.Errorf("providers %q: no error", bad)
		} else if !strings.Contains(err.Error(), "provider") {
			t.Errorf("providers %q: error %q", bad, err)
		}
	}
}

func TestShutdownWithOpenModel(t *testing.T) {
	m := runtimetest.Open(t, runtimetest.Model{Config: spec.Tiny()}, cpuOpts())
	_ = m
	if err := onnxrt.Shutdown(); err == nil || !strings.Contains(err.Error(), "still open") {
		t.Fatalf("shutdown with an open model: err %v", err)
	}
}

// Opens, runs and closes from several goroutines at once, and Close while Runs are in flight:
// Close waits for them, later Runs fail cleanly.
func TestConcurrentOpenClose(t *testing.T) {
	onnx := runtimetest.TinyModel(spec.Tiny())
	imgs := runtimetest.Images(2, 64, 5)
	var wg sync.WaitGroup
	errs := make(chan error, 64)
	for g := 0; g < 4; g++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			m, err := onnxrt.OpenBytes(fmt.Sprintf("m%d.onnx", g), onnx, cpuOpts())
			if err != nil {
				errs <- err
				return
			}
			var rw sync.WaitGroup
			for r := 0; r < 4; r++ {
				rw.Add(1)
				go func() {
					defer rw.Done()
					for i := 0; i < 5; i++ {
						if _, err := m.Run(context.Background(), imgs, 2); err != nil && !strings.Contains(err.Error(), "closed") {
							errs <- err
						}
					}
				}()
			}
			if err := m.Close(); err != nil {
				errs <- err
			}
			rw.Wait()
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
}
