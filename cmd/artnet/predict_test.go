package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"image/png"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/urfave/cli/v2"

	"github.com/artnet/artnet/cmd/internal/command"
	"github.com/artnet/artnet/engine"
	"github.com/artnet/artnet/internal/testenv"
	"github.com/artnet/artnet/models/spec"
	"github.com/artnet/artnet/onnxrt/runtimetest"
	"github.com/artnet/artnet/preprocess"
)

var badImages = map[string]string{
	"bad-empty.jpg":     "empty",
	"bad-truncated.jpg": "truncated",
	"bad-text.png":      "format",
	"bad-1x1.png":       "small",
	"bad-huge.png":      "pixels",
}

// runApp runs the CLI in-process and returns stdout, stderr and the error main would print.
func runApp(t *testing.T, args ...string) (string, string, error) {
	t.Helper()
	var out, errw bytes.Buffer
	app := newApp()
	app.Writer, app.ErrWriter = &out, &errw
	err := app.RunContext(context.Background(), append([]string{"artnet"}, args...))
	return out.String(), errw.String(), err
}

// Bad images each get one stderr line naming the file; the good ones in the same call are
// still predicted, and the call fails with exit code 1.
func TestPredictBadImagesOneLineEachOthersStillPredicted(t *testing.T) {
	model := runtimetest.WriteTiny(t)
	good := []string{"../../testdata/images/quad.jpg", testenv.Testdata(t, testenv.TheScream)}
	args := []string{"predict", "--model", model, "--json", "--batch", "2", good[0]}
	for name := range badImages {
		args = append(args, filepath.Join("../../testdata/images", name))
	}
	args = append(args, good[1])
	stdout, stderr, err := runApp(t, args...)
	var ee *command.ExitError
	if !errors.As(err, &ee) || ee.Code != 1 {
		t.Fatalf("want exit code 1, got %v", err)
	}
	if !strings.Contains(err.Error(), "5 of 7 images failed") {
		t.Errorf("summary %q", err.Error())
	}
	lines := strings.Split(strings.TrimSpace(stderr), "\n")
	if len(lines) != len(badImages) {
		t.Fatalf("want %d stderr lines, got %d:\n%s", len(badImages), len(lines), stderr)
	}
	for name, cause := range badImages {
		found := false
		for _, l := range lines {
			if strings.Contains(l, name) {
				found = true
				if !strings.Contains(strings.ToLower(l), cause) {
					t.Errorf("%s: line %q does not say %q", name, l, cause)
				}
			}
		}
		if !found {
			t.Errorf("no stderr line names %s:\n%s", name, stderr)
		}
	}
	var preds []map[string]any
	dec := json.NewDecoder(strings.NewReader(stdout))
	for dec.More() {
		var p map[string]any
		if err := dec.Decode(&p); err != nil {
			t.Fatalf("stdout is not JSON lines: %v\n%s", err, stdout)
		}
		preds = append(preds, p)
	}
	if len(preds) != 2 || preds[0]["image"] != good[0] || preds[1]["image"] != good[1] {
		t.Fatalf("want predictions for the two good images, got %v", preds)
	}
	for _, task := range spec.Tasks {
		tp, _ := preds[0][task].(map[string]any)
		if tp == nil || tp["label"] == "" || tp["confidence"].(float64) <= 0 {
			t.Errorf("task %s missing or empty: %v", task, preds[0][task])
		}
	}
}

// The real binary: non-zero exit status, one line per bad file, no panic trace.
func TestPredictBinaryExitStatus(t *testing.T) {
	if testing.Short() {
		t.Skip("builds the binary")
	}
	bin := filepath.Join(t.TempDir(), "artnet")
	buildArtnet(t, bin)
	model := runtimetest.WriteTiny(t)
	for name := range badImages {
		cmd := exec.Command(bin, "predict", "--model", model, filepath.Join("../../testdata/images", name))
		var stderr bytes.Buffer
		cmd.Stderr = &stderr
		err := cmd.Run()
		var xe *exec.ExitError
		if !errors.As(err, &xe) || xe.ExitCode() != 1 {
			t.Errorf("%s: want exit status 1, got %v", name, err)
		}
		s := stderr.String()
		if strings.Contains(s, "panic") || strings.Contains(s, "goroutine") {
			t.Errorf("%s: panic output:\n%s", name, s)
		}
		if !strings.Contains(s, name) {
			t.Errorf("%s: stderr does not name the file:\n%s", name, s)
		}
	}
}

// artnet's serve and predict are the shared commands, with the same flags as artnet-serve's.
func TestSharedCommandFlags(t *testing.T) {
	flags := func(c *cli.Command) string {
		var names []string
		for _, f := range c.Flags {
			names = append(names, f.Names()...)
		}
		return strings.Join(names, ",")
	}
	want := map[string]string{"serve": flags(command.Serve()), "predict": flags(command.Predict(command.PredictOptions{}))}
	for _, c := range newApp().Commands {
		if w, ok := want[c.Name]; ok {
			if got := flags(c); got != w {
				t.Errorf("artnet %s flags %s, want the shared %s", c.Name, got, w)
			}
			delete(want, c.Name)
		}
	}
	if len(want) > 0 {
		t.Errorf("artnet lacks %v", want)
	}
}

func TestPredictFlagErrors(t *testing.T) {
	for _, tc := range []struct {
		args []string
		want string
	}{
		{[]string{"predict", "x.jpg"}, "1 of 1 images failed"}, // the built-in model; x.jpg is named on stderr
		{[]string{"predict", "--model", "nope.onnx", "x.jpg"}, "nope.onnx"},
		{[]string{"predict", "--runtime", "tf", "x.jpg"}, "--runtime"},
		{[]string{"predict", "--model", "m.onnx"}, "no image"},
		{[]string{"predict", "--model", "m.onnx", "--topk", "0", "x.jpg"}, "--topk"},
		{[]string{"predict", "--ep-lib", "rocm=/x.so", "x.jpg"}, "flag --ep-lib: want NAME=PATH with NAME one of cuda, tensorrt"},
		{[]string{"predict", "--ep-lib", "cuda", "x.jpg"}, "flag --ep-lib"},
		{[]string{"predict", "--provider", "cuda", "--ep-lib", "cuda=/nonexistent/libonnxruntime_providers_cuda.so", "x.jpg"}, "provider cuda: plugin library /nonexistent/libonnxruntime_providers_cuda.so: no such file"},
	} {
		_, _, err := runApp(t, tc.args...)
		if err == nil || !strings.Contains(err.Error(), tc.want) || strings.Contains(err.Error(), "\n") {
			t.Errorf("%v: want one-line error mentioning %q, got %v", tc.args, tc.want, err)
		}
	}
}

func TestDoctorReportsLibraryAndBackends(t *testing.T) {
	var buf bytes.Buffer
	problems := doctor(&buf, "", nil)
	out := buf.String()
	if problems != 0 {
		t.Fatalf("doctor found %d problems on a set-up machine:\n%s", problems, out)
	}
	for _, want := range []string{"libonnxruntime", "version:   1.30.0", "providers: [cpu", "ep device: CPUExecutionProvider", "go:        ok", "xla:cuda", "jpeg:      " + preprocess.JPEGDecoder()} {
		if !strings.Contains(out, want) {
			t.Errorf("report lacks %q:\n%s", want, out)
		}
	}
	// Every optional native library: found, or missing with how to add it, as this build has it.
	blas, turbo := "OpenBLAS:      found", "libjpeg-turbo: found"
	if engine.DotGeneralKernelError() != nil {
		blas = "OpenBLAS:      missing — "
	}
	if !preprocess.TurboJPEG() {
		turbo = "libjpeg-turbo: missing — "
	}
	for _, want := range []string{blas, turbo} {
		if !strings.Contains(out, want) {
			t.Errorf("report lacks %q:\n%s", want, out)
		}
	}
	if strings.Count(out, "missing — ") != strings.Count(out, "; to add: ") {
		t.Errorf("a missing library without a how-to:\n%s", out)
	}
	// A plugin library that fails to register is shown, with its cause, but is optional.
	buf.Reset()
	bad := filepath.Join(t.TempDir(), "libonnxruntime_providers_cuda.so")
	if p := doctor(&buf, "", map[string]string{"cuda": bad}); p != 0 || !strings.Contains(buf.String(), "ep-lib:    FAILED — provider cuda: plugin library "+bad+": no such file") {
		t.Errorf("--ep-lib with a missing library: %d problems:\n%s", p, buf.String())
	}
	buf.Reset()
	if p := doctor(&buf, filepath.Join(t.TempDir(), "missing.so"), nil); p == 0 || !strings.Contains(buf.String(), "make ort") {
		t.Errorf("a missing library must count as a problem and name the fix; got %d:\n%s", p, buf.String())
	}
}

func TestPredictVisualizeAttention(t *testing.T) {
	model := runtimetest.WriteTiny(t)
	painting := testenv.Testdata(t, testenv.StarryNight)
	out := filepath.Join(t.TempDir(), "starry.png")
	if _, _, err := runApp(t, "predict", "--model", model, "--visualize-attention", out, painting); err != nil {
		t.Fatal(err)
	}
	checkPNG := func(p string, w, h int) {
		t.Helper()
		f, err := os.Open(p)
		if err != nil {
			t.Fatal(err)
		}
		defer f.Close()
		img, err := png.Decode(f)
		if err != nil {
			t.Fatalf("%s: %v", p, err)
		}
		if b := img.Bounds(); b.Dx() != w || b.Dy() != h {
			t.Errorf("%s: %v, want the painting's %dx%d", p, b, w, h)
		}
	}
	checkPNG(out, 752, 600)
	dir := filepath.Join(t.TempDir(), "maps")
	if _, _, err := runApp(t, "predict", "--model", model, "--visualize-attention", dir, painting, "../../testdata/images/quad.jpg"); err != nil {
		t.Fatal(err)
	}
	checkPNG(filepath.Join(dir, "van-gogh_the-starry-night.heatmap.png"), 752, 600)
	if _, err := os.Stat(filepath.Join(dir, "quad.heatmap.png")); err != nil {
		t.Error(err)
	}
}

// buildArtnet builds this command into bin as the test binary was built: with -tags=noblas
// when OpenBLAS is not in it (the Makefile's fallback where cblas.h is missing); extra go build
// flags (e.g. -ldflags) come before -o.
func buildArtnet(t *testing.T, bin string, extra ...string) {
	t.Helper()
	args := []string{"build"}
	if errors.Is(engine.DotGeneralKernelError(), engine.ErrNoBLAS) {
		args = append(args, "-tags=noblas")
	}
	args = append(append(args, extra...), "-o", bin, ".")
	if out, err := exec.Command("go", args...).CombinedOutput(); err != nil {
		t.Fatalf("go %s: %v\n%s", strings.Join(args, " "), err, out)
	}
}
