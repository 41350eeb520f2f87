package server

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"image"
	"image/color"
	"image/jpeg"
	"image/png"
	"io"
	"log/slog"
	"math"
	"net"
	"net/http"
	"os"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/artnet/artnet/models/spec"
	"github.com/artnet/artnet/onnxrt"
	"github.com/artnet/artnet/onnxrt/runtimetest"
	"github.com/artnet/artnet/predict"
	"github.com/artnet/artnet/preprocess"
)

func TestMain(m *testing.M) {
	if err := onnxrt.Init(""); err != nil {
		fmt.Fprintln(os.Stderr, "server tests need ONNX Runtime (scripts/setup-ort.sh):", err)
		os.Exit(1)
	}
	code := m.Run()
	if err := onnxrt.Shutdown(); err != nil {
		fmt.Fprintln(os.Stderr, "server tests:", err)
		code = 1
	}
	os.Exit(code)
}

// tinyModel opens runtimetest's artnet-shaped model for spec.Tiny() (64×64 input, 4×4 tokens).
func tinyModel(t testing.TB) *onnxrt.Model {
	t.Helper()
	return runtimetest.Open(t, runtimetest.Model{Config: spec.Tiny()}, onnxrt.Options{IntraOpThreads: 1})
}

// gated wraps a predictor: it counts runs and, while release is open, blocks every Run until
// release is closed (or the run's context ends).
type gated struct {
	predict.Predictor
	release chan struct{}
	entered chan int // batch size of each Run, when it starts

	mu     sync.Mutex
	sizes  []int
	images int
}

func newGated(p predict.Predictor, block bool) *gated {
	g := &gated{Predictor: p, entered: make(chan int, 1000)}
	if block {
		g.release = make(chan struct{})
	}
	return g
}

func (g *gated) Run(ctx context.Context, images []float32, n int) (*predict.Result, error) {
	select {
	case g.entered <- n:
	default:
	}
	g.mu.Lock()
	g.sizes = append(g.sizes, n)
	g.images += n
	g.mu.Unlock()
	if g.release != nil {
		select {
		case <-g.release:
		case <-ctx.Done():
			return nil, ctx.Err()
		}
	}
	return g.Predictor.Run(ctx, images, n)
}

func (g *gated) runs() (sizes []int, images int) {
	g.mu.Lock()
	defer g.mu.Unlock()
	return append([]int(nil), g.sizes...), g.images
}

// Close is a no-op: the tests close the wrapped model themselves.
func (g *gated) Close() error { return nil }

// testClient bounds every request of the tests, so that a hang fails in seconds.
var testClient = &http.Client{Timeout: 30 * time.Second}

func quiet() *slog.Logger { return slog.New(slog.NewTextHandler(io.Discard, nil)) }

// testConfig is small and quick: short delays and timeouts.
func testConfig() Config {
	return Config{
		Batch: 8, MaxDelay: 2 * time.Millisecond, Queue: 64,
		MaxBodyBytes: 256 << 10, ReadHeaderTimeout: 2 * time.Second, ReadTimeout: 5 * time.Second,
		WriteTimeout: 10 * time.Second, ShutdownTimeout: 10 * time.Second,
	}
}

type running struct {
	s    *Server
	url  string
	stop func() error // ends Serve and returns its error
}

// serve starts a Server on a loopback port; stop is also registered as cleanup.
func serve(t testing.TB, cfg Config, p predict.Predictor, log *slog.Logger) *running {
	t.Helper()
	return serveSetup(t, cfg, p, log, nil)
}

// serveSetup is serve with setup run on the Server before Serve starts (nil: none).
func serveSetup(t testing.TB, cfg Config, p predict.Predictor, log *slog.Logger, setup func(*Server)) *running {
	t.Helper()
	if log == nil {
		log = quiet()
	}
	s, err := New(cfg, p, log)
	if err != nil {
		t.Fatal(err)
	}
	if setup != nil {
		setup(s)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	stopServe := serveInBackground("Serve", func(ctx context.Context) error { return s.Serve(ctx, ln) })
	var called atomic.Bool
	stop := func() error {
		called.Store(true)
		return stopServe()
	}
	t.Cleanup(func() { // reports the error unless the test stopped the server itself
		if called.Load() {
			return
		}
		if err := stop(); err != nil {
			t.Error(err)
		}
	})
	return &running{s: s, url: "http://" + ln.Addr().String(), stop: stop}
}

// serveInBackground runs serve on a goroutine and returns stop, which ends serve's context and
// waits at most 20 s for it to return — once: later calls give the same error. what names serve
// in that error.
func serveInBackground(what string, serve func(ctx context.Context) error) (stop func() error) {
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- serve(ctx) }()
	var once sync.Once
	var serr error
	return func() error {
		once.Do(func() {
			cancel()
			select {
			case serr = <-done:
			case <-time.After(20 * time.Second):
				serr = fmt.Errorf("%s did not return 20 s after its context ended", what)
			}
		})
		return serr
	}
}

// waitFor polls cond for up to 5 s.
func waitFor(t testing.TB, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(2 * time.Millisecond)
	}
}

// picture is a w×h image whose colours depend on seed (so that the tiny model's outputs differ
// between seeds): a diagonal gradient around a seed-dependent colour.
func picture(w, h, seed int) *image.RGBA {
	m := image.NewRGBA(image.Rect(0, 0, w, h))
	base := [3]float64{
		128 + 120*math.Sin(float64(seed)*1.3),
		128 + 120*math.Sin(float64(seed)*2.1+1),
		128 + 120*math.Sin(float64(seed)*0.7+2),
	}
	for y := 0; y < h; y++ {
		for x := 0; x < w; x++ {
			d := 20 * (float64(x+y)/float64(w+h) - 0.5)
			c := [3]uint8{}
			for k := range c {
				c[k] = uint8(math.Max(0, math.Min(255, base[k]+d)))
			}
			m.SetRGBA(x, y, color.RGBA{c[0], c[1], c[2], 255})
		}
	}
	return m
}

func pngBytes(t testing.TB, img image.Image) []byte {
	t.Helper()
	var b bytes.Buffer
	if err := png.Encode(&b, img); err != nil {
		t.Fatal(err)
	}
	return b.Bytes()
}

func jpegBytes(t testing.TB, img image.Image) []byte {
	t.Helper()
	var b bytes.Buffer
	if err := jpeg.Encode(&b, img, &jpeg.Options{Quality: 90}); err != nil {
		t.Fatal(err)
	}
	return b.Bytes()
}

// expected runs the model directly (batch 1) on an encoded image, as the server should.
func expected(t testing.TB, m predict.Predictor, data []byte, name string, k int) *predict.Prediction {
	t.Helper()
	return expectedWith(t, m, data, name, k, preprocess.FromConfig(m.Config()))
}

// expectedWith is expected with the preprocessing options o.
func expectedWith(t testing.TB, m predict.Predictor, data []byte, name string, k int, o preprocess.Options) *predict.Prediction {
	t.Helper()
	return runtimetest.Expected(t, m, decoded(t, data, o), name, k, false)
}

// decoded is the model input of an encoded image, preprocessed with o.
func decoded(t testing.TB, data []byte, o preprocess.Options) []float32 {
	t.Helper()
	x, err := preprocess.Decode(bytes.NewReader(data), o)
	if err != nil {
		t.Fatal(err)
	}
	return x
}

// ranAlone is the model's raw outputs on an encoded image run alone (batch 1), as a batched
// request's slice of the outputs should be.
func ranAlone(t testing.TB, m predict.Predictor, data []byte) *predict.Result {
	t.Helper()
	res, err := m.Run(context.Background(), decoded(t, data, preprocess.FromConfig(m.Config())), 1)
	if err != nil {
		t.Fatal(err)
	}
	return res
}

// samePrediction compares labels and confidences (within tol).
func samePrediction(got, want *predict.Prediction, tol float64) error {
	if got.Image != want.Image {
		return fmt.Errorf("image %q, want %q", got.Image, want.Image)
	}
	for _, task := range spec.Tasks {
		g, w := *got.Task(task), *want.Task(task)
		if g == nil || w == nil {
			return fmt.Errorf("%s: missing", task)
		}
		if g.Label != w.Label || math.Abs(g.Confidence-w.Confidence) > tol {
			return fmt.Errorf("%s: %s %.6f, want %s %.6f", task, g.Label, g.Confidence, w.Label, w.Confidence)
		}
		if len(g.TopK) != len(w.TopK) {
			return fmt.Errorf("%s: %d top-k, want %d", task, len(g.TopK), len(w.TopK))
		}
		for i := range g.TopK {
			if g.TopK[i].Label != w.TopK[i].Label || math.Abs(g.TopK[i].Confidence-w.TopK[i].Confidence) > tol {
				return fmt.Errorf("%s top-%d: %v, want %v", task, i+1, g.TopK[i], w.TopK[i])
			}
		}
	}
	return nil
}

// post sends body to url with a content type and decodes a JSON answer into out (if non-nil).
func post(t testing.TB, url, ctype string, body []byte, out any) (*http.Response, []byte) {
	t.Helper()
	req, err := http.NewRequest(http.MethodPost, url, bytes.NewReader(body))
	if err != nil {
		t.Errorf("%v", err)
		return &http.Response{Header: http.Header{}}, nil
	}
	if ctype != "" {
		req.Header.Set("Content-Type", ctype)
	}
	return do(t, req, out)
}

// do sends req; a transport error is reported with t.Errorf (so it may run in any goroutine)
// and gives a response with status 0.
func do(t testing.TB, req *http.Request, out any) (*http.Response, []byte) {
	t.Helper()
	resp, err := testClient.Do(req)
	if err != nil {
		t.Errorf("%s %s: %v", req.Method, req.URL, err)
		return &http.Response{Header: http.Header{}}, nil
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Errorf("%s %s: reading the answer: %v", req.Method, req.URL, err)
		return &http.Response{Header: http.Header{}}, nil
	}
	if out != nil && resp.StatusCode == http.StatusOK {
		if err := json.Unmarshal(b, out); err != nil {
			t.Errorf("%s %s: answer is not JSON: %v: %.200s", req.Method, req.URL, err, b)
		}
	}
	return resp, b
}

func get(t testing.TB, url string, out any) (*http.Response, []byte) {
	t.Helper()
	req, err := http.NewRequest(http.MethodGet, url, nil)
	if err != nil {
		t.Fatal(err)
	}
	return do(t, req, out)
}

// jsonError checks that an answer is a JSON error object and returns its message.
func jsonError(t testing.TB, resp *http.Response, body []byte) string {
	t.Helper()
	if ct := resp.Header.Get("Content-Type"); ct != "application/json" {
		t.Errorf("error answer has content type %q: %.200s", ct, body)
	}
	var e struct {
		Error string `json:"error"`
	}
	if err := json.Unmarshal(body, &e); err != nil || e.Error == "" {
		t.Errorf("error answer is not {\"error\": ...}: %.200s", body)
	}
	return e.Error
}
