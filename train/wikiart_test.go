package train

import (
	"context"
	"image"
	"image/color"
	"image/jpeg"
	"math"
	"math/rand/v2"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/gomlx/gomlx/pkg/core/graph"
	"github.com/gomlx/gomlx/pkg/core/tensors"

	"github.com/artnet/artnet/models"
	"github.com/artnet/artnet/models/spec"
	"github.com/artnet/artnet/preprocess"
	"github.com/artnet/artnet/wikiart"
)

// writeWikiArtImages writes n 224×224 JPEGs (a colour per style class plus noise) under
// root/Style<k>/img<i>.jpg and returns their samples.
func writeWikiArtImages(t *testing.T, root string, n int, cfg spec.Config) []wikiart.Sample {
	t.Helper()
	rng := rand.New(rand.NewPCG(1, 2))
	var out []wikiart.Sample
	for i := range n {
		st := i % cfg.NumClasses("style")
		rel := filepath.ToSlash(filepath.Join("Style"+string(rune('A'+st)), "img"+string(rune('a'+i%26))+string(rune('a'+i/26))+".jpg"))
		img := image.NewRGBA(image.Rect(0, 0, 224, 224))
		for y := range 224 {
			for x := range 224 {
				v := uint8(rng.IntN(60))
				img.Set(x, y, color.RGBA{uint8(40*st) + v, uint8(x) + v, uint8(y), 255})
			}
		}
		p := filepath.Join(root, filepath.FromSlash(rel))
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		f, err := os.Create(p)
		if err != nil {
			t.Fatal(err)
		}
		if err := jpeg.Encode(f, img, &jpeg.Options{Quality: 90}); err != nil {
			t.Fatal(err)
		}
		if err := f.Close(); err != nil {
			t.Fatal(err)
		}
		lb := [3]int{st, -1, -1}
		if i%2 == 0 {
			lb[1] = i % cfg.NumClasses("genre")
		}
		out = append(out, wikiart.Sample{Path: rel, Labels: lb})
	}
	return out
}

func TestWikiArtEvalTransformIsPredicts(t *testing.T) {
	cfg := smallConfig()
	root := t.TempDir()
	samples := writeWikiArtImages(t, root, 4, cfg)
	ds, err := NewWikiArt(context.Background(), samples, WikiArtOptions{Images: root, Config: cfg, Workers: 2})
	if err != nil {
		t.Fatal(err)
	}
	img := make([]float32, 3*cfg.ImageSize*cfg.ImageSize)
	for i, s := range samples {
		lb, err := ds.Example(i, img)
		if err != nil {
			t.Fatal(err)
		}
		if lb != (Labels{int32(s.Labels[0]), int32(s.Labels[1]), int32(s.Labels[2])}) {
			t.Errorf("example %d: labels %v, want %v", i, lb, s.Labels)
		}
		want, err := preprocess.DecodeFile(s.File(root), preprocess.FromConfig(cfg))
		if err != nil {
			t.Fatal(err)
		}
		if !slices.Equal(img, want) {
			t.Fatalf("example %d: the evaluation transform differs from preprocess.DecodeFile (what predict uses)", i)
		}
	}
}

func TestWikiArtAugmentationSeededAndVaried(t *testing.T) {
	cfg := smallConfig()
	root := t.TempDir()
	samples := writeWikiArtImages(t, root, 3, cfg)
	o := WikiArtOptions{Images: root, Config: cfg, Augment: true, Seed: 5, Jitter: 0.2}
	a, err := NewWikiArt(context.Background(), samples, o)
	if err != nil {
		t.Fatal(err)
	}
	cached := o
	if cached.Cache, err = NewImageCache(1 << 30); err != nil {
		t.Fatal(err)
	}
	defer cached.Cache.Close()
	b, err := NewWikiArt(context.Background(), samples, cached) // another instance, through a cache
	if err != nil {
		t.Fatal(err)
	}
	n := 3 * cfg.ImageSize * cfg.ImageSize
	x, y := make([]float32, n), make([]float32, n)
	distinct := map[float32]bool{}
	for pos := range 6 {
		if _, err := a.ExampleAt(pos, 1, x); err != nil {
			t.Fatal(err)
		}
		if _, err := b.ExampleAt(pos, 1, y); err != nil {
			t.Fatal(err)
		}
		if !slices.Equal(x, y) {
			t.Fatalf("position %d: the same (seed, position, index) gave different images (uncached vs cached)", pos)
		}
		var sum float64
		for _, v := range x {
			if math.IsNaN(float64(v)) || v < -3 || v > 3 {
				t.Fatalf("position %d: value %g outside the normalized range", pos, v)
			}
			sum += float64(v)
		}
		distinct[float32(sum)] = true
	}
	if len(distinct) < 5 {
		t.Errorf("6 stream positions gave only %d distinct augmentations", len(distinct))
	}
	if n, bytes := cached.Cache.Stats(); n != 1 || bytes != 224*224*4 {
		t.Errorf("cache holds %d images, %d bytes; want the one image read, 224·224·4 bytes", n, bytes)
	}
	o.Seed = 6
	c, err := NewWikiArt(context.Background(), samples, o)
	if err != nil {
		t.Fatal(err)
	}
	_, _ = a.ExampleAt(0, 1, x)
	_, _ = c.ExampleAt(0, 1, y)
	if slices.Equal(x, y) {
		t.Error("another seed gave the same augmentation")
	}
}

func TestWikiArtBadImageNamesFile(t *testing.T) {
	cfg := smallConfig()
	root := t.TempDir()
	samples := writeWikiArtImages(t, root, 2, cfg)
	bad := samples[1].File(root)
	if err := os.WriteFile(bad, []byte("not an image"), 0o644); err != nil {
		t.Fatal(err)
	}
	_, err := NewWikiArt(context.Background(), samples, WikiArtOptions{Images: root, Config: cfg})
	if err == nil || !strings.Contains(err.Error(), bad) || strings.Contains(err.Error(), "\n") {
		t.Fatalf("got %v, want one line naming %s", err, bad)
	}
}

func TestBalancedSampler(t *testing.T) {
	class := make([]int, 100)
	for i := range class {
		if i >= 90 {
			class[i] = 1
		}
	}
	s := BalancedSampler(class)
	if !slices.Equal(s(3, 4), s(3, 4)) {
		t.Fatal("the same (seed, epoch) gave different orders")
	}
	if slices.Equal(s(3, 4), s(3, 5)) {
		t.Fatal("two epochs gave the same order")
	}
	minority := 0
	for ep := range 20 {
		idx := s(1, ep)
		if len(idx) != len(class) {
			t.Fatalf("epoch has %d indices, want %d", len(idx), len(class))
		}
		for _, i := range idx {
			if class[i] == 1 {
				minority++
			}
		}
	}
	if f := float64(minority) / 2000; f < 0.42 || f > 0.58 {
		t.Errorf("minority class drawn %.3f of the time, want ≈0.5 (it is 0.1 of the data)", f)
	}
}

func variableValues(t *testing.T, dir string) map[string][]float64 {
	t.Helper()
	ctx, _, err := models.LoadCheckpoint(dir)
	if err != nil {
		t.Fatal(err)
	}
	out := map[string][]float64{}
	for v := range ctx.IterVariables() {
		out[v.Scope()+"/"+v.Name()] = flatFloats(v.MustValue())
	}
	return out
}

// TestFreezeAndInitFrom trains phase-like runs: a run initialised from a checkpoint with
// /encoder and /backbone/features/0 frozen leaves exactly those weights unchanged and changes
// the others; a following run without freezing (from that run's checkpoint, whose frozen flags
// were saved) changes the encoder again.
func TestFreezeAndInitFrom(t *testing.T) {
	cfg := smallConfig()
	cfg.Stages, cfg.LSTMLayers = 2, 1
	data := NewSynthetic(cfg, 16, 1)
	base := Options{Config: cfg, Steps: 1, Batch: 4, LR: 1e-2, WeightDecay: 1e-2, Seed: 1, ClipNorm: 1}
	o := base
	o.OutDir = filepath.Join(t.TempDir(), "p0")
	r0, err := Run(context.Background(), o, data, nil, testLogger(t))
	if err != nil {
		t.Fatal(err)
	}
	o = base
	o.OutDir, o.Steps, o.InitFrom = filepath.Join(t.TempDir(), "p1"), 3, r0.CheckpointDir
	o.Freeze = []string{"/encoder", "/backbone/features/0"}
	r1, err := Run(context.Background(), o, data, nil, testLogger(t))
	if err != nil {
		t.Fatal(err)
	}
	v0, v1 := variableValues(t, r0.CheckpointDir), variableValues(t, r1.CheckpointDir)
	changed := func(a, b []float64) bool { return !slices.Equal(a, b) }
	var frozen, trained int
	for k, a := range v0 {
		if !isModelVariable(k[:strings.LastIndex(k, "/")]) || isBuffer(k[strings.LastIndex(k, "/")+1:]) {
			continue
		}
		b, ok := v1[k]
		if !ok {
			t.Fatalf("variable %s missing after InitFrom", k)
		}
		isFrozen := strings.HasPrefix(k, "/encoder/") || strings.HasPrefix(k, "/backbone/features/0/")
		switch {
		case isFrozen && changed(a, b):
			t.Errorf("frozen variable %s changed", k)
		case isFrozen:
			frozen++
		case !changed(a, b) && !strings.HasPrefix(k, "/uncertainty"):
			t.Errorf("trainable variable %s did not change", k)
		default:
			trained++
		}
	}
	if frozen == 0 || trained == 0 {
		t.Fatalf("compared %d frozen and %d trained variables", frozen, trained)
	}
	o = base
	o.OutDir, o.Steps, o.InitFrom = filepath.Join(t.TempDir(), "p2"), 2, r1.CheckpointDir
	r2, err := Run(context.Background(), o, data, nil, testLogger(t))
	if err != nil {
		t.Fatal(err)
	}
	v2 := variableValues(t, r2.CheckpointDir)
	for k := range v1 {
		if strings.HasPrefix(k, "/encoder/") && !changed(v1[k], v2[k]) {
			t.Errorf("%s stayed frozen in a run without Freeze", k)
		}
	}
}

// TestResumeExactWithAugmentationSamplerFreeze: the WikiArt data set's augmentation, a
// balanced sampler, freezing, clipping and InitFrom all continue exactly across a resume.
func TestResumeExactWithAugmentationSamplerFreeze(t *testing.T) {
	cfg := smallConfig()
	cfg.Stages, cfg.LSTMLayers = 2, 1
	root := t.TempDir()
	samples := writeWikiArtImages(t, root, 12, cfg)
	ds, err := NewWikiArt(context.Background(), samples, WikiArtOptions{Images: root, Config: cfg, Augment: true, Seed: 3, Jitter: 0.2})
	if err != nil {
		t.Fatal(err)
	}
	cls := make([]int, len(samples))
	for i, s := range samples {
		cls[i] = s.Labels[0]
	}
	o := Options{Config: cfg, Batch: 4, LR: 5e-3, WeightDecay: 1e-2, WarmupSteps: 2, Seed: 2, ClipNorm: 0.5,
		Sampler: BalancedSampler(cls), Freeze: []string{"/attention"}}
	resumeEquivalence(t, o, ds, 3, 1e-6)
}

func TestLoadFileConfig(t *testing.T) {
	dir := t.TempDir()
	write := func(name, s string) string {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, []byte(s), 0o644); err != nil {
			t.Fatal(err)
		}
		return p
	}
	write("base.yaml", `
model: {preset: default, lstm_hidden: 64}
data: {root: /data, jitter: 0.1, balanced: [style]}
train: {seed: 4, clip_norm: 5}
phases:
  - {name: "1", epochs: 20, batch: 64, lr: 1.0e-3, freeze: [/encoder]}
  - {name: "2", epochs: 30, batch: 32, lr: 5.0e-4}
`)
	p := write("run.yaml", `
base: base.yaml
model: {preset: tiny, image_size: 48, resize_size: 56}
data: {jitter: 0.3}
phases:
  - {name: "1", epochs: 0.5, batch: 8, lr: 2.0e-3, freeze: [/backbone/features/0]}
`)
	fc, err := LoadFileConfig(p)
	if err != nil {
		t.Fatal(err)
	}
	cfg, err := fc.ModelConfig()
	if err != nil {
		t.Fatal(err)
	}
	tiny := spec.Tiny()
	if cfg.ImageSize != 48 || cfg.ResizeSize != 56 || cfg.WidthMult != tiny.WidthMult || cfg.LSTMHidden != 64 {
		t.Errorf("model: want preset tiny, image 48/56 and the base's lstm_hidden 64, got %+v", cfg)
	}
	if fc.Data.Root != "/data" || fc.Data.Jitter != 0.3 || fc.Train.Seed != 4 || len(fc.Phases) != 1 || fc.Phases[0].Epochs != 0.5 {
		t.Errorf("merge: got data %+v train %+v phases %+v", fc.Data, fc.Train, fc.Phases)
	}
	for name, tc := range map[string]struct{ yaml, want string }{
		"unknown field": {"phases: [{name: a, epochs: 1, batch: 1, lr: 1}]\ntrian: {seed: 1}\n", "trian"},
		"bad phase":     {"phases: [{name: a, epochs: 0, batch: 1, lr: 1}]\n", "phases[0].epochs"},
		"bad freeze":    {"phases: [{name: a, epochs: 1, batch: 1, lr: 1, freeze: [/optimizer]}]\n", "phases[0].freeze"},
		"bad model":     {"model: {variant: b9}\nphases: [{name: a, epochs: 1, batch: 1, lr: 1}]\n", "b9"},
		"bad task":      {"data: {balanced: [colour]}\nphases: [{name: a, epochs: 1, batch: 1, lr: 1}]\n", "data.balanced"},
		"missing base":  {"base: nowhere.yaml\n", "nowhere.yaml"},
	} {
		p := write(strings.ReplaceAll(name, " ", "_")+".yaml", tc.yaml)
		_, err := LoadFileConfig(p)
		if err == nil || !strings.Contains(err.Error(), tc.want) || !strings.Contains(err.Error(), filepath.Base(p)[:3]) {
			t.Errorf("%s: got %v, want an error naming the file and %q", name, err, tc.want)
		}
	}
}

func TestClipGlobalNorm(t *testing.T) {
	b := lossBackend(t)
	for _, tc := range []struct {
		max  float64
		want []float32 // grads (3, [4, 0]): global norm 5
	}{{1, []float32{0.6, 0.8, 0}}, {10, []float32{3, 4, 0}}} {
		out := graph.MustExecOnceN(b, func(a, c *graph.Node) []*graph.Node {
			return ClipGlobalNorm([]*graph.Node{a, c}, tc.max)
		}, float32(3), []float32{4, 0})
		got := append([]float32{tensors.ToScalar[float32](out[0])}, tensors.MustCopyFlatData[float32](out[1])...)
		for i := range got {
			if math.Abs(float64(got[i]-tc.want[i])) > 1e-5 {
				t.Errorf("max norm %g: got %v, want %v", tc.max, got, tc.want)
				break
			}
		}
	}
}

// TestImageCacheBudget: the cache keeps copies of the first images that fit its budget, gives
// back the same pixels, refuses what does not fit, and is empty after Close.
func TestImageCacheBudget(t *testing.T) {
	c, err := NewImageCache(3 * 10 * 10 * 4) // three 10×10 images
	if err != nil {
		t.Fatal(err)
	}
	for i := range 5 {
		m := image.NewRGBA(image.Rect(0, 0, 10, 10))
		for k := range m.Pix {
			m.Pix[k] = uint8(i*40 + k)
		}
		got := c.put(string(rune('a'+i)), m)
		if !slices.Equal(got.Pix, m.Pix) || got.Rect != m.Rect {
			t.Fatalf("image %d: put returned other pixels", i)
		}
		if hit := c.get(string(rune('a' + i))); (hit != nil) != (i < 3) {
			t.Errorf("image %d: cached %v, want %v (budget: three images)", i, hit != nil, i < 3)
		}
	}
	if n, b := c.Stats(); n != 3 || b != 1200 {
		t.Errorf("stats: %d images, %d bytes; want 3 and 1200", n, b)
	}
	if hit := c.get("b"); hit == nil || hit.Pix[0] != 40 {
		t.Errorf("image b from the cache: %v", hit)
	}
	if err := c.Close(); err != nil {
		t.Fatal(err)
	}
	if n, _ := c.Stats(); n != 0 || c.get("a") != nil {
		t.Error("the cache still holds images after Close")
	}
	var none *ImageCache // a nil cache caches nothing
	m := image.NewRGBA(image.Rect(0, 0, 2, 2))
	if none.put("x", m) != m || none.get("x") != nil || none.Close() != nil {
		t.Error("a nil cache is not a no-op")
	}
}
