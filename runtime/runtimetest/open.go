package runtimetest

import (
	"os"
	"path/filepath"
	"testing"

	"github.com/artnet/artnet/models/spec"
	artrt "github.com/artnet/artnet/runtime"
)

// Open loads m with ONNX Runtime as "tiny.onnx" and closes it when the test ends; an error
// opening or closing it fails the test.
func Open(tb testing.TB, m Model, o artrt.Options) *artrt.Model {
	tb.Helper()
	mod, err := artrt.OpenBytes("tiny.onnx", m.Bytes(), o)
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
