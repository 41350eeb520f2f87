package artnet

import (
	"bytes"
	"context"
	"errors"
	"image"
	"image/color"
	"image/png"
	"math"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/artnet/artnet/defaultmodel"
	"github.com/artnet/artnet/internal/testenv"
	"github.com/artnet/artnet/models/spec"
	"github.com/artnet/artnet/onnxrt"
	"github.com/artnet/artnet/onnxrt/runtimetest"
	"github.com/artnet/artnet/predict"
	"github.com/artnet/artnet/preprocess"
)

func openDefault(t *testing.T, o Options) *Model {
	t.Helper()
	o.Runtime.IntraOpThreads = 1
	m, err := OpenDefault(o)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := m.Close(); err != nil {
			t.Error(err)
		}
	})
	return m
}

// The API's answer for a painting equals the one computed from the lower packages directly
// (runtime, preprocess, predict: what `artnet predict --json` does), whether the painting comes
// as a file, as bytes or as a decoded image.
func TestPredictMatchesLowerPackages(t *testing.T) {
	m := openDefault(t, Options{TopK: 3})
	path := testenv.Testdata(t, testenv.StarryNight)

	rt, err := onnxrt.OpenBytes(defaultmodel.Name, defaultmodel.Bytes(), onnxrt.Options{IntraOpThreads: 1})
	if err != nil {
		t.Fatal(err)
	}
	defer rt.Close()
	cfg := rt.Config()
	x, err := preprocess.DecodeFile(path, preprocess.FromConfig(cfg))
	if err != nil {
		t.Fatal(err)
	}
	want := runtimetest.Expected(t, rt, x, path, 3, true)

	ctx := context.Background()
	fromFile, err := m.PredictFile(ctx, path)
	if err != nil {
		t.Fatal(err)
	}
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	fromBytes, err := m.PredictBytes(ctx, data)
	if err != nil {
		t.Fatal(err)
	}
	img, err := preprocess.DecodeImage(bytes.NewReader(data), preprocess.FromConfig(cfg))
	if err != nil {
		t.Fatal(err)
	}
	fromImage, err := m.Predict(ctx, img)
	if err != nil {
		t.Fatal(err)
	}
	if fromFile.Image != path || fromBytes.Image != "" {
		t.Errorf("Image names %q, %q; want the path, then none", fromFile.Image, fromBytes.Image)
	}
	for name, got := range map[string]*Result{"file": fromFile, "bytes": fromBytes, "image": fromImage} {
		for _, task := range spec.Tasks {
			g, w := *got.Task(task), *want.Task(task)
			if g.Label != w.Label || g.Confidence != w.Confidence || len(g.TopK) != 3 {
				t.Errorf("%s %s: %+v, want %+v", name, task, g, w)
				continue
			}
			for i := range w.TopK {
				if g.TopK[i] != w.TopK[i] {
					t.Errorf("%s %s top-%d: %+v, want %+v", name, task, i+1, g.TopK[i], w.TopK[i])
				}
			}
		}
		if len(got.Attention) != cfg.Tokens() || len(got.Grid) != 2 {
			t.Fatalf("%s: %d attention weights, grid %v", name, len(got.Attention), got.Grid)
		}
		for i := range got.Attention {
			if got.Attention[i] != want.Attention[i] {
				t.Fatalf("%s: attention[%d] = %v, want %v", name, i, got.Attention[i], want.Attention[i])
			}
		}
	}
}

// A batch gives what the images give one by one; the attention map has the grid's shape and
// sums to 1; the heat map has the painting's bounds, also for an image not at the origin.
func TestPredictImagesAttentionHeatmap(t *testing.T) {
	m := openDefault(t, Options{})
	ctx := context.Background()
	var imgs []image.Image
	for _, p := range []string{testenv.StarryNight, testenv.TheScream} {
		img, err := preprocess.DecodeImageFile(testenv.Testdata(t, p), preprocess.FromConfig(m.Config()))
		if err != nil {
			t.Fatal(err)
		}
		imgs = append(imgs, img)
	}
	// The Scream, moved so that its bounds start at (40, 30).
	src := imgs[1].(*image.RGBA)
	moved := &image.RGBA{Pix: src.Pix, Stride: src.Stride, Rect: src.Rect.Add(image.Pt(40, 30))}
	imgs = append(imgs, moved)
	batch, err := m.PredictImages(ctx, imgs)
	if err != nil {
		t.Fatal(err)
	}
	if len(batch) != 3 {
		t.Fatalf("%d results for 3 images", len(batch))
	}
	for i, img := range imgs {
		one, err := m.Predict(ctx, img)
		if err != nil {
			t.Fatal(err)
		}
		for _, task := range spec.Tasks {
			a, b := *batch[i].Task(task), *one.Task(task)
			if a.Label != b.Label || math.Abs(a.Confidence-b.Confidence) > 1e-5 || len(a.TopK) != DefaultTopK {
				t.Errorf("image %d %s: batch %+v, alone %+v", i, task, a, b)
			}
		}
		att := batch[i].AttentionMap()
		h, w := m.Config().Grid()
		sum := 0.0
		for _, row := range att {
			if len(row) != w {
				t.Fatalf("attention row of %d, want %d", len(row), w)
			}
			for _, v := range row {
				sum += float64(v)
			}
		}
		if len(att) != h || math.Abs(sum-1) > 1e-4 {
			t.Errorf("image %d: attention map %d rows, sum %v", i, len(att), sum)
		}
		hm := batch[i].Heatmap()
		if hm.Bounds() != img.Bounds() {
			t.Errorf("image %d: heat map %v, image %v", i, hm.Bounds(), img.Bounds())
		}
	}
	// The moved copy is the same painting: the same answer and the same overlay pixels (ONNX
	// Runtime may round two rows of one batch differently in the last float32 bits: ≤ 1e-6, and
	// overlay pixels within one level).
	if batch[1].Style.Label != batch[2].Style.Label || math.Abs(batch[1].Style.Confidence-batch[2].Style.Confidence) > 1e-6 {
		t.Errorf("moved image: style %v, original %v", batch[2].Style, batch[1].Style)
	}
	a, b := batch[1].Heatmap(), batch[2].Heatmap()
	if len(a.Pix) != len(b.Pix) {
		t.Fatalf("the moved image's heat map has %d bytes, the original's %d", len(b.Pix), len(a.Pix))
	}
	for i := range a.Pix {
		if d := int(a.Pix[i]) - int(b.Pix[i]); d > 1 || d < -1 {
			t.Fatalf("the moved image's heat map differs from the original's at byte %d: %d vs %d", i, b.Pix[i], a.Pix[i])
		}
	}
	var buf bytes.Buffer
	if err := png.Encode(&buf, a); err != nil {
		t.Fatal(err)
	}
}

// Bad input gets a one-line error naming what is wrong, never a panic.
func TestBadInput(t *testing.T) {
	m := openDefault(t, Options{TopK: 1})
	ctx := context.Background()
	tiny := image.NewRGBA(image.Rect(0, 0, 4, 4))
	tiny.Set(1, 1, color.White)
	cases := []struct {
		name string
		run  func() (*Result, error)
		want string
	}{
		{"garbage bytes", func() (*Result, error) { return m.PredictBytes(ctx, []byte("not an image")) }, "unknown image format"},
		{"no bytes", func() (*Result, error) { return m.PredictBytes(ctx, nil) }, "empty"},
		{"truncated", func() (*Result, error) {
			b, _ := os.ReadFile(testenv.Testdata(t, "images", "bad-truncated.jpg"))
			return m.PredictBytes(ctx, b)
		}, "truncated"},
		{"missing file", func() (*Result, error) { return m.PredictFile(ctx, "no/such.jpg") }, "no/such.jpg"},
		{"bad file", func() (*Result, error) { return m.PredictFile(ctx, testenv.Testdata(t, "images", "bad-text.png")) }, "bad-text.png"},
		{"too small", func() (*Result, error) { return m.Predict(ctx, tiny) }, "too small"},
		{"nil image", func() (*Result, error) { return m.Predict(ctx, nil) }, "nil"},
		{"no images", func() (*Result, error) { _, err := m.PredictImages(ctx, nil); return nil, err }, "no image"},
	}
	for _, c := range cases {
		r, err := c.run()
		if err == nil || !strings.Contains(err.Error(), c.want) || strings.Contains(err.Error(), "\n") || r != nil {
			t.Errorf("%s: want a one-line error mentioning %q, got %v (result %v)", c.name, c.want, err, r)
		}
	}
	// TopK 1: the label only.
	r, err := m.PredictFile(ctx, testenv.Testdata(t, testenv.TheScream))
	if err != nil {
		t.Fatal(err)
	}
	if r.Style.TopK != nil || r.Style.Label == "" {
		t.Errorf("TopK 1: %+v", r.Style)
	}
	// A cancelled context stops the run.
	cctx, cancel := context.WithCancel(ctx)
	cancel()
	if _, err := m.PredictFile(cctx, testenv.Testdata(t, testenv.TheScream)); !errors.Is(err, context.Canceled) {
		t.Errorf("cancelled context: %v", err)
	}
}

func TestOpenErrors(t *testing.T) {
	notModel := filepath.Join(t.TempDir(), "x.onnx")
	if err := os.WriteFile(notModel, []byte("not onnx"), 0o644); err != nil {
		t.Fatal(err)
	}
	for _, path := range []string{filepath.Join(t.TempDir(), "none.onnx"), notModel} {
		m, err := Open(path, Options{})
		if err == nil || !strings.Contains(err.Error(), filepath.Base(path)) || strings.Contains(err.Error(), "\n") {
			t.Errorf("Open(%s): want a one-line error naming the file, got %v", path, err)
		}
		if m != nil {
			t.Errorf("Open(%s) returned a model with its error", path)
		}
	}
	// A file that works: the tiny test model, with its own classes.
	good := runtimetest.WriteTiny(t)
	m, err := Open(good, Options{TopK: 2})
	if err != nil {
		t.Fatal(err)
	}
	defer m.Close()
	if got := m.Classes("style"); len(got) != len(spec.Tiny().Classes["style"]) {
		t.Errorf("tiny model: %d style classes", len(got))
	}
	r, err := m.PredictFile(context.Background(), testenv.Testdata(t, testenv.NightCafe))
	if err != nil {
		t.Fatal(err)
	}
	if len(r.Genre.TopK) != 2 || r.Genre.TopK[0].Label != r.Genre.Label || r.Genre.TopK[0].Confidence < r.Genre.TopK[1].Confidence {
		t.Errorf("top-2 genre %+v", r.Genre)
	}
}

// closeCounter is a predictor that only counts Close calls.
type closeCounter struct {
	predict.Predictor
	cfg    spec.Config
	closed int
}

func (c *closeCounter) Config() spec.Config { return c.cfg }
func (c *closeCounter) Close() error        { c.closed++; return nil }

// Wrap owns the predictor: it closes it when the options or the model's configuration are bad.
func TestWrapClosesOnError(t *testing.T) {
	p := &closeCounter{cfg: spec.Tiny()}
	if _, err := Wrap(p, Options{TopK: -1}); err == nil || !strings.Contains(err.Error(), "TopK") || p.closed != 1 {
		t.Errorf("TopK -1: %v, closed %d", err, p.closed)
	}
	bad := spec.Tiny()
	bad.ResizeSize = bad.ImageSize - 1
	p = &closeCounter{cfg: bad}
	if _, err := Wrap(p, Options{}); err == nil || !strings.Contains(err.Error(), "ResizeSize") || p.closed != 1 {
		t.Errorf("bad config: %v, closed %d", err, p.closed)
	}
}
