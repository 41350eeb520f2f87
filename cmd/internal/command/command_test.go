package command

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"image/png"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/urfave/cli/v2"

	"github.com/artnet/artnet/models/spec"
	"github.com/artnet/artnet/onnxrt"
	"github.com/artnet/artnet/onnxrt/runtimetest"
	"github.com/artnet/artnet/predict"
	"github.com/artnet/artnet/preprocess"
)

const fixtures = "../../../testdata/images"

// testApp is a binary with the shared commands; stdout and stderr are captured.
func testApp(o PredictOptions) (*cli.App, *bytes.Buffer, *bytes.Buffer) {
	var out, errw bytes.Buffer
	return &cli.App{Name: "t", Commands: []*cli.Command{Serve(), Predict(o)}, Writer: &out, ErrWriter: &errw}, &out, &errw
}

func freePort(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close()
	return addr
}

func TestServeCommand(t *testing.T) {
	model := runtimetest.WriteTiny(t)
	app, _, _ := testApp(PredictOptions{})
	for _, c := range []struct {
		args []string
		msg  string
	}{
		{[]string{"t", "serve", "--addr", "256.1.1.1:1"}, "serve"}, // the built-in model, an address that cannot be bound
		{[]string{"t", "serve", "--model", model, "--batch", "0"}, "--batch"},
		{[]string{"t", "serve", "--model", model, "--provider", "tpu"}, "tpu"},
		{[]string{"t", "serve", "--model", filepath.Join(t.TempDir(), "none.onnx")}, "none.onnx"},
		{[]string{"t", "serve", "--model", model, "--addr", "256.1.1.1:1"}, "serve"},
		{[]string{"t", "serve", "--model", model, "extra"}, "unexpected arguments"},
		{[]string{"t", "serve", "--model", model, "--mem-budget", "lots"}, "--mem-budget"},
		{[]string{"t", "serve", "--model", model, "--mem-budget", "1MiB"}, "MemBudget"},
		{[]string{"t", "serve", "--model", model, "--min-body-rate", "fast"}, "--min-body-rate"},
	} {
		if err := app.RunContext(context.Background(), c.args); err == nil || !strings.Contains(err.Error(), c.msg) {
			t.Errorf("%q: error %v, want one mentioning %q", c.args, err, c.msg)
		}
	}

	addr := freePort(t)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	done := make(chan error, 1)
	go func() {
		done <- app.RunContext(ctx, []string{"t", "serve", "--model", model, "--addr", addr, "--batch", "4", "--max-delay", "1ms", "--threads", "1"})
	}()
	url := "http://" + addr
	client := &http.Client{Timeout: 10 * time.Second}
	deadline := time.Now().Add(20 * time.Second)
	for {
		resp, err := client.Get(url + "/v2/health/ready")
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				break
			}
		}
		if time.Now().After(deadline) {
			t.Fatalf("server not ready after 20 s (last error %v)", err)
		}
		time.Sleep(10 * time.Millisecond)
	}
	img, err := os.ReadFile(filepath.Join(fixtures, "quad.png"))
	if err != nil {
		t.Fatal(err)
	}
	resp, err := client.Post(url+"/v1/predict", "image/png", bytes.NewReader(img))
	if err != nil {
		t.Fatal(err)
	}
	var got predict.Prediction
	err = json.NewDecoder(resp.Body).Decode(&got)
	resp.Body.Close()
	if resp.StatusCode != 200 || err != nil || got.Style == nil {
		t.Errorf("predict: %d %v %+v", resp.StatusCode, err, got)
	}
	cancel()
	select {
	case err := <-done:
		if err != nil {
			t.Errorf("serve: %v", err)
		}
	case <-time.After(20 * time.Second):
		t.Fatal("serve did not stop after its context ended")
	}
}

// predictOne runs the model directly on a file, as the predict command should.
func predictOne(t *testing.T, model, file string, k int) *predict.Prediction {
	t.Helper()
	m, err := onnxrt.Open(model, onnxrt.Options{IntraOpThreads: 1})
	if err != nil {
		t.Fatal(err)
	}
	defer m.Close()
	x, err := preprocess.DecodeFile(file, preprocess.FromConfig(m.Config()))
	if err != nil {
		t.Fatal(err)
	}
	return runtimetest.Expected(t, m, x, file, k, false)
}

func TestPredictCommand(t *testing.T) {
	model := runtimetest.WriteTiny(t)
	app, out, errw := testApp(PredictOptions{})
	good := []string{filepath.Join(fixtures, "quad.png"), filepath.Join(fixtures, "gray.jpg")}
	bad := filepath.Join(fixtures, "bad-truncated.jpg")
	dir := t.TempDir()
	err := app.RunContext(context.Background(), []string{"t", "predict", "--model", model, "--json", "--topk", "2", "--batch", "1",
		"--visualize-attention", dir, good[0], bad, good[1]})
	var ee *ExitError
	if !errors.As(err, &ee) || ee.Code != 1 || !strings.Contains(err.Error(), "1 of 3 images failed") {
		t.Errorf("error %v, want exit code 1 and 1 of 3 failed", err)
	}
	if !strings.Contains(errw.String(), "bad-truncated.jpg") || strings.Count(errw.String(), "\n") != 1 {
		t.Errorf("stderr %q: want one line naming the bad file", errw.String())
	}
	dec := json.NewDecoder(out)
	for _, name := range good {
		var p predict.Prediction
		if err := dec.Decode(&p); err != nil {
			t.Fatal(err)
		}
		want := predictOne(t, model, name, 2)
		if p.Image != name || p.Style.Label != want.Style.Label || len(p.Style.TopK) != 2 || p.Style.TopK[1] != want.Style.TopK[1] {
			t.Errorf("%s: got %+v, want %+v", name, p.Style, want.Style)
		}
		base := strings.TrimSuffix(filepath.Base(name), filepath.Ext(name))
		f, err := os.Open(filepath.Join(dir, base+".heatmap.png"))
		if err != nil {
			t.Fatalf("heatmap: %v", err)
		}
		img, err := png.Decode(f)
		f.Close()
		if err != nil || img.Bounds().Empty() {
			t.Errorf("heatmap of %s: %v", name, err)
		}
	}

	out.Reset()
	if err := app.RunContext(context.Background(), []string{"t", "predict", "--model", model, good[0]}); err != nil {
		t.Fatal(err)
	}
	if line := out.String(); !strings.HasPrefix(line, good[0]+": style ") || !strings.Contains(line, "; genre ") || strings.Count(line, "\n") != 1 {
		t.Errorf("text output %q", line)
	}
}

func TestPredictFlagErrors(t *testing.T) {
	model := runtimetest.WriteTiny(t)
	app, _, _ := testApp(PredictOptions{})
	for _, tc := range []struct {
		args []string
		want string
	}{
		{[]string{"predict", "--model", model}, "no image"},
		{[]string{"predict", "--model", "nope.onnx", "x.jpg"}, "nope.onnx"},
		{[]string{"predict", "--runtime", "tf", "x.jpg"}, "--runtime"},
		{[]string{"predict", "--runtime", "gomlx", "--checkpoint", "ck", "x.jpg"}, "gomlx is not in t"},
		{[]string{"predict", "--checkpoint", "ck", "x.jpg"}, "--runtime gomlx only"},
		{[]string{"predict", "--model", model, "--topk", "0", "x.jpg"}, "--topk"},
		{[]string{"predict", "--model", model, "--batch", "0", "x.jpg"}, "--batch"},
	} {
		err := app.RunContext(context.Background(), append([]string{"t"}, tc.args...))
		if err == nil || !strings.Contains(err.Error(), tc.want) || strings.Contains(err.Error(), "\n") {
			t.Errorf("%v: want one-line error mentioning %q, got %v", tc.args, tc.want, err)
		}
	}
}

// fakePredictor answers constant probabilities and fails to close.
type fakePredictor struct{ closed bool }

func (f *fakePredictor) Config() spec.Config { return spec.Tiny() }
func (f *fakePredictor) Run(_ context.Context, _ []float32, n int) (*predict.Result, error) {
	cfg := spec.Tiny()
	res := &predict.Result{Batch: n, Probs: map[string][]float32{}, Attention: make([]float32, n*cfg.Tokens())}
	for _, task := range spec.Tasks {
		res.Probs[task] = make([]float32, n*cfg.NumClasses(task))
	}
	return res, nil
}
func (f *fakePredictor) Close() error { f.closed = true; return errors.New("fake: close failed") }

// A predictor's Close error is reported, with or without an earlier error, and the plugged-in
// GoMLX opener gets the checkpoint.
func TestPredictReportsCloseError(t *testing.T) {
	var gotDir string
	var fp *fakePredictor
	app, _, _ := testApp(PredictOptions{OpenGoMLX: func(dir string) (predict.Predictor, error) {
		gotDir, fp = dir, &fakePredictor{}
		return fp, nil
	}})
	for _, files := range [][]string{{filepath.Join(fixtures, "quad.png")}, {filepath.Join(fixtures, "quad.png"), filepath.Join(fixtures, "bad-empty.jpg")}} {
		err := app.RunContext(context.Background(), append([]string{"t", "predict", "--runtime", "gomlx", "--checkpoint", "ck"}, files...))
		if err == nil || !strings.Contains(err.Error(), "close failed") || !fp.closed || gotDir != "ck" {
			t.Errorf("%v: error %v (closed %v, dir %q), want the Close error", files, err, fp.closed, gotDir)
		}
		if len(files) == 2 && !strings.Contains(err.Error(), "1 of 2 images failed") {
			t.Errorf("the images error is lost: %v", err)
		}
	}
}

// Main prints one line "NAME: message" and returns the exit status.
func TestMainExitStatus(t *testing.T) {
	app, _, _ := testApp(PredictOptions{})
	var errw bytes.Buffer
	if code := Main(context.Background(), app, []string{"t", "predict"}, &errw); code != 1 || errw.String() != "t: predict: no image given (usage: t predict --model FILE.onnx IMAGE...)\n" {
		t.Errorf("Main: code %d, stderr %q", code, errw.String())
	}
	app.Commands = append(app.Commands, &cli.Command{Name: "x", Action: func(*cli.Context) error {
		return fmt.Errorf("wrapped: %w", &ExitError{Code: 3, Msg: "three\nlines\nhere"})
	}})
	errw.Reset()
	if code := Main(context.Background(), app, []string{"t", "x"}, &errw); code != 3 || errw.String() != "t: wrapped: three; lines; here\n" {
		t.Errorf("Main: code %d, stderr %q", code, errw.String())
	}
	errw.Reset()
	if code := Main(context.Background(), app, []string{"t", "--help"}, &errw); code != 0 || errw.Len() != 0 {
		t.Errorf("Main --help: code %d, stderr %q", code, errw.String())
	}
}
