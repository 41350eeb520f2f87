package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"image"
	"image/color"
	"image/png"
	"math"
	"math/rand/v2"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"

	"github.com/urfave/cli/v2"

	"github.com/artnet/artnet/defaultmodel"
	"github.com/artnet/artnet/evaluate"
	"github.com/artnet/artnet/export"
	"github.com/artnet/artnet/internal/testenv"
	"github.com/artnet/artnet/models"
	"github.com/artnet/artnet/models/spec"
	"github.com/artnet/artnet/onnxrt"
	"github.com/artnet/artnet/predict"
	"github.com/artnet/artnet/preprocess"
	"github.com/artnet/artnet/wikiart"
)

// runCmds runs the CLI in-process with only the given commands registered (main.go's newApp
// registers them once the CLI owner wires them).
func runCmds(t *testing.T, cmds []*cli.Command, args ...string) (string, error) {
	t.Helper()
	var out bytes.Buffer
	app := &cli.App{Name: "artnet", Commands: cmds, Writer: &out, ErrWriter: &out, ExitErrHandler: func(*cli.Context, error) {}}
	err := app.RunContext(context.Background(), append([]string{"artnet"}, args...))
	return out.String(), err
}

// evalTinyModels imports testdata/torchref/tiny.safetensors into a checkpoint and exports the
// same weights to ONNX, both under t.TempDir().
func evalTinyModels(t *testing.T) (ckpt, onnx string) {
	t.Helper()
	b, err := os.ReadFile("../../testdata/torchref/config.json")
	if err != nil {
		t.Fatal(err)
	}
	cfg, err := spec.ParseJSON(b)
	if err != nil {
		t.Fatal(err)
	}
	mctx, _, err := models.ImportWeights("../../testdata/torchref/tiny.safetensors", cfg, models.ImportOptions{})
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	ckpt = filepath.Join(dir, "ckpt")
	if err := models.SaveCheckpoint(mctx, cfg, ckpt); err != nil {
		t.Fatal(err)
	}
	m, err := export.Model(mctx, cfg)
	if err != nil {
		t.Fatal(err)
	}
	onnx = filepath.Join(dir, "tiny.onnx")
	if err := export.WriteFile(onnx, m); err != nil {
		t.Fatal(err)
	}
	return ckpt, onnx
}

// synthRow is one CSV row of the synthetic data set.
type synthRow struct {
	path  string
	label int
}

// writeSynthWikiArt writes a small data set in the WikiArt layout: class lists with 27/10/23
// names, the six CSVs (artist ones with the real files' header and double comma), and PNG
// images. val has 12 images with a style label (4 styles), 8 of them with a genre label and 5
// with an artist label, one row whose image is missing and one "image" that is not an image.
// When predict is not nil, every third image takes the labels predict gives its file (so that
// a model scores some hits).
func writeSynthWikiArt(t *testing.T, predict func(file string) [3]int) (root string, val map[int][]synthRow) {
	t.Helper()
	root = t.TempDir()
	counts := map[string]int{"style": 27, "genre": 10, "artist": 23}
	for task, n := range counts {
		var b strings.Builder
		for i := 0; i < n; i++ {
			fmt.Fprintf(&b, "%d %s_%c%c\n", i, strings.ToUpper(task[:1])+task[1:], 'A'+i/26, 'a'+i%26)
		}
		writeFile(t, filepath.Join(root, task+"_class.txt"), b.String())
	}
	styleName := func(i int) string { return fmt.Sprintf("Style_%c%c", 'A'+i/26, 'a'+i%26) }
	rng := rand.New(rand.NewPCG(7, 11))
	val = map[int][]synthRow{}
	for i := 0; i < 12; i++ {
		style := []int{0, 3, 5, 26}[i%4]
		p := fmt.Sprintf("%s/painter-%d_work-%d.png", styleName(style), i, i)
		file := filepath.Join(root, "images", filepath.FromSlash(p))
		writePNG(t, file, rng, 60+i*3, 90-i)
		labels := [3]int{style, (i * 3) % 10, (i * 5) % 23}
		if predict != nil && i%3 == 0 {
			labels = predict(file)
		}
		val[wikiart.Style] = append(val[wikiart.Style], synthRow{p, labels[0]})
		if i < 8 {
			val[wikiart.Genre] = append(val[wikiart.Genre], synthRow{p, labels[1]})
		}
		if i%2 == 0 && i < 10 {
			val[wikiart.Artist] = append(val[wikiart.Artist], synthRow{p, labels[2]})
		}
	}
	missing := styleName(5) + "/not-on-disk.png"
	bad := styleName(3) + "/broken.png"
	writeFile(t, filepath.Join(root, "images", filepath.FromSlash(bad)), "this is not a picture\n")
	csvOf := func(rows []synthRow, extra ...synthRow) string {
		var b strings.Builder
		for _, r := range append(append([]synthRow{}, rows...), extra...) {
			fmt.Fprintf(&b, "%s,%d\r\n", r.path, r.label)
		}
		return b.String()
	}
	writeFile(t, filepath.Join(root, "style_val.csv"), csvOf(val[wikiart.Style], synthRow{missing, 5}, synthRow{bad, 3}))
	writeFile(t, filepath.Join(root, "genre_val.csv"), csvOf(val[wikiart.Genre], synthRow{missing, 2}))
	var ab strings.Builder
	ab.WriteString("(Path to image),, (Groundtruth class)\n\n")
	for _, r := range val[wikiart.Artist] {
		fmt.Fprintf(&ab, "%s,,%d\n", r.path, r.label)
	}
	writeFile(t, filepath.Join(root, "artist_val.csv"), ab.String())
	writeFile(t, filepath.Join(root, "style_train.csv"), styleName(0)+"/train-only.png,0\r\n")
	writeFile(t, filepath.Join(root, "genre_train.csv"), styleName(0)+"/train-only.png,1\r\n")
	writeFile(t, filepath.Join(root, "artist_train.csv"), "(Path to image),, (Groundtruth class) \n\n"+styleName(0)+"/train-only.png,,2\n")
	return root, val
}

func writeFile(t *testing.T, path, s string) {
	t.Helper()
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(path, []byte(s), 0o644); err != nil {
		t.Fatal(err)
	}
}

func writePNG(t *testing.T, path string, rng *rand.Rand, w, h int) {
	t.Helper()
	img := image.NewRGBA(image.Rect(0, 0, w, h))
	base := [3]int{rng.IntN(256), rng.IntN(256), rng.IntN(256)}
	for y := 0; y < h; y++ {
		for x := 0; x < w; x++ {
			img.Set(x, y, color.RGBA{uint8(base[0] + x*3), uint8(base[1] + y*2), uint8(base[2] + rng.IntN(60)), 255})
		}
	}
	var b bytes.Buffer
	if err := png.Encode(&b, img); err != nil {
		t.Fatal(err)
	}
	writeFile(t, path, b.String())
}

func readSummary(t *testing.T, dir string) *evaluate.Summary {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(dir, evaluate.SummaryFile))
	if err != nil {
		t.Fatal(err)
	}
	var s evaluate.Summary
	if err := json.Unmarshal(b, &s); err != nil {
		t.Fatalf("%s: %v", evaluate.SummaryFile, err)
	}
	return &s
}

// sameNumbers fails unless two evaluations (of the two runtimes) have identical metrics and
// identical confusion CSVs.
func sameNumbers(t *testing.T, dirA, dirB string) {
	t.Helper()
	a, b := readSummary(t, dirA), readSummary(t, dirB)
	for _, s := range []*evaluate.Summary{a, b} {
		s.Model, s.Runtime, s.Seconds = "", "", 0
	}
	// The runtimes' probabilities agree to ~1e-7, not bit for bit: the calibration error (a mean
	// of confidences) is compared within tolerance, then left out of the exact comparison.
	for i, ta := range a.Tasks {
		if i < len(b.Tasks) {
			if d := math.Abs(ta.ECE - b.Tasks[i].ECE); d > 1e-5 {
				t.Errorf("%s: ECE %.7f (ONNX Runtime) vs %.7f (GoMLX)", ta.Task, ta.ECE, b.Tasks[i].ECE)
			}
			ta.ECE, b.Tasks[i].ECE = 0, 0
		}
	}
	if !reflect.DeepEqual(a, b) {
		ja, _ := json.Marshal(a)
		jb, _ := json.Marshal(b)
		t.Errorf("ONNX Runtime and GoMLX summaries differ:\n%s\n%s", ja, jb)
	}
	for _, task := range spec.Tasks {
		ca, errA := os.ReadFile(filepath.Join(dirA, evaluate.ConfusionCSV(task)))
		cb, errB := os.ReadFile(filepath.Join(dirB, evaluate.ConfusionCSV(task)))
		if errA != nil || errB != nil || !bytes.Equal(ca, cb) {
			t.Errorf("%s confusion CSVs differ (%v, %v)", task, errA, errB)
		}
	}
}

// Both runtimes evaluate the same model on a synthetic WikiArt folder to the same numbers, and
// those numbers are what the model's own predictions say, image by image.
func TestEvaluateSyntheticBothRuntimes(t *testing.T) {
	ckpt, onnx := evalTinyModels(t)
	m, err := onnxrt.Open(onnx, onnxrt.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer m.Close()
	popt := preprocess.FromConfig(m.Config())
	probs := func(file string) *predict.Result {
		x, err := preprocess.DecodeFile(file, popt)
		if err != nil {
			t.Fatal(err)
		}
		res, err := m.Run(context.Background(), x, 1)
		if err != nil {
			t.Fatal(err)
		}
		return res
	}
	data, val := writeSynthWikiArt(t, func(file string) (l [3]int) {
		res := probs(file)
		for k, task := range spec.Tasks {
			l[k] = evaluate.Argmax(res.Row(task, 0))
		}
		return l
	})
	outO, outG := filepath.Join(t.TempDir(), "onnx"), filepath.Join(t.TempDir(), "gomlx")
	cmds := []*cli.Command{evaluateCommand()}
	stdout, err := runCmds(t, cmds, "evaluate", "--model", onnx, "--data", data, "--out", outO, "--batch", "5")
	if err != nil {
		t.Fatalf("evaluate --model: %v\n%s", err, stdout)
	}
	t.Log(stdout)
	if _, err := runCmds(t, cmds, "evaluate", "--checkpoint", ckpt, "--data", data, "--out", outG, "--batch", "4"); err != nil {
		t.Fatalf("evaluate --checkpoint: %v", err)
	}
	sameNumbers(t, outO, outG)

	s := readSummary(t, outO)
	if s.Samples != 13 || s.Evaluated != 12 || s.Undecodable != 1 || s.MissingImages != 2 || s.Runtime != "onnx" {
		t.Errorf("samples %d evaluated %d undecodable %d missing %d runtime %s, want 13 12 1 2 onnx",
			s.Samples, s.Evaluated, s.Undecodable, s.MissingImages, s.Runtime)
	}
	if len(s.UndecodableEx) != 1 || !strings.Contains(s.UndecodableEx[0].Path, "broken.png") {
		t.Errorf("undecodable examples %+v", s.UndecodableEx)
	}

	// The expected numbers, from the model's outputs image by image (batch 1).
	for ti, task := range spec.Tasks {
		rep := s.Task(task)
		rows := val[ti]
		got, err := evaluate.ReadConfusionCSV(filepath.Join(outO, evaluate.ConfusionCSV(task)))
		if err != nil {
			t.Fatal(err)
		}
		want := evaluate.NewConfusion(got.Classes)
		top1, topk := 0, 0
		for _, r := range rows {
			probs := probs(filepath.Join(data, "images", r.path)).Row(task, 0)
			pred := evaluate.Argmax(probs)
			_ = want.Add(r.label, pred)
			if pred == r.label {
				top1++
			}
			if evaluate.Rank(probs, r.label) < 5 {
				topk++
			}
		}
		if top1 == 0 {
			t.Errorf("%s: no top-1 hit; the data should hold some", task)
		}
		if rep.Samples != len(rows) {
			t.Errorf("%s: %d samples, want %d", task, rep.Samples, len(rows))
		}
		if rep.Top1 != float64(top1)/float64(len(rows)) || rep.TopK != float64(topk)/float64(len(rows)) || rep.K != 5 {
			t.Errorf("%s: top-1 %g top-%d %g, want %g and %g", task, rep.Top1, rep.K, rep.TopK, float64(top1)/float64(len(rows)), float64(topk)/float64(len(rows)))
		}
		if !reflect.DeepEqual(got.M, want.M) {
			t.Errorf("%s: confusion matrix %v, want %v", task, got.M, want.M)
		}
		if len(rep.PerClass) != len(m.Config().Classes[task]) {
			t.Errorf("%s: %d per-class entries", task, len(rep.PerClass))
		}
		present := map[int]bool{}
		for _, r := range rows {
			present[r.label] = true
		}
		if len(rep.Absent) != len(rep.PerClass)-len(present) {
			t.Errorf("%s: %d absent classes, want %d", task, len(rep.Absent), len(rep.PerClass)-len(present))
		}
		if _, err := os.Stat(filepath.Join(outO, evaluate.ConfusionPNG(task))); err != nil {
			t.Errorf("%s: no heat map: %v", task, err)
		}
	}
	if !strings.Contains(stdout, "style") || !strings.Contains(stdout, "summary.json") {
		t.Errorf("stdout:\n%s", stdout)
	}
}

// The same on a handful of real validation images: the repository's real CSVs (data/wikiart)
// with its WikiArt sample as the image folder, with --limit.
func TestEvaluateRealImagesBothRuntimes(t *testing.T) {
	data, images := testenv.Data(t), filepath.Join(testenv.Sample(t), "images")
	ckpt, onnx := evalTinyModels(t)
	outO, outG := filepath.Join(t.TempDir(), "onnx"), filepath.Join(t.TempDir(), "gomlx")
	cmds := []*cli.Command{evaluateCommand()}
	if out, err := runCmds(t, cmds, "evaluate", "--model", onnx, "--data", data, "--images", images, "--out", outO, "--limit", "6", "--batch", "3"); err != nil {
		t.Fatalf("%v\n%s", err, out)
	}
	if _, err := runCmds(t, cmds, "evaluate", "--checkpoint", ckpt, "--data", data, "--images", images, "--out", outG, "--limit", "6", "--batch", "3"); err != nil {
		t.Fatal(err)
	}
	sameNumbers(t, outO, outG)
	s := readSummary(t, outO)
	if s.Evaluated != 6 || s.Limit != 6 || s.MissingImages == 0 || s.Task("style").Samples != 6 {
		t.Errorf("evaluated %d limit %d missing %d style samples %d", s.Evaluated, s.Limit, s.MissingImages, s.Task("style").Samples)
	}
	if got := s.Task("style").PerClass[0].Class; got != "Abstract_Expressionism" {
		t.Errorf("style class 0 named %q, want the data's Abstract_Expressionism", got)
	}
}

func TestEvaluateFlagErrors(t *testing.T) {
	data, _ := writeSynthWikiArt(t, nil)
	cmds := []*cli.Command{evaluateCommand()}
	for _, tc := range []struct {
		args []string
		want string
	}{
		{[]string{"evaluate", "--model", "a.onnx", "--checkpoint", "b", "--data", data}, "not both"},
		{[]string{"evaluate", "--model", "a.onnx", "--data", data, "--split", "test"}, "--split"},
		{[]string{"evaluate", "--model", "a.onnx", "--data", data, "--batch", "0"}, "--batch"},
		{[]string{"evaluate", "--model", "nope.onnx", "--data", data}, "nope.onnx"},
		{[]string{"evaluate", "--model", "a.onnx", "--data", t.TempDir()}, "style_class.txt"},
	} {
		_, err := runCmds(t, cmds, tc.args...)
		if err == nil || !strings.Contains(err.Error(), tc.want) || strings.Contains(err.Error(), "\n") {
			t.Errorf("%v: want one-line error mentioning %q, got %v", tc.args, tc.want, err)
		}
	}
}

// Without --model or --checkpoint, evaluate runs the built-in model, as the --model help says.
func TestEvaluateWithoutModelUsesBuiltIn(t *testing.T) {
	cmds := []*cli.Command{evaluateCommand()}
	out := filepath.Join(t.TempDir(), "eval")
	if o, err := runCmds(t, cmds, "evaluate", "--data", testenv.Sample(t), "--out", out, "--limit", "4", "--batch", "4"); err != nil {
		t.Fatalf("%v\n%s", err, o)
	}
	if s := readSummary(t, out); s.Model != defaultmodel.Name || s.Runtime != "onnx" || s.Evaluated != 4 {
		t.Errorf("evaluated %d images with %q (%s), want 4 with the built-in %s (onnx)", s.Evaluated, s.Model, s.Runtime, defaultmodel.Name)
	}
}

// Without --data, evaluate reads $ARTNET_DATA, else data/wikiart (the repository's CSVs, run from
// the repository root); a default folder that cannot be read says how to give one.
func TestEvaluateDataDefault(t *testing.T) {
	_, onnx := evalTinyModels(t)
	cmds := []*cli.Command{evaluateCommand()}
	t.Setenv(wikiart.EnvData, testenv.Sample(t))
	out := filepath.Join(t.TempDir(), "eval")
	if o, err := runCmds(t, cmds, "evaluate", "--model", onnx, "--out", out, "--limit", "4"); err != nil {
		t.Fatalf("%v\n%s", err, o)
	}
	if s := readSummary(t, out); s.Data != testenv.Sample(t) || s.Evaluated != 4 {
		t.Errorf("with %s: evaluated %d images of %q", wikiart.EnvData, s.Evaluated, s.Data)
	}
	t.Setenv(wikiart.EnvData, "")
	t.Chdir(t.TempDir()) // no data/wikiart here
	_, err := runCmds(t, cmds, "evaluate", "--model", onnx)
	if err == nil || !strings.Contains(err.Error(), wikiart.DefaultRoot) || !strings.Contains(err.Error(), wikiart.EnvData) || strings.Contains(err.Error(), "\n") {
		t.Errorf("default data folder missing: want one line naming %s and %s, got %v", wikiart.DefaultRoot, wikiart.EnvData, err)
	}
	root := labelsOnlyCopy(t, testenv.Sample(t))
	_, err = runCmds(t, cmds, "evaluate", "--model", onnx, "--data", root)
	if err == nil || !strings.Contains(err.Error(), "data download --dest "+root) {
		t.Errorf("a data folder without images/: want the download hint, got %v", err)
	}
}

// styleOnlyRoot writes an extra data root as ../shared/wikiart-extra is laid out: images and
// style CSVs only (no genre/artist files, no class lists), here n val images copied from the
// repository's sample under new names.
func styleOnlyRoot(t *testing.T, n int) string {
	t.Helper()
	sample := testenv.Sample(t)
	b, err := os.ReadFile(filepath.Join(sample, "style_val.csv"))
	if err != nil {
		t.Fatal(err)
	}
	root := t.TempDir()
	var csv strings.Builder
	for i, line := range strings.Split(strings.TrimSpace(string(b)), "\n")[:n] {
		path, label, _ := strings.Cut(strings.TrimSpace(line), ",")
		img, err := os.ReadFile(filepath.Join(sample, "images", filepath.FromSlash(path)))
		if err != nil {
			t.Fatal(err)
		}
		folder, _, _ := strings.Cut(path, "/")
		name := fmt.Sprintf("%s/extra-%d.jpg", folder, i)
		if err := os.MkdirAll(filepath.Join(root, "images", folder), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(root, "images", filepath.FromSlash(name)), img, 0o644); err != nil {
			t.Fatal(err)
		}
		fmt.Fprintf(&csv, "%s,%s\n", name, label)
	}
	for _, f := range []string{"style_val.csv", "style_train.csv"} {
		if err := os.WriteFile(filepath.Join(root, f), []byte(csv.String()), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	return root
}

// Two --data roots: each is reported alone (OUT/root1, OUT/root2), then the union (OUT); the
// style-only root adds style samples and no genre/artist samples.
func TestEvaluateTwoRoots(t *testing.T) {
	_, onnx := evalTinyModels(t)
	sample, extra := testenv.Sample(t), styleOnlyRoot(t, 5)
	out := filepath.Join(t.TempDir(), "eval")
	cmds := []*cli.Command{evaluateCommand()}
	stdout, err := runCmds(t, cmds, "evaluate", "--model", onnx, "--data", sample, "--data", extra, "--out", out)
	if err != nil {
		t.Fatalf("%v\n%s", err, stdout)
	}
	r1, r2, all := readSummary(t, filepath.Join(out, "root1")), readSummary(t, filepath.Join(out, "root2")), readSummary(t, out)
	if r2.Evaluated != 5 || r2.Task("style").Samples != 5 || r2.Task("genre").Samples != 0 || r2.Task("artist").Samples != 0 {
		t.Errorf("style-only root: evaluated %d, style %d genre %d artist %d; want 5, 5, 0, 0",
			r2.Evaluated, r2.Task("style").Samples, r2.Task("genre").Samples, r2.Task("artist").Samples)
	}
	if all.Evaluated != r1.Evaluated+r2.Evaluated || all.Task("style").Samples != r1.Task("style").Samples+5 ||
		all.Task("genre").Samples != r1.Task("genre").Samples {
		t.Errorf("union: evaluated %d style %d genre %d; roots %d+%d, style %d+5, genre %d",
			all.Evaluated, all.Task("style").Samples, all.Task("genre").Samples, r1.Evaluated, r2.Evaluated, r1.Task("style").Samples, r1.Task("genre").Samples)
	}
	if all.Data != sample+"+"+extra {
		t.Errorf("union data %q", all.Data)
	}
}
