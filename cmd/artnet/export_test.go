package main

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/artnet/artnet/onnxrt"
)

// Export straight from PyTorch weights (no training run) gives a model ORT loads and validates,
// and the export errors are one line.
func TestExportFromWeightsAndErrors(t *testing.T) {
	out := filepath.Join(t.TempDir(), "m.onnx")
	if _, _, err := runApp(t, "export", "--model-config", "../../testdata/torchref/config.json",
		"--weights", "../../testdata/torchref/tiny.safetensors", "--onnx", out); err != nil {
		t.Fatalf("export: %v", err)
	}
	m, err := onnxrt.Open(out, onnxrt.Options{})
	if err != nil {
		t.Fatalf("exported model does not open: %v", err)
	}
	defer m.Close()
	if got := m.Config().Variant; got != "b0" {
		t.Errorf("variant %q, want b0 (from config.json)", got)
	}
	for _, tc := range []struct {
		args []string
		want string
	}{
		{[]string{"export", "--onnx", out}, "--checkpoint DIR or --weights"},
		{[]string{"export", "--checkpoint", "x"}, "--onnx FILE or --triton DIR"},
		{[]string{"export", "--checkpoint", "x", "--weights", "y", "--onnx", out}, "not both"},
		{[]string{"export", "--checkpoint", t.TempDir(), "--onnx", filepath.Join(t.TempDir(), "n.onnx")}, "no config.json"},
		{[]string{"export", "--weights", "../../testdata/images/bad-text.png", "--variant", "b0", "--onnx", filepath.Join(t.TempDir(), "n.onnx")}, "bad-text.png"},
		{[]string{"export", "--model-config", "../../testdata/torchref/config.json", "--weights", "../../testdata/torchref/tiny.safetensors",
			"--onnx", filepath.Join(t.TempDir(), "missing", "n.onnx")}, "missing/n.onnx"},
	} {
		_, _, err := runApp(t, tc.args...)
		if err == nil || !strings.Contains(err.Error(), tc.want) || strings.Contains(err.Error(), "\n") {
			t.Errorf("%v: want one-line error with %q, got %v", tc.args, tc.want, err)
		}
		if err != nil && strings.Contains(err.Error(), "export: export:") {
			t.Errorf("%v: the error says export twice: %v", tc.args, err)
		}
	}
	if _, err := os.Stat(filepath.Join(filepath.Dir(out), "n.onnx")); err == nil {
		t.Error("a failed export left a file behind")
	}
}

// export --checkpoint --image-size exports the trained weights at another test resolution: the
// model's input and its preprocessing metadata take the new size (the resize keeping the
// checkpoint's ratio) and the graph runs at that size.
func TestExportCheckpointImageSize(t *testing.T) {
	ckpt, _ := evalTinyModels(t) // 64 px, resize 72
	out := filepath.Join(t.TempDir(), "m96.onnx")
	if _, _, err := runApp(t, "export", "--checkpoint", ckpt, "--image-size", "96", "--onnx", out); err != nil {
		t.Fatalf("export: %v", err)
	}
	m, err := onnxrt.Open(out, onnxrt.Options{})
	if err != nil {
		t.Fatalf("exported model does not open: %v", err)
	}
	defer m.Close()
	if cfg := m.Config(); cfg.ImageSize != 96 || cfg.ResizeSize != 108 {
		t.Errorf("image %d resize %d, want 96 and 108 (72/64 × 96)", cfg.ImageSize, cfg.ResizeSize)
	}
	if _, err := m.Run(t.Context(), make([]float32, 3*96*96), 1); err != nil {
		t.Errorf("run at 96 px: %v", err)
	}
	_, _, err = runApp(t, "export", "--checkpoint", ckpt, "--image-size", "8", "--onnx", out)
	if err == nil || !strings.Contains(err.Error(), "--image-size") {
		t.Errorf("--image-size 8: want an error naming the flag, got %v", err)
	}
}
