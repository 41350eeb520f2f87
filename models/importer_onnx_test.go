package models_test

// An external test package: export imports models, so the ONNX half of the import parity
// cannot live in package models.

import (
	"context"
	"math"
	"os"
	"path/filepath"
	"testing"

	"google.golang.org/protobuf/proto"

	"github.com/artnet/artnet/export"
	"github.com/artnet/artnet/models"
	"github.com/artnet/artnet/models/spec"
	"github.com/artnet/artnet/onnxrt"
	"github.com/artnet/artnet/safetensors"
)

// TestImportedModelInONNXRuntime imports the PyTorch state dict, exports it to ONNX and runs it
// in ONNX Runtime: the outputs must be PyTorch's.
func TestImportedModelInONNXRuntime(t *testing.T) {
	dir := filepath.Join("..", "testdata", "torchref")
	b, err := os.ReadFile(filepath.Join(dir, "config.json"))
	if err != nil {
		t.Fatal(err)
	}
	cfg, err := spec.ParseJSON(b)
	if err != nil {
		t.Fatal(err)
	}
	ctx, _, err := models.ImportWeights(filepath.Join(dir, "tiny.safetensors"), cfg, models.ImportOptions{})
	if err != nil {
		t.Fatal(err)
	}
	m, err := export.Model(ctx, cfg)
	if err != nil {
		t.Fatal(err)
	}
	onnx, err := proto.Marshal(m)
	if err != nil {
		t.Fatal(err)
	}
	rt, err := onnxrt.OpenBytes("imported-tiny.onnx", onnx, onnxrt.Options{})
	if err != nil {
		t.Fatalf("%v (ONNX Runtime: run scripts/setup-ort.sh)", err)
	}
	defer func() {
		if err := rt.Close(); err != nil {
			t.Error(err)
		}
	}()
	ref, err := safetensors.ReadFile(filepath.Join(dir, "tiny_outputs.safetensors"))
	if err != nil {
		t.Fatal(err)
	}
	in := ref.Tensors["input"]
	res, err := rt.Run(context.Background(), in.Data, in.Shape[0])
	if err != nil {
		t.Fatal(err)
	}
	for _, name := range []string{"style", "genre", "artist", "attention"} {
		got := res.Probs[name]
		if name == "attention" {
			got = res.Attention
		}
		want := ref.Tensors[name].Data
		if len(got) != len(want) {
			t.Fatalf("%s: %d values, PyTorch %d", name, len(got), len(want))
		}
		d := 0.0
		for i := range got {
			d = math.Max(d, math.Abs(float64(got[i])-float64(want[i])))
		}
		if d > 1e-4 {
			t.Errorf("%s: ONNX Runtime differs from PyTorch by %g", name, d)
		} else {
			t.Logf("%s: max abs diff ONNX Runtime vs PyTorch %.2g", name, d)
		}
	}
}
