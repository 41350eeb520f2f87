package models

import (
	"path/filepath"
	"testing"

	"github.com/gomlx/gomlx/pkg/core/dtypes"
	"github.com/gomlx/gomlx/pkg/core/graph"
	"github.com/gomlx/gomlx/pkg/core/shapes"
	"github.com/gomlx/gomlx/pkg/core/tensors"
	"github.com/gomlx/gomlx/pkg/ml/context"

	"github.com/artnet/artnet/models/spec"
	"github.com/artnet/artnet/safetensors"
)

// torchref holds the PyTorch reference fixtures (see its README): a spec.Tiny() DeepArtNet state
// dict with torchvision 0.14's backbone, and its eval-mode outputs computed in float64.
var torchref = filepath.Join("..", "testdata", "torchref")

// TestPyTorchParity loads the PyTorch state dict into a context by name (TorchName ↔
// ScopeAndName, no renaming table) and checks that Build reproduces PyTorch's outputs.
func TestPyTorchParity(t *testing.T) {
	cfg := spec.Tiny()
	weights, err := safetensors.ReadFile(filepath.Join(torchref, "tiny.safetensors"))
	if err != nil {
		t.Fatal(err)
	}
	ref, err := safetensors.ReadFile(filepath.Join(torchref, "tiny_outputs.safetensors"))
	if err != nil {
		t.Fatal(err)
	}

	// The model's variables, by PyTorch name.
	want := map[string]shapes.Shape{}
	{
		ctx := context.New()
		g := graph.NewGraph(backend(t), "names")
		Build(ctx, cfg, graph.Parameter(g, "x", shapes.Make(dtypes.Float32, 1, 3, 64, 64)))
		for v := range ctx.IterVariables() {
			if partOf(v.Scope()) != "" {
				want[TorchName(v.Scope(), v.Name())] = v.Shape()
			}
		}
	}
	for _, mode := range []string{DepthwiseShifted, DepthwiseConv} {
		t.Run(mode, func(t *testing.T) {
			ctx := context.New()
			ctx.SetParam(ParamDepthwise, mode)
			loaded := 0
			for _, name := range weights.Order {
				w := weights.Tensors[name]
				if w.Data == nil { // num_batches_tracked (I64)
					continue
				}
				s, ok := want[name]
				if !ok {
					t.Errorf("PyTorch tensor %s has no model variable", name)
					continue
				}
				if !s.Equal(shapes.Make(dtypes.Float32, w.Shape...)) {
					t.Errorf("%s: PyTorch shape %v, model %s", name, w.Shape, s)
					continue
				}
				scope, vname := ScopeAndName(name)
				ctx.InAbsPath(scope).VariableWithValue(vname, tensors.FromFlatDataAndDimensions(w.Data, w.Shape...))
				loaded++
			}
			if loaded != len(want) {
				t.Fatalf("loaded %d of the model's %d variables", loaded, len(want))
			}
			in := ref.Tensors["input"]
			images := tensors.FromFlatDataAndDimensions(in.Data, in.Shape...)
			names := []string{"style", "genre", "artist", "attention", "style_logits", "genre_logits", "artist_logits"}
			exec, err := context.NewExec(backend(t), ctx.Reuse(), func(ctx *context.Context, x *graph.Node) []*graph.Node {
				o := Build(ctx, cfg, x)
				return []*graph.Node{o.Probs["style"], o.Probs["genre"], o.Probs["artist"], o.Attention,
					o.Logits["style"], o.Logits["genre"], o.Logits["artist"]}
			})
			if err != nil {
				t.Fatal(err)
			}
			outs, err := exec.Exec(images)
			if err != nil {
				t.Fatal(err)
			}
			for i, name := range names {
				r := ref.Tensors[name]
				got := tensors.MustCopyFlatData[float32](outs[i])
				if len(got) != len(r.Data) {
					t.Fatalf("%s: %d values, PyTorch %d", name, len(got), len(r.Data))
				}
				d := maxDiff(got, r.Data)
				if d > 1e-4 {
					t.Errorf("%s differs from PyTorch by %g", name, d)
				} else {
					t.Logf("%s: max abs difference to PyTorch (float64) %.2g", name, d)
				}
			}
		})
	}
}
