package train

import (
	"context"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/gomlx/gomlx/pkg/core/graph"
	"github.com/gomlx/gomlx/pkg/core/tensors"
	gomlxcontext "github.com/gomlx/gomlx/pkg/ml/context"

	"github.com/artnet/artnet/engine"
	"github.com/artnet/artnet/models"
	"github.com/artnet/artnet/models/spec"
	"github.com/artnet/artnet/safetensors"
)

// pthFixtures are PyTorch's own torch.save files (tools/torchref/gen_pth.py).
var pthFixtures = filepath.Join("..", "testdata", "torchref", "pth")

// backboneFeatures runs the backbone of the model variables in mctx (eval mode) on x.
func backboneFeatures(t *testing.T, mctx *gomlxcontext.Context, cfg spec.Config, x *safetensors.Tensor) []float32 {
	t.Helper()
	arch, err := models.Architecture(cfg)
	if err != nil {
		t.Fatal(err)
	}
	backend, err := engine.NewBackend(engine.GoBackendName)
	if err != nil {
		t.Fatal(err)
	}
	defer backend.Finalize()
	exec, err := gomlxcontext.NewExec(backend, mctx.Reuse(), func(ctx *gomlxcontext.Context, images *graph.Node) *graph.Node {
		return models.Backbone(ctx.In(models.ScopeBackbone).In(models.ScopeFeatures), arch, images)
	})
	if err != nil {
		t.Fatal(err)
	}
	out, err := exec.Exec(tensors.FromFlatDataAndDimensions(x.Data, x.Shape...))
	if err != nil {
		t.Fatal(err)
	}
	return tensors.MustCopyFlatData[float32](out[0])
}

// TestInitFromPyTorchPth: a torchvision-named .pth (torch.save of an EfficientNet state dict)
// as InitFrom gives the context training starts from: its first forward pass equals PyTorch's
// (≤ 1e-4, reference computed in float64 by the fixture generator); then Run trains from it.
func TestInitFromPyTorchPth(t *testing.T) {
	cfg := spec.Tiny()
	pth := filepath.Join(pthFixtures, "tv_tiny.pth")
	ref, err := safetensors.ReadFile(filepath.Join(pthFixtures, "tv_tiny_outputs.safetensors"))
	if err != nil {
		t.Fatal(err)
	}

	// The context exactly as Run builds it on a fresh start.
	mctx := gomlxcontext.New()
	mctx.SetParam(gomlxcontext.ParamInitialSeed, int64(5))
	rep, err := initFrom(mctx, cfg, Options{InitFrom: pth, Seed: 5})
	if err != nil {
		t.Fatal(err)
	}
	if rep == nil || rep.Scheme != models.SchemeTorchvision || rep.Loaded != 81 || strings.Join(rep.FreshParts, ",") != "proj,encoder,attention,heads" {
		t.Fatalf("import report %v: want torchvision names, 81 tensors loaded, proj/encoder/attention/heads fresh", rep)
	}
	got := backboneFeatures(t, mctx, cfg, ref.Tensors["input"])
	want := ref.Tensors["features"].Data
	if len(got) != len(want) {
		t.Fatalf("features: %d values, PyTorch %d", len(got), len(want))
	}
	d := 0.0
	for i := range got {
		d = max(d, float64(abs32(got[i]-want[i])))
	}
	if d > 1e-4 {
		t.Fatalf("first forward pass (backbone features) differs from PyTorch's by %g", d)
	}
	t.Logf("backbone features vs PyTorch (float64): max abs difference %.2g", d)

	// Run from it: a couple of steps with the backbone frozen; its convolution weights are the
	// file's, bit for bit, and the trainable parts moved.
	out := t.TempDir()
	o := Options{Config: cfg, OutDir: out, Steps: 2, Batch: 4, LR: 1e-2, Seed: 5, InitFrom: pth,
		Freeze: []string{"/backbone/features"}}
	res, err := Run(context.Background(), o, NewSynthetic(cfg, 8, 1), nil, testLogger(t))
	if err != nil {
		t.Fatal(err)
	}
	if res.Step != 2 || !finite(res.Loss) || res.Imported == nil || res.Imported.Loaded != 81 {
		t.Fatalf("result %+v", res)
	}
	trained, _, err := models.LoadCheckpoint(res.CheckpointDir)
	if err != nil {
		t.Fatal(err)
	}
	file, err := models.ReadWeights(pth)
	if err != nil {
		t.Fatal(err)
	}
	stem := file.Tensors["features.0.0.weight"].Data
	v := trained.GetVariableByScopeAndName("/backbone/features/0/0", "weight")
	if v == nil {
		t.Fatal("no stem conv in the checkpoint")
	}
	val, _ := v.Value()
	if g := tensors.MustCopyFlatData[float32](val); !slices.Equal(g, stem) {
		t.Error("the frozen stem conv of the trained checkpoint is not the .pth's")
	}
	fresh, _ := mctx.GetVariableByScopeAndName("/heads/style/3", "weight").Value()
	after, _ := trained.GetVariableByScopeAndName("/heads/style/3", "weight").Value()
	if slices.Equal(tensors.MustCopyFlatData[float32](fresh), tensors.MustCopyFlatData[float32](after)) {
		t.Error("the style head did not train")
	}
}

// TestInitFromWeightsErrors: a weights file that cannot start training stops Run with one line
// naming the file and the cause, before anything is written.
func TestInitFromWeightsErrors(t *testing.T) {
	cfg := spec.Tiny()
	for name, tc := range map[string]struct{ file, want string }{
		"not a state dict": {"not_state_dict.pth", "not a state dict"},
		"partial":          {"model_key.pth", "missing from the file (torchvision scheme; --allow-partial keeps it initialized)"},
		"wrong shape":      {"wrong_shape.pth", `tensor "features.0.0.weight" (backbone.features.0.0.weight) has shape [16 3 3 3], the model (variant b0 width 0.25 depth 0.25 stages 4) needs [8 3 3 3]`},
	} {
		p := filepath.Join(pthFixtures, tc.file)
		o := Options{Config: cfg, OutDir: t.TempDir(), Steps: 1, Batch: 2, LR: 1e-3, Seed: 1, InitFrom: p}
		_, err := Run(context.Background(), o, NewSynthetic(cfg, 4, 1), nil, nil)
		if err == nil || !strings.Contains(err.Error(), tc.want) || !strings.Contains(err.Error(), p) || strings.Contains(err.Error(), "\n") {
			t.Errorf("%s: got %v, want one line naming %s and %q", name, err, p, tc.want)
		}
	}
}

// TestInitFromAllowPartial: with AllowPartial a file holding only the stem starts training, the
// report listing what stayed initialized.
func TestInitFromAllowPartial(t *testing.T) {
	cfg := spec.Tiny()
	o := Options{Config: cfg, OutDir: t.TempDir(), Steps: 1, Batch: 2, LR: 1e-3, Seed: 1,
		InitFrom: filepath.Join(pthFixtures, "model_key.pth"), AllowPartial: true}
	res, err := Run(context.Background(), o, NewSynthetic(cfg, 4, 1), nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	if r := res.Imported; r == nil || r.Loaded != 3 || len(r.Warnings) == 0 || !strings.Contains(r.String(), "left at initialization (backbone, proj, encoder, attention, heads)") {
		t.Errorf("report %v (warnings %v): want 3 stem tensors loaded, the rest initialized and a warning", r, r.Warnings)
	}
}

func abs32(x float32) float32 {
	if x < 0 {
		return -x
	}
	return x
}

// TestStartFromConfig: train.pretrained and a phase's init_from in the YAML configuration, and
// which start each phase gets.
func TestStartFromConfig(t *testing.T) {
	p := filepath.Join(t.TempDir(), "t.yaml")
	yaml := `
model: {preset: tiny}
train: {pretrained: w.pth, allow_partial: true}
phases:
  - {name: "1", epochs: 1, batch: 2, lr: 1.0e-3}
  - {name: "2", epochs: 1, batch: 2, lr: 1.0e-3}
  - {name: "3", epochs: 1, batch: 2, lr: 1.0e-3, init_from: other/best}
`
	if err := os.WriteFile(p, []byte(yaml), 0o644); err != nil {
		t.Fatal(err)
	}
	fc, err := LoadFileConfig(p)
	if err != nil {
		t.Fatal(err)
	}
	if !fc.Train.AllowPartial {
		t.Error("train.allow_partial not read")
	}
	for _, tc := range []struct{ phase, previous, want string }{
		{"1", "", "w.pth"},                          // no earlier phase: the pretrained weights
		{"2", "out/phase1/best", "out/phase1/best"}, // continues the phase before it
		{"2", "", "w.pth"},                          // trained alone
		{"3", "out/phase2/best", "other/best"},      // its own init_from wins
	} {
		ph, _ := fc.Phase(tc.phase)
		if got := fc.StartFrom(ph, tc.previous); got != tc.want {
			t.Errorf("phase %s after %q: starts from %q, want %q", tc.phase, tc.previous, got, tc.want)
		}
	}
}
