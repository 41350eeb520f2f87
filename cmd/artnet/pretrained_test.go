package main

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/gomlx/gomlx/pkg/core/tensors"

	"github.com/artnet/artnet/models"
	"github.com/artnet/artnet/train"
)

// pthFixtures are PyTorch's own torch.save files (tools/torchref/gen_pth.py).
var pthFixtures = filepath.Join("..", "..", "testdata", "torchref", "pth")

// TestTrainPretrainedPth runs `artnet train --pretrained backbone.pth --config …` on a small
// WikiArt folder: phase 1 starts from the torchvision-named .pth (the report is printed; the
// frozen stem conv of its checkpoint is the file's, bit for bit), phase 2 continues from phase
// 1 rather than from the file, and the run trains and evaluates. The forward pass of the
// starting weights against PyTorch's is checked in train (TestInitFromPyTorchPth).
func TestTrainPretrainedPth(t *testing.T) {
	root := writeTrainWikiArt(t)
	dir := t.TempDir()
	cfgFile := filepath.Join(dir, "train.yaml")
	writeTrainFile(t, cfgFile, `
model: {preset: tiny, image_size: 32, resize_size: 36}
data: {root: /nonexistent, cache_size: 40}
train: {seed: 3}
phases:
  - {name: "1", epochs: 1, batch: 4, lr: 1.0e-3, freeze: [/backbone/features]}
  - {name: "2", epochs: 0.5, batch: 4, lr: 1.0e-4}
`)
	pth := filepath.Join(pthFixtures, "tv_tiny.pth")
	out := filepath.Join(dir, "out")
	stdout, _, err := runApp(t, "train", "--pretrained", pth, "--config", cfgFile, "--data", root, "--out", out, "--progress=false")
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(stdout, "phase 1 started from "+pth+": scheme torchvision, 81 variables") || strings.Contains(stdout, "phase 2 started from") {
		t.Errorf("stdout: want phase 1 (only) started from %s, got\n%s", pth, stdout)
	}
	if !strings.Contains(stdout, "| style |") {
		t.Errorf("stdout: no evaluation table:\n%s", stdout)
	}
	ck, _, err := models.LoadCheckpoint(filepath.Join(out, "phase1", train.BestDir))
	if err != nil {
		t.Fatal(err)
	}
	file, err := models.ReadWeights(pth)
	if err != nil {
		t.Fatal(err)
	}
	v, err := ck.GetVariableByScopeAndName("/backbone/features/0/0", "weight").Value()
	if err != nil {
		t.Fatal(err)
	}
	got, want := tensors.MustCopyFlatData[float32](v), file.Tensors["features.0.0.weight"].Data
	for i := range want {
		if got[i] != want[i] {
			t.Fatalf("phase 1 stem conv [%d] = %g, the .pth's %g", i, got[i], want[i])
		}
	}

	// The same flag, bad files: one line naming the file and the cause, nothing trained.
	whole, err := os.ReadFile(pth)
	if err != nil {
		t.Fatal(err)
	}
	truncated := filepath.Join(dir, "truncated.pth")
	if err := os.WriteFile(truncated, whole[:len(whole)*2/3], 0o644); err != nil {
		t.Fatal(err)
	}
	for name, tc := range map[string]struct{ file, want string }{
		"not a state dict": {filepath.Join(pthFixtures, "not_state_dict.pth"), "not a state dict: the file holds a pickled torch.nn.modules.container.Sequential object"},
		"truncated zip":    {truncated, "not a readable zip archive (truncated or damaged?)"},
		"wrong shape":      {filepath.Join(pthFixtures, "wrong_shape.pth"), `tensor "features.0.0.weight" (backbone.features.0.0.weight) has shape [16 3 3 3]`},
		"missing":          {filepath.Join(dir, "nope.pth"), "no such file"},
	} {
		_, _, err := runApp(t, "train", "--pretrained", tc.file, "--config", cfgFile, "--data", root, "--out", filepath.Join(dir, strings.ReplaceAll(name, " ", "-")), "--progress=false")
		if err == nil || !strings.Contains(err.Error(), tc.want) || !strings.Contains(err.Error(), tc.file) || strings.Contains(err.Error(), "\n") {
			t.Errorf("%s: got %v, want one line naming %s and %q", name, err, tc.file, tc.want)
		}
	}
}

// TestImportPth: `artnet import` takes a .pth (detected by content: the same file renamed to
// .safetensors imports too) with the same report as safetensors.
func TestImportPth(t *testing.T) {
	dir := t.TempDir()
	whole, err := os.ReadFile(filepath.Join(pthFixtures, "tv_tiny.pth"))
	if err != nil {
		t.Fatal(err)
	}
	renamed := filepath.Join(dir, "weights.safetensors")
	if err := os.WriteFile(renamed, whole, 0o644); err != nil {
		t.Fatal(err)
	}
	cfgJSON := filepath.Join("..", "..", "testdata", "torchref", "config.json")
	for _, w := range []string{filepath.Join(pthFixtures, "tv_tiny.pth"), renamed, filepath.Join(pthFixtures, "tv_tiny_f16_wrapped.pth")} {
		out := filepath.Join(dir, filepath.Base(w)+".ckpt")
		stdout, _, err := runApp(t, "import", "--weights", w, "--model-config", cfgJSON, "--out", out)
		if err != nil {
			t.Fatalf("%s: %v", w, err)
		}
		if !strings.Contains(stdout, "(torchvision names): 81 tensors") || !strings.Contains(stdout, "13 num_batches_tracked counters, 2 ImageNet classifier tensors") {
			t.Errorf("%s: stdout\n%s", w, stdout)
		}
		if _, _, err := models.LoadCheckpoint(out); err != nil {
			t.Errorf("%s: %v", w, err)
		}
	}
	_, _, err = runApp(t, "import", "--weights", filepath.Join(pthFixtures, "list.pth"), "--model-config", cfgJSON, "--out", filepath.Join(dir, "x"))
	if err == nil || !strings.Contains(err.Error(), "not a state dict: the file holds a list of 2") {
		t.Errorf("list.pth: got %v", err)
	}
}
