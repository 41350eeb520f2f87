package train

import (
	"image/png"
	"math"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/artnet/artnet/models/spec"
)

// smallConfig is a tiny configuration for tests: 32×32 input, 5 styles, 4 genres, 4 artists.
func smallConfig() spec.Config {
	c := spec.Tiny()
	c.ImageSize, c.ResizeSize = 32, 36
	c.Classes = map[string][]string{
		"style":  spec.Numbered("style", 5),
		"genre":  spec.Numbered("genre", 4),
		"artist": spec.Numbered("artist", 4),
	}
	return c
}

func TestSyntheticDeterministic(t *testing.T) {
	cfg := smallConfig()
	n := 3 * cfg.ImageSize * cfg.ImageSize
	a, b, c := NewSynthetic(cfg, 10, 7), NewSynthetic(cfg, 10, 7), NewSynthetic(cfg, 10, 8)
	ia, ib, ic := make([]float32, n), make([]float32, n), make([]float32, n)
	differ := 0
	for i := 0; i < 10; i++ {
		la, err := a.Example(i, ia)
		if err != nil {
			t.Fatal(err)
		}
		lb, _ := b.Example(i, ib)
		lc, _ := c.Example(i, ic)
		if la != lb || !slices.Equal(ia, ib) {
			t.Fatalf("example %d differs between two data sets with the same seed", i)
		}
		if la != lc || !slices.Equal(ia, ic) {
			differ++
		}
		for k, task := range spec.Tasks {
			if la[k] < 0 || int(la[k]) >= cfg.NumClasses(task) {
				t.Fatalf("example %d: %s label %d out of range", i, task, la[k])
			}
		}
		// Normalized values map back into [0,1].
		plane := cfg.ImageSize * cfg.ImageSize
		for j, v := range ia {
			ch := j / plane
			raw := v*cfg.Std[ch] + cfg.Mean[ch]
			if raw < -1e-5 || raw > 1+1e-5 || math.IsNaN(float64(v)) {
				t.Fatalf("example %d pixel %d: unnormalized value %g outside [0,1]", i, j, raw)
			}
		}
	}
	if differ < 9 {
		t.Errorf("only %d of 10 examples differ between seeds 7 and 8", differ)
	}
	if _, err := a.Example(10, ia); err == nil {
		t.Error("Example(10) of a 10-example set: want an error")
	}
	if _, err := a.Example(0, ia[:5]); err == nil {
		t.Error("Example with a short buffer: want an error")
	}
}

// features computes simple hand-made descriptors of an (unnormalized) picture.
func features(cfg spec.Config, img []float32) (colour, texture, motif []float64) {
	s := cfg.ImageSize
	plane := s * s
	raw := func(c, y, x int) float64 {
		return float64(img[c*plane+y*s+x]*cfg.Std[c] + cfg.Mean[c])
	}
	colour = make([]float64, 3)
	for c := 0; c < 3; c++ {
		for p := 0; p < plane; p++ {
			colour[c] += raw(c, p/s, p%s) / float64(plane)
		}
	}
	// Texture: mean absolute differences along 4 directions on the grey image (2-pixel steps).
	grey := func(y, x int) float64 { return (raw(0, y, x) + raw(1, y, x) + raw(2, y, x)) / 3 }
	texture = make([]float64, 8)
	for y := 2; y < s-2; y++ {
		for x := 2; x < s-2; x++ {
			g := grey(y, x)
			for k, d := range [][2]int{{0, 1}, {1, 0}, {1, 1}, {1, -1}} {
				texture[k] += math.Abs(g - grey(y+d[0], x+d[1]))
				texture[4+k] += math.Abs(g - grey(y+2*d[0], x+2*d[1]))
			}
		}
	}
	// Motif: for each of the 8 core colours, how close the 3×3-averaged picture comes to it
	// anywhere (−the smallest Euclidean distance), i.e. which colour glows somewhere.
	motif = make([]float64, len(coreColours))
	for k := range motif {
		motif[k] = math.Inf(-1)
	}
	for y := 1; y < s-1; y++ {
		for x := 1; x < s-1; x++ {
			var m [3]float64
			for c := 0; c < 3; c++ {
				for dy := -1; dy <= 1; dy++ {
					for dx := -1; dx <= 1; dx++ {
						m[c] += raw(c, y+dy, x+dx) / 9
					}
				}
			}
			for k, cc := range coreColours {
				d := math.Sqrt((m[0]-cc[0])*(m[0]-cc[0]) + (m[1]-cc[1])*(m[1]-cc[1]) + (m[2]-cc[2])*(m[2]-cc[2]))
				motif[k] = max(motif[k], -d)
			}
		}
	}
	return
}

// TestSyntheticLabelsReadableFromPixels checks that each label can be read from the pixels by
// a nearest-centroid classifier on a matching hand-made feature (mean colour for style,
// directional differences for genre, the core colours that glow somewhere for artist), far
// better than chance. (With 23 artists the motif feature sees only the core colour, not the
// blob's shape, so it cannot exceed about 1/3; 4× chance is 0.17.)
func TestSyntheticLabelsReadableFromPixels(t *testing.T) {
	cfg := spec.Tiny()
	cfg.ImageSize = 32
	cfg.Classes = map[string][]string{"style": spec.Numbered("s", 27), "genre": spec.Numbered("g", 10), "artist": spec.Numbered("a", 23)}
	train, val := NewSynthetic(cfg, 1200, 1), NewSynthetic(cfg, 300, 2)
	img := make([]float32, 3*cfg.ImageSize*cfg.ImageSize)
	type sample struct {
		f  [3][]float64
		lb Labels
	}
	load := func(ds Dataset) []sample {
		out := make([]sample, ds.Len())
		for i := range out {
			lb, err := ds.Example(i, img)
			if err != nil {
				t.Fatal(err)
			}
			c, tx, l := features(cfg, img)
			out[i] = sample{[3][]float64{c, tx, l}, lb}
		}
		return out
	}
	tr, va := load(train), load(val)
	for k, task := range spec.Tasks {
		n := cfg.NumClasses(task)
		dim := len(tr[0].f[k])
		cent := make([][]float64, n)
		cnt := make([]float64, n)
		for i := range cent {
			cent[i] = make([]float64, dim)
		}
		for _, s := range tr {
			c := s.lb[k]
			cnt[c]++
			for d, v := range s.f[k] {
				cent[c][d] += v
			}
		}
		for c := range cent {
			for d := range cent[c] {
				cent[c][d] /= max(cnt[c], 1)
			}
		}
		correct := 0
		for _, s := range va {
			best, bestD := -1, math.Inf(1)
			for c := range cent {
				dist := 0.0
				for d, v := range s.f[k] {
					dist += (v - cent[c][d]) * (v - cent[c][d])
				}
				if dist < bestD {
					best, bestD = c, dist
				}
			}
			if int32(best) == s.lb[k] {
				correct++
			}
		}
		acc, chance := float64(correct)/float64(len(va)), 1/float64(n)
		t.Logf("%s: nearest-centroid accuracy %.2f (chance %.3f)", task, acc, chance)
		if acc < 4*chance {
			t.Errorf("%s: accuracy %.2f < 4× chance %.3f: the label is not readable from the pixels", task, acc, chance)
		}
	}
}

func TestSaveSyntheticPNG(t *testing.T) {
	cfg := smallConfig()
	dir := t.TempDir()
	path := filepath.Join(dir, "demo.png")
	if err := SaveSyntheticPNG(path, cfg, 1, 2, 3, 42); err != nil {
		t.Fatal(err)
	}
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	im, err := png.Decode(f)
	if err != nil {
		t.Fatalf("decode: %v", err)
	}
	if b := im.Bounds(); b.Dx() != cfg.ImageSize || b.Dy() != cfg.ImageSize {
		t.Errorf("PNG is %v, want %d×%d", b, cfg.ImageSize, cfg.ImageSize)
	}
	// Same seed → same bytes; another artist → another picture.
	a1, _ := os.ReadFile(path)
	_ = SaveSyntheticPNG(path, cfg, 1, 2, 3, 42)
	a2, _ := os.ReadFile(path)
	_ = SaveSyntheticPNG(path, cfg, 1, 2, 0, 42)
	a3, _ := os.ReadFile(path)
	if !slices.Equal(a1, a2) || slices.Equal(a1, a3) {
		t.Error("SaveSyntheticPNG is not deterministic per (classes, seed)")
	}
	entries, _ := os.ReadDir(dir)
	if len(entries) != 1 {
		t.Errorf("temporary files left behind: %v", entries)
	}

	err = SaveSyntheticPNG(filepath.Join(dir, "bad.png"), cfg, 5, 0, 0, 1)
	if err == nil || !strings.Contains(err.Error(), "style class 5") || strings.Contains(err.Error(), "\n") {
		t.Errorf("out-of-range style: got %v, want a one-line error naming the style class", err)
	}
	if _, err := os.Stat(filepath.Join(dir, "bad.png")); !os.IsNotExist(err) {
		t.Error("a failed SaveSyntheticPNG left a file")
	}
}
