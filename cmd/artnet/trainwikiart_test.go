package main

import (
	"encoding/json"
	"fmt"
	"image"
	"image/color"
	"image/jpeg"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"syscall"
	"testing"

	"github.com/gomlx/gomlx/pkg/core/tensors"

	"github.com/artnet/artnet/internal/testenv"
	"github.com/artnet/artnet/models"
	"github.com/artnet/artnet/train"
	"github.com/artnet/artnet/wikiart"
)

// writeTrainWikiArt writes a small WikiArt folder: the class lists, 8 training and 4 validation
// images (224×224 JPEG, coloured by style), style labels for all, genre for some, artist none,
// and one CSV row without an image.
func writeTrainWikiArt(t *testing.T) string {
	t.Helper()
	root := t.TempDir()
	for task, n := range map[string]int{"style": 27, "genre": 10, "artist": 23} {
		var b strings.Builder
		for i := range n {
			fmt.Fprintf(&b, "%d %s_%d\n", i, task, i)
		}
		writeTrainFile(t, filepath.Join(root, task+"_class.txt"), b.String())
	}
	rows := map[string]*strings.Builder{}
	for _, f := range []string{"style_train", "style_val", "genre_train", "genre_val"} {
		rows[f] = &strings.Builder{}
	}
	for i := range 12 {
		split, style := "train", i%3
		if i >= 8 {
			split = "val"
		}
		p := fmt.Sprintf("style_%d/painter_work-%d.jpg", style, i)
		img := image.NewRGBA(image.Rect(0, 0, 224, 224))
		for y := range 224 {
			for x := range 224 {
				img.Set(x, y, color.RGBA{uint8(90 * style), uint8(x + i), uint8(y), 255})
			}
		}
		file := filepath.Join(root, "images", filepath.FromSlash(p))
		if err := os.MkdirAll(filepath.Dir(file), 0o755); err != nil {
			t.Fatal(err)
		}
		f, err := os.Create(file)
		if err != nil {
			t.Fatal(err)
		}
		if err := jpeg.Encode(f, img, nil); err != nil {
			t.Fatal(err)
		}
		f.Close()
		fmt.Fprintf(rows["style_"+split], "%s,%d\r\n", p, style)
		if i%2 == 0 {
			fmt.Fprintf(rows["genre_"+split], "%s,%d\r\n", p, i%4)
		}
	}
	fmt.Fprintf(rows["style_train"], "style_1/not-on-disk.jpg,1\r\n")
	for f, b := range rows {
		writeTrainFile(t, filepath.Join(root, f+".csv"), b.String())
	}
	for _, split := range []string{"train", "val"} {
		writeTrainFile(t, filepath.Join(root, "artist_"+split+".csv"), "(Path to image),, (Groundtruth class)\n\n")
	}
	return root
}

// fileMode is fi's mode bits, or err, for a test message.
func fileMode(fi os.FileInfo, err error) any {
	if err != nil {
		return err
	}
	return fmt.Sprintf("mode %o", fi.Mode().Perm())
}

func writeTrainFile(t *testing.T, path, s string) {
	t.Helper()
	if err := os.WriteFile(path, []byte(s), 0o644); err != nil {
		t.Fatal(err)
	}
}

// TestTrainWikiArtPhases runs `artnet train --config` end to end on a small WikiArt folder:
// three phases, each with its done.json and best checkpoint, results.json and the markdown
// table; a --resume of the finished run skips the phases; a second run without --resume, an
// unknown --phase and --strict with a missing image are refused with one-line errors.
func TestTrainWikiArtPhases(t *testing.T) {
	defer syscall.Umask(syscall.Umask(0o022))
	root := writeTrainWikiArt(t)
	dir := t.TempDir()
	cfgFile := filepath.Join(dir, "train.yaml")
	writeTrainFile(t, cfgFile, `
model: {preset: tiny, image_size: 32, resize_size: 36, stages: 2, lstm_layers: 1}
data: {root: /nonexistent, cache_mem: 8MiB, jitter: 0.1, balanced: [style]}
train: {seed: 3, weight_decay: 0.01, warmup_epochs: 0.5, clip_norm: 5}
phases:
  - {name: "1", epochs: 1, batch: 4, lr: 1.0e-3, freeze: [/encoder, /attention]}
  - {name: "2", epochs: 1, batch: 4, lr: 5.0e-4, freeze: [/backbone/features/0]}
  - {name: "3", epochs: 0.5, batch: 4, lr: 1.0e-5}
`)
	out := filepath.Join(dir, "out")
	args := []string{"train", "--config", cfgFile, "--data", root, "--out", out, "--progress=false"}
	stdout, _, err := runApp(t, args...)
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(stdout, "| style |") || !strings.Contains(stdout, "| genre |") || strings.Contains(stdout, "| artist |") {
		t.Errorf("stdout: want a table with style and genre rows (no artist labels), got\n%s", stdout)
	}
	for _, ph := range []string{"1", "2", "3"} {
		pd := filepath.Join(out, "phase"+ph)
		if _, err := os.Stat(filepath.Join(pd, train.DoneFile)); err != nil {
			t.Errorf("phase %s: %v", ph, err)
		}
		if _, _, err := models.LoadCheckpoint(filepath.Join(pd, train.BestDir)); err != nil {
			t.Errorf("phase %s: best checkpoint: %v", ph, err)
		}
	}
	// Its files get 0644 (umask 022), not a temporary file's 0600.
	for _, f := range []string{train.ResultsFile, train.RunConfigFile, train.PhaseFile, filepath.Join("phase1", train.DoneFile), filepath.Join("phase1", train.OptionsFile)} {
		if fi, err := os.Stat(filepath.Join(out, f)); err != nil || fi.Mode().Perm() != 0o644 {
			t.Errorf("%s: %v, want mode 644", f, fileMode(fi, err))
		}
	}
	var res train.PhasesResult
	b, err := os.ReadFile(filepath.Join(out, train.ResultsFile))
	if err != nil {
		t.Fatal(err)
	}
	if err := json.Unmarshal(b, &res); err != nil {
		t.Fatal(err)
	}
	if st := res.Tasks["style"]; st.Images != 4 || st.ClassesPresent != 3 || st.Classes != 27 || st.Top5 < st.Top1 {
		t.Errorf("results.json style: %+v, want 4 images, 3 classes present of 27, top5 ≥ top1", st)
	}
	if res.TrainImages != 8 || res.ValImages != 4 || !strings.Contains(res.Checkpoint, "phase3") {
		t.Errorf("results.json: %d train / %d val images from %s", res.TrainImages, res.ValImages, res.Checkpoint)
	}

	// Resume of a finished run: phases skipped, evaluation again.
	if _, _, err := runApp(t, append(args, "--resume")...); err != nil {
		t.Fatalf("resume of a finished run: %v", err)
	}
	for name, tc := range map[string]struct {
		args []string
		want string
	}{
		"no resume":     {args, "--resume"},
		"unknown phase": {append(args[:len(args):len(args)], "--phase", "9", "--out", t.TempDir()), `no phase "9"`},
		"strict":        {append(args[:len(args):len(args)], "--strict", "--out", t.TempDir()), "not-on-disk.jpg"},
	} {
		_, _, err := runApp(t, tc.args...)
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%s: got %v, want an error mentioning %q", name, err, tc.want)
		}
	}
}

// TestTrainSeedSinglePhaseCommands runs the seed's two single-phase commands on the labelled
// WikiArt sample (testdata/wikiart):
//
//	artnet train --phase 1 --epochs 1 --lr 1e-3 --config … --data … --out OUT
//	artnet train --phase 2 --epochs 1 --lr 5e-4 --resume OUT/phase1/best
//
// The second names no config, data or output folder: it takes them, and the options it does
// not override (batch, seed, freeze list of phase 2, data transform), from the first run's
// run.json, writes OUT/phase2 started from phase 1's best checkpoint, and records the options
// it trained with in OUT/phase2/options.json.
func TestTrainSeedSinglePhaseCommands(t *testing.T) {
	dir := t.TempDir()
	cfgFile := filepath.Join(dir, "seed.yaml")
	writeTrainFile(t, cfgFile, `
model: {preset: tiny, image_size: 32, resize_size: 36, stages: 2, lstm_layers: 1}
data: {root: /nonexistent, min_scale: 0.3, jitter: 0.15, balanced: [style]}
train: {seed: 7, weight_decay: 0.01, warmup_epochs: 0.5, clip_norm: 5}
phases:
  - {name: "1", epochs: 20, batch: 4, lr: 1.0e-2, freeze: [/encoder, /attention]}
  - {name: "2", epochs: 30, batch: 4, lr: 1.0e-2, freeze: [/backbone/features/0]}
`)
	out := filepath.Join(dir, "out")
	if _, _, err := runApp(t, "train", "--phase", "1", "--epochs", "1", "--lr", "1e-3", "--config", cfgFile,
		"--data", testenv.Sample(t), "--out", out, "--progress=false"); err != nil {
		t.Fatal(err)
	}
	stdout, _, err := runApp(t, "train", "--phase", "2", "--epochs", "1", "--lr", "5e-4", "--progress=false",
		"--resume", filepath.Join(out, "phase1", train.BestDir))
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(stdout, filepath.Join(out, "phase2", train.BestDir)) || !strings.Contains(stdout, "| style |") {
		t.Errorf("stdout: want the evaluation of phase 2's best checkpoint, got\n%s", stdout)
	}
	p1, err := train.ReadPhaseOptions(filepath.Join(out, "phase1"))
	if err != nil {
		t.Fatal(err)
	}
	p2, err := train.ReadPhaseOptions(filepath.Join(out, "phase2"))
	if err != nil {
		t.Fatal(err)
	}
	if p1.Phase.Epochs != 1 || p1.Phase.LR != 1e-3 || p1.InitFrom != "" {
		t.Errorf("phase 1 options: %+v, want epochs 1, lr 1e-3 from the flags, no start checkpoint", p1.Phase)
	}
	if p2.Phase.Epochs != 1 || p2.Phase.LR != 5e-4 || p2.Phase.Batch != 4 || len(p2.Phase.Freeze) != 1 || p2.Phase.Freeze[0] != "/backbone/features/0" {
		t.Errorf("phase 2 options: %+v, want epochs 1, lr 5e-4 (flags), batch 4 and freeze [/backbone/features/0] (the first run's config)", p2.Phase)
	}
	if p2.Train.Seed != 7 || p2.Data.Jitter != 0.15 || p2.Data.MinScale != 0.3 || p2.InitFrom != filepath.Join(out, "phase1", train.BestDir) {
		t.Errorf("phase 2: seed %d, jitter %g, min_scale %g, init_from %q; want 7, 0.15, 0.3 and phase 1's best", p2.Train.Seed, p2.Data.Jitter, p2.Data.MinScale, p2.InitFrom)
	}
	// Every checkpoint carries the options it was trained with.
	for ph, want := range map[string]*train.PhaseOptions{"1": p1, "2": p2} {
		got, err := readCheckpointOptions(filepath.Join(out, "phase"+ph, train.BestDir))
		if err != nil || got == nil || got.Phase.LR != want.Phase.LR || got.InitFrom != want.InitFrom || got.Steps != want.Steps || got.Train.Seed != 7 {
			t.Errorf("phase %s best checkpoint's options: %+v, %v; want those of options.json %+v", ph, got, err, want)
		}
	}
	// A checkpoint with its options record exports like any other.
	if _, _, err := runApp(t, "export", "--checkpoint", filepath.Join(out, "phase2", train.BestDir), "--onnx", filepath.Join(dir, "m.onnx")); err != nil {
		t.Errorf("export of phase 2's best checkpoint: %v", err)
	}
	// Phase 2 started from phase 1's weights: its frozen first backbone block is phase 1's.
	w1, w2 := checkpointVariable(t, filepath.Join(out, "phase1", train.BestDir), "/backbone/features/0"), checkpointVariable(t, filepath.Join(out, "phase2", train.BestDir), "/backbone/features/0")
	if w1 == nil || !slices.Equal(w1, w2) {
		t.Error("phase 2's frozen /backbone/features/0 differs from phase 1's best: it did not start from it")
	}
	// --resume OUT continues the run in OUT: both phases are done, so it only evaluates.
	if stdout, _, err := runApp(t, "train", "--progress=false", "--resume", out); err != nil || !strings.Contains(stdout, filepath.Join(out, "phase2", train.BestDir)) {
		t.Errorf("--resume %s: %v\n%s", out, err, stdout)
	}
	// Resuming the finished phase again trains nothing and evaluates again.
	if _, _, err := runApp(t, "train", "--phase", "2", "--progress=false", "--resume", filepath.Join(out, "phase2", train.BestDir)); err != nil {
		t.Fatalf("resume of the finished phase 2: %v", err)
	}
	if _, _, err := runApp(t, "train", "--resume", filepath.Join(out, "phase1", train.BestDir), "--phase", "2"); err == nil || !strings.Contains(err.Error(), "put the checkpoint last") {
		t.Errorf("flags after the --resume checkpoint: got %v, want an error saying to put it last", err)
	}
	if _, _, err := runApp(t, "train", "--phase", "2", "--resume", filepath.Join(dir, "nowhere")); err == nil || !strings.Contains(err.Error(), "nowhere") {
		t.Errorf("--resume of a path outside any run: got %v, want an error naming it", err)
	}
}

// checkpointVariable returns the values of the first variable (in name order) under scope.
func checkpointVariable(t *testing.T, dir, scope string) []float32 {
	t.Helper()
	ctx, _, err := models.LoadCheckpoint(dir)
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	vals := map[string][]float32{}
	for v := range ctx.IterVariables() {
		if strings.HasPrefix(v.Scope(), scope) && v.Name() == "weight" {
			k := v.Scope() + "/" + v.Name()
			names = append(names, k)
			vals[k] = tensors.MustCopyFlatData[float32](v.MustValue())
		}
	}
	if len(names) == 0 {
		return nil
	}
	slices.Sort(names)
	return vals[names[0]]
}

// The data root: $ARTNET_DATA overrides the config's data.root (and --data overrides both); a
// root without images/ is refused with the download hint instead of training on nothing.
func TestTrainWikiArtDataRoot(t *testing.T) {
	labelsOnly := labelsOnlyCopy(t, writeTrainWikiArt(t))
	cfgFile := filepath.Join(t.TempDir(), "train.yaml")
	writeTrainFile(t, cfgFile, `
model: {preset: tiny, image_size: 32, resize_size: 36, stages: 2, lstm_layers: 1}
data: {root: /nonexistent-config-root}
phases:
  - {name: "1", epochs: 1, batch: 4, lr: 1.0e-3}
`)
	args := []string{"train", "--config", cfgFile, "--out", t.TempDir(), "--progress=false"}
	t.Setenv(wikiart.EnvData, "")
	if _, _, err := runApp(t, args...); err == nil || !strings.Contains(err.Error(), "/nonexistent-config-root") {
		t.Errorf("config root: want an error naming it, got %v", err)
	}
	t.Setenv(wikiart.EnvData, labelsOnly)
	_, _, err := runApp(t, args...)
	if err == nil || !strings.Contains(err.Error(), "data download --dest "+labelsOnly) || strings.Contains(err.Error(), "\n") {
		t.Errorf("%s without images: want one line with the download hint, got %v", wikiart.EnvData, err)
	}
	if _, _, err := runApp(t, append(args, "--data", "/nonexistent-flag-root")...); err == nil || !strings.Contains(err.Error(), "/nonexistent-flag-root") {
		t.Errorf("--data over %s: want an error naming the flag's folder, got %v", wikiart.EnvData, err)
	}
}

// labelsOnlyCopy copies a WikiArt folder's split CSVs and class lists, without images/, to a new
// folder and returns it.
func labelsOnlyCopy(t *testing.T, root string) string {
	t.Helper()
	dst := t.TempDir()
	for task := range wikiart.Tasks {
		for _, f := range []string{wikiart.FileName(task, "train"), wikiart.FileName(task, "val"), wikiart.ClassFileName(task)} {
			b, err := os.ReadFile(filepath.Join(root, f))
			if err != nil {
				t.Fatal(err)
			}
			writeTrainFile(t, filepath.Join(dst, f), string(b))
		}
	}
	return dst
}

// readCheckpointOptions decodes the options.json a checkpoint of train.RunPhases carries.
func readCheckpointOptions(dir string) (*train.PhaseOptions, error) {
	b, err := models.ReadCheckpointOptions(dir)
	if err != nil || b == nil {
		return nil, err
	}
	var po train.PhaseOptions
	return &po, json.Unmarshal(b, &po)
}
