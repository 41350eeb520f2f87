//go:build unix

package predict

import (
	"bytes"
	"context"
	"image"
	"image/color"
	"image/jpeg"
	"image/png"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"

	"github.com/artnet/artnet/models/spec"
)

// fakePredictor answers every image with the same scores and a one-hot attention on token i
// for image i of the batch.
type fakePredictor struct{ cfg spec.Config }

func (f fakePredictor) Config() spec.Config { return f.cfg }
func (f fakePredictor) Close() error        { return nil }
func (f fakePredictor) Run(_ context.Context, _ []float32, batch int) (*Result, error) {
	res := &Result{Batch: batch, Probs: map[string][]float32{}}
	for _, task := range spec.Tasks {
		n := f.cfg.NumClasses(task)
		p := make([]float32, batch*n)
		for i := range batch {
			p[i*n] = 1
		}
		res.Probs[task] = p
	}
	tok := f.cfg.Tokens()
	res.Attention = make([]float32, batch*tok)
	for i := range batch {
		res.Attention[i*tok+i%tok] = 1
	}
	return res, nil
}

func newPipeline(t *testing.T, p Predictor) *Pipeline {
	t.Helper()
	pl, err := NewPipeline(p)
	if err != nil {
		t.Fatal(err)
	}
	return pl
}

// writeImage writes a w×h picture of one colour as PNG or JPEG (by extension).
func writeImage(t *testing.T, path string, c color.RGBA) {
	t.Helper()
	img := image.NewRGBA(image.Rect(0, 0, 40, 30))
	for i := 0; i < len(img.Pix); i += 4 {
		img.Pix[i], img.Pix[i+1], img.Pix[i+2], img.Pix[i+3] = c.R, c.G, c.B, 255
	}
	var b bytes.Buffer
	var err error
	if strings.HasSuffix(path, ".png") {
		err = png.Encode(&b, img)
	} else {
		err = jpeg.Encode(&b, img, nil)
	}
	if err != nil {
		t.Fatal(err)
	}
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(path, b.Bytes(), 0o644); err != nil {
		t.Fatal(err)
	}
}

// TestFilesHeatmapsSameBaseName: a/x.jpg and b/x.png get a heat map each (neither overwrites the
// other), each prediction names its own, and the files get 0644 (umask 022), not 0600.
func TestFilesHeatmapsSameBaseName(t *testing.T) {
	defer syscall.Umask(syscall.Umask(0o022))
	dir := t.TempDir()
	a, b := filepath.Join(dir, "a", "x.jpg"), filepath.Join(dir, "b", "x.png")
	writeImage(t, a, color.RGBA{200, 10, 10, 255})
	writeImage(t, b, color.RGBA{10, 10, 200, 255})
	out := filepath.Join(dir, "maps")
	if err := os.Mkdir(out, 0o755); err != nil {
		t.Fatal(err)
	}
	var preds []*Prediction
	var failed []string
	o := FilesOptions{TopK: 1, HeatmapDir: out, Batch: 2,
		Emit:   func(p *Prediction) error { preds = append(preds, p); return nil },
		Failed: func(path string, err error) { failed = append(failed, path+": "+err.Error()) }}
	if err := Files(context.Background(), newPipeline(t, fakePredictor{spec.Tiny()}), []string{a, b}, o); err != nil {
		t.Fatalf("Files: %v (failed %q)", err, failed)
	}
	entries, err := os.ReadDir(out)
	if err != nil {
		t.Fatal(err)
	}
	if len(entries) != 2 {
		var names []string
		for _, e := range entries {
			names = append(names, e.Name())
		}
		t.Fatalf("heat-map folder holds %q, want one file per input (2)", names)
	}
	seen := map[string]string{}
	for _, p := range preds {
		if p.Heatmap == "" || filepath.Dir(p.Heatmap) != out {
			t.Errorf("%s: heatmap %q, want a file in %s", p.Image, p.Heatmap, out)
			continue
		}
		if prev, dup := seen[p.Heatmap]; dup {
			t.Errorf("%s and %s share the heat map %s", prev, p.Image, p.Heatmap)
		}
		seen[p.Heatmap] = p.Image
		fi, err := os.Stat(p.Heatmap)
		if err != nil {
			t.Error(err)
			continue
		}
		if got := fi.Mode().Perm(); got != 0o644 {
			t.Errorf("%s: mode %o, want 644", p.Heatmap, got)
		}
	}
	if len(seen) != 2 {
		t.Errorf("%d predictions named a heat map, want 2", len(seen))
	}
}
