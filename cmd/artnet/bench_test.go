package main

import (
	"bytes"
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/urfave/cli/v2"

	"github.com/artnet/artnet/benchmark"
	"github.com/artnet/artnet/models/spec"
	"github.com/artnet/artnet/onnxrt/runtimetest"
)

func runBenchCmd(t *testing.T, args ...string) (string, error) {
	t.Helper()
	var out bytes.Buffer
	app := &cli.App{Name: "artnet", Commands: []*cli.Command{benchCommand(), exportCommand()},
		Writer: &out, ErrWriter: &out, ExitErrHandler: func(*cli.Context, error) {}}
	if len(args) > 0 && args[0] == "export" {
		return out.String(), app.RunContext(context.Background(), append([]string{"artnet"}, args...))
	}
	err := app.RunContext(context.Background(), append([]string{"artnet", "bench"}, args...))
	return out.String(), err
}

// benchTinyConfig writes a very small DeepArtNet config (one stage, 32 px) and returns its path.
func benchTinyConfig(t *testing.T) string {
	c := spec.Tiny()
	c.Stages, c.ImageSize, c.ResizeSize = 1, 32, 36
	p := filepath.Join(t.TempDir(), "model.json")
	if err := os.WriteFile(p, c.JSON(), 0o644); err != nil {
		t.Fatal(err)
	}
	return p
}

func TestBenchTrainAndInfer(t *testing.T) {
	cfg := benchTinyConfig(t)
	prof := filepath.Join(t.TempDir(), "train.prof")
	ckpt := filepath.Join(t.TempDir(), "ckpt")
	out, err := runBenchCmd(t, "train", "--model-config", cfg, "--batch", "2", "--steps", "2", "--warmup", "0", "--cpuprofile", prof, "--json", "--out", ckpt)
	if err != nil {
		t.Fatal(err)
	}
	var r benchmark.Report
	if err := json.Unmarshal([]byte(out), &r); err != nil {
		t.Fatalf("--json output: %v\n%s", err, out)
	}
	if r.Mode != "train" || r.Batch != 2 || r.ImageSize != 32 || len(r.StepSeconds) != 2 || r.Median <= 0 || r.ImagesPerSec <= 0 ||
		r.MACsPerStep != 3*2*r.ForwardMACsPerImage || r.MACsPerSec <= 0 || r.Loss <= 0 || len(r.StepCPUSeconds) != 2 || r.MedianCPU <= 0 {
		t.Errorf("train report: %+v", r)
	}
	if st, err := os.Stat(prof); err != nil || st.Size() == 0 {
		t.Errorf("--cpuprofile: %v", err)
	}
	out, err = runBenchCmd(t, "ops", prof)
	if err != nil || !strings.Contains(out, "op type") {
		t.Errorf("bench ops: %v\n%s", err, out)
	}

	// The kept checkpoint, exported, runs in ONNX Runtime with the outputs of its GoMLX forward pass.
	onnx := filepath.Join(t.TempDir(), "m.onnx")
	if _, err := runBenchCmd(t, "export", "--checkpoint", ckpt, "--onnx", onnx); err != nil {
		t.Fatal(err)
	}
	out, err = runBenchCmd(t, "infer", "--onnx", onnx, "--batch", "2", "--steps", "1", "--reference-checkpoint", ckpt, "--tolerance", "1e-4")
	if err != nil || !strings.Contains(out, "outputs vs GoMLX go checkpoint: max abs diff") {
		t.Errorf("infer --onnx --reference-checkpoint: %v\n%s", err, out)
	}

	out, err = runBenchCmd(t, "infer", "--model-config", cfg, "--batch", "3", "--steps", "2", "--ops")
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"inference (forward), gomlx go", "at 32 px, batch 3", "images/s:", "G MAC/s", "load average", "op type"} {
		if !strings.Contains(out, want) {
			t.Errorf("bench infer output lacks %q:\n%s", want, out)
		}
	}
}

func TestBenchInferONNXReference(t *testing.T) {
	p := filepath.Join(t.TempDir(), "tiny.onnx")
	if err := os.WriteFile(p, runtimetest.TinyModel(spec.Tiny()), 0o644); err != nil {
		t.Fatal(err)
	}
	out, err := runBenchCmd(t, "infer", "--onnx", p, "--batch", "2", "--steps", "2", "--threads", "1", "--reference-provider", "cpu", "--tolerance", "1e-6")
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"inference (forward), onnx cpu", "outputs vs cpu: max abs diff 0"} {
		if !strings.Contains(out, want) {
			t.Errorf("output lacks %q:\n%s", want, out)
		}
	}
}

func TestBenchErrors(t *testing.T) {
	cfg := benchTinyConfig(t)
	for _, tc := range []struct {
		args []string
		want string
	}{
		{[]string{"train", "--variant", "b9"}, `"b9"`},
		{[]string{"train", "--model-config", filepath.Join(t.TempDir(), "missing.json")}, "missing.json"},
		{[]string{"train", "--model-config", cfg, "--steps", "0"}, "steps must be ≥ 1"},
		{[]string{"infer", "--model-config", cfg, "--reference-provider", "cpu"}, "need --onnx"},
		{[]string{"infer", "--onnx", "a.onnx", "--checkpoint", "b"}, "give one"},
		{[]string{"ops"}, "want one profile file"},
		{[]string{"ops", cfg}, "model.json"},
	} {
		if _, err := runBenchCmd(t, tc.args...); err == nil || !strings.Contains(err.Error(), tc.want) || strings.Contains(err.Error(), "\n") {
			t.Errorf("%v: error %v, want one line containing %q", tc.args, err, tc.want)
		}
	}
}

func TestBenchCompare(t *testing.T) {
	cfg := benchTinyConfig(t)
	out, err := runBenchCmd(t, "compare", "--model-config", cfg, "--batch", "2")
	if err != nil || !strings.Contains(out, "go vs go:reference") || !strings.Contains(out, "gradients of") {
		t.Fatalf("compare go vs go:reference: %v\n%s", err, out)
	}
	if _, err := runBenchCmd(t, "compare", "--model-config", cfg, "--batch", "2", "--reference-backend", "go"); err != nil {
		t.Errorf("go vs go with tolerance 1e-4: %v", err)
	}
	// Tolerance 0 passes only bit-identical results; otherwise the error names the tolerance.
	out, err = runBenchCmd(t, "compare", "--model-config", cfg, "--batch", "2", "--tolerance", "0")
	if err == nil && !(strings.Contains(out, "(rel diff 0)") && strings.Contains(out, "largest normwise rel diff 0 ")) {
		t.Errorf("tolerance 0 passed with differences:\n%s", out)
	}
	if err != nil && (!strings.Contains(err.Error(), "--tolerance 0") || strings.Contains(err.Error(), "\n")) {
		t.Errorf("tolerance 0: %v", err)
	}
}
