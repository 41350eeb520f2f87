package main

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/urfave/cli/v2"

	"github.com/artnet/artnet/defaultmodel"
	"github.com/artnet/artnet/internal/testenv"
	"github.com/artnet/artnet/models/spec"
)

// TestQuantizeCommand quantizes the built-in model on the repository's WikiArt sample: the file
// is an artnet model with the quantization metadata, and evaluate loads it.
func TestQuantizeCommand(t *testing.T) {
	dir := t.TempDir()
	in := filepath.Join(dir, "fp32.onnx")
	if err := os.WriteFile(in, defaultmodel.Bytes(), 0o644); err != nil {
		t.Fatal(err)
	}
	out := filepath.Join(dir, "int8.onnx")
	cmds := []*cli.Command{quantizeCommand(), evaluateCommand()}
	if msg, err := runCmds(t, cmds, "quantize", "--model", in, "--calibrate", testenv.Sample(t), "--images", "8", "--out", out); err != nil {
		t.Fatalf("quantize: %v\n%s", err, msg)
	}
	data, err := os.ReadFile(out)
	if err != nil {
		t.Fatal(err)
	}
	mi, err := spec.Inspect(data)
	if err != nil {
		t.Fatal(err)
	}
	if q := mi.Metadata[spec.MetaQuantization]; !strings.Contains(q, `"calibration_images":8`) {
		t.Errorf("metadata %s = %s, want 8 calibration images", spec.MetaQuantization, q)
	}
	if msg, err := runCmds(t, cmds, "evaluate", "--model", out, "--data", testenv.Sample(t), "--out", filepath.Join(dir, "eval")); err != nil {
		t.Fatalf("evaluate of the quantized model: %v\n%s", err, msg)
	}
}

func TestQuantizeCommandErrors(t *testing.T) {
	dir := t.TempDir()
	in := filepath.Join(dir, "fp32.onnx")
	if err := os.WriteFile(in, defaultmodel.Bytes(), 0o644); err != nil {
		t.Fatal(err)
	}
	notONNX := filepath.Join(dir, "x.onnx")
	if err := os.WriteFile(notONNX, []byte("hello"), 0o644); err != nil {
		t.Fatal(err)
	}
	out := filepath.Join(dir, "int8.onnx")
	sample := testenv.Sample(t)
	for _, c := range []struct {
		args []string
		want string
	}{
		{[]string{"--calibrate", sample, "--out", out}, "--model"},
		{[]string{"--model", in, "--out", out}, "--calibrate"},
		{[]string{"--model", in, "--calibrate", sample}, "--out"},
		{[]string{"--model", in, "--calibrate", sample, "--out", out, "--images", "-1"}, "--images"},
		{[]string{"--model", notONNX, "--calibrate", sample, "--out", out}, "not an ONNX model"},
		{[]string{"--model", in, "--calibrate", t.TempDir(), "--out", out}, "no images"},
		{[]string{"--model", in, "--calibrate", sample, "--out", out, "--method", "entropy"}, `"entropy"`},
		{[]string{"--model", in, "--calibrate", sample, "--out", out, "--ops", "Conv,LSTM"}, `"LSTM"`},
	} {
		_, err := runCmds(t, []*cli.Command{quantizeCommand()}, append([]string{"quantize"}, c.args...)...)
		if err == nil || !strings.Contains(err.Error(), c.want) || strings.Contains(err.Error(), "\n") {
			t.Errorf("%v: error %v, want one line naming %s", c.args, err, c.want)
		}
	}
	if _, err := os.Stat(out); !os.IsNotExist(err) {
		t.Errorf("a failed run left %s (%v)", out, err)
	}
}
