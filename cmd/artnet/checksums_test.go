package main

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/artnet/artnet/models"
	"github.com/artnet/artnet/train"
)

// handEdit changes config.json of checkpoint dir as a user would by hand: the first class name
// and the first channel of the mean (0.485). The file still parses and validates.
func handEdit(t *testing.T, dir, className string) {
	t.Helper()
	p := filepath.Join(dir, models.ConfigFile)
	b, err := os.ReadFile(p)
	if err != nil {
		t.Fatal(err)
	}
	s := string(b)
	if !strings.Contains(s, `"`+className+`"`) || !strings.Contains(s, "0.485") {
		t.Fatalf("%s: no %q or mean 0.485 to edit", p, className)
	}
	s = strings.Replace(s, `"`+className+`"`, `"Edited_Name"`, 1)
	s = strings.Replace(s, "0.485", "0.5", 1)
	if err := os.WriteFile(p, []byte(s), 0o644); err != nil {
		t.Fatal(err)
	}
}

// TestHandEditedCheckpointConfig: a checkpoint whose config.json was edited by hand (a class
// name and the mean) is refused by export, predict --runtime gomlx and evaluate --checkpoint
// with one line naming the file; nothing is exported.
func TestHandEditedCheckpointConfig(t *testing.T) {
	ckpt, _ := evalTinyModels(t)
	if _, _, err := runApp(t, "export", "--checkpoint", ckpt, "--onnx", filepath.Join(t.TempDir(), "ok.onnx")); err != nil {
		t.Fatalf("export of the unedited checkpoint: %v", err)
	}
	handEdit(t, ckpt, "style_0")
	data, _ := writeSynthWikiArt(t, func(string) [3]int { return [3]int{} })
	onnx := filepath.Join(t.TempDir(), "edited.onnx")
	for name, args := range map[string][]string{
		"export":   {"export", "--checkpoint", ckpt, "--onnx", onnx},
		"predict":  {"predict", "--runtime", "gomlx", "--checkpoint", ckpt, "../../testdata/images/quad.jpg"},
		"evaluate": {"evaluate", "--checkpoint", ckpt, "--data", data, "--out", t.TempDir()},
	} {
		_, _, err := runApp(t, args...)
		want := "checkpoint " + ckpt + ": " + models.ConfigFile + ": "
		if err == nil || !strings.Contains(err.Error(), want) || !strings.Contains(err.Error(), "edited or damaged") || strings.Contains(err.Error(), "\n") {
			t.Errorf("%s: got %v, want one line with %q and \"edited or damaged\"", name, err, want)
		}
	}
	if _, err := os.Stat(onnx); !os.IsNotExist(err) {
		t.Errorf("export wrote %s from the edited checkpoint (%v)", onnx, err)
	}
}

// TestResumeFallsBackFromHandEditedConfig: --resume skips the newest checkpoint whose
// config.json was edited, continues from the one before, and trains past it again (the edited
// checkpoint is replaced by a good one with the original class names).
func TestResumeFallsBackFromHandEditedConfig(t *testing.T) {
	out := t.TempDir()
	args := []string{"train", "--synthetic", "--out", out, "--steps", "4", "--checkpoint-every", "2", "--batch", "4",
		"--train-size", "16", "--val-size", "4", "--samples", "0", "--warmup", "1"}
	if _, _, err := runApp(t, args...); err != nil {
		t.Fatal(err)
	}
	newest := filepath.Join(out, train.CheckpointName(4))
	handEdit(t, newest, "palette_0")
	if _, _, err := models.LoadCheckpoint(newest); err == nil || !strings.Contains(err.Error(), models.ConfigFile) {
		t.Fatalf("the edited checkpoint loads: %v", err)
	}
	args[5] = "6" // --steps
	stdout, _, err := runApp(t, append(args, "--resume")...)
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(stdout, "trained to step 6") {
		t.Errorf("stdout: %s", stdout)
	}
	_, cfg, err := models.LoadCheckpoint(newest)
	if err != nil {
		t.Fatalf("step 4 was not retrained from step 2: %v", err)
	}
	if cfg.Classes["style"][0] != "palette_0" || cfg.Mean[0] != 0.485 {
		t.Errorf("step-4 checkpoint after the resume: class %q, mean %v; want the original palette_0, 0.485", cfg.Classes["style"][0], cfg.Mean)
	}
}
