package runtimetest

import (
	"context"
	"os"
	"path/filepath"
	"testing"

	"github.com/artnet/artnet/models/spec"
	"github.com/artnet/artnet/onnxrt"
	"github.com/artnet/artnet/predict"
)

// Open loads m with ONNX Runtime as "tiny.onnx" and closes it when the test ends; an error
// opening or closing it fails the test.
func Open(tb testing.TB, m Model, o onnxrt.Options) *onnxrt.Model {
	tb.Helper()
	mod, err := onnxrt.OpenBytes("tiny.onnx", m.Bytes(), o)
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() {
		if err := mod.Close(); err != nil {
			tb.Error(err)
		}
	})
	return mod
}

// WriteTiny writes TinyModel(spec.Tiny()) to tiny.onnx in a new temporary folder of the test
// and returns its path.
func WriteTiny(tb testing.TB) string {
	tb.Helper()
	p := filepath.Join(tb.TempDir(), "tiny.onnx")
	if err := os.WriteFile(p, TinyModel(spec.Tiny()), 0o644); err != nil {
		tb.Fatal(err)
	}
	return p
}

// Expected is the prediction for one preprocessed image x computed step by step — p's run, the
// result checked, then postprocessed (predict.Pipeline) — what the Go API, the CLI and the
// server must answer for the same image; any error fails the test.
func Expected(tb testing.TB, p predict.Predictor, x []float32, name string, k int, withAttention bool) *predict.Prediction {
	tb.Helper()
	pl, err := predict.NewPipeline(p)
	if err != nil {
		tb.Fatal(err)
	}
	res, err := pl.Run(context.Background(), x, 1)
	if err != nil {
		tb.Fatal(err)
	}
	pr, err := pl.Postprocess(res, 0, name, k, withAttention)
	if err != nil {
		tb.Fatal(err)
	}
	return pr
}
