package evaluate

import (
	"context"
	"errors"
	"fmt"
	"image"
	"image/color"
	"image/png"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"testing"
	"time"

	"github.com/artnet/artnet/models/spec"
	"github.com/artnet/artnet/predict"
	"github.com/artnet/artnet/wikiart"
)

// fakePredictor "recognizes" an image by its brightness: class = round(mean red channel
// of the normalized input × 2) mod n for every task, with probability 0.6 and the rest shared.
type fakePredictor struct {
	cfg   spec.Config
	calls []int // batch sizes
	fail  error
	block chan struct{} // when set, Run waits on it or on ctx
}

func (p *fakePredictor) Config() spec.Config { return p.cfg }
func (p *fakePredictor) Close() error        { return nil }
func (p *fakePredictor) Run(ctx context.Context, images []float32, batch int) (*predict.Result, error) {
	p.calls = append(p.calls, batch)
	if p.block != nil {
		select {
		case <-p.block:
		case <-ctx.Done():
			return nil, ctx.Err()
		}
	}
	if p.fail != nil {
		return nil, p.fail
	}
	per := len(images) / batch
	res := &predict.Result{Batch: batch, Probs: map[string][]float32{}, Attention: make([]float32, batch*p.cfg.Tokens())}
	for i := 0; i < batch; i++ {
		cls := classOf(images[i*per])
		for _, task := range spec.Tasks {
			n := len(p.cfg.Classes[task])
			row := make([]float32, n)
			for j := range row {
				row[j] = 0.4 / float32(n-1)
			}
			row[cls%n] = 0.6
			res.Probs[task] = append(res.Probs[task], row...)
		}
	}
	return res, nil
}

// levels are the red values of the test images; classOf maps the normalized value back.
var levels = []uint8{10, 60, 110, 160, 210}

func classOf(x float32) int {
	v := (x*spec.ImageNetStd[0] + spec.ImageNetMean[0]) * 255
	best := 0
	for i, l := range levels {
		if abs(v-float32(l)) < abs(v-float32(levels[best])) {
			best = i
		}
	}
	return best
}

func abs(x float32) float32 {
	if x < 0 {
		return -x
	}
	return x
}

func writeLevelPNG(t *testing.T, path string, level uint8) {
	t.Helper()
	img := image.NewRGBA(image.Rect(0, 0, 40, 40))
	for y := 0; y < 40; y++ {
		for x := 0; x < 40; x++ {
			img.Set(x, y, color.RGBA{level, 100, 100, 255})
		}
	}
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		t.Fatal(err)
	}
	f, err := os.Create(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	if err := png.Encode(f, img); err != nil {
		t.Fatal(err)
	}
}

func smallConfig() spec.Config {
	c := spec.Tiny()
	c.ImageSize, c.ResizeSize = 16, 16
	c.Classes = map[string][]string{"style": spec.Numbered("style", 7), "genre": spec.Numbered("genre", 3), "artist": spec.Numbered("artist", 2)}
	return c
}

// Run's bookkeeping against hand-computed numbers: 7 images in batches of 3 (3, 3, 1 after an
// undecodable one), labels absent for some tasks, predictions known from the image colours.
func TestRunCountsByHand(t *testing.T) {
	dir := t.TempDir()
	// image i has colour level L[i] → predicted class L[i] (mod n).
	L := []int{0, 1, 2, 3, 4, 0, 1}
	var samples []wikiart.Sample
	for i, l := range L {
		p := fmt.Sprintf("S/img%d.png", i)
		writeLevelPNG(t, filepath.Join(dir, p), levels[l])
		samples = append(samples, wikiart.Sample{Path: p, Labels: [3]int{-1, -1, -1}})
	}
	// style (7 classes): every image labelled; correct for images 0..4, wrong for 5 (label 2:
	// rank 2, a top-5 hit) and 6 (label 5: rank 5 behind the prediction and the tied classes
	// 0, 2, 3, 4, a top-5 miss).
	for i := range samples {
		samples[i].Labels[0] = L[i]
	}
	samples[5].Labels[0], samples[6].Labels[0] = 2, 5
	// genre (3 classes): images 0, 1, 2 labelled 0, 1, 0 → predicted 0, 1, 2: 2 of 3 correct.
	samples[0].Labels[1], samples[1].Labels[1], samples[2].Labels[1] = 0, 1, 0
	// artist: only image 3, label 1; predicted 3 mod 2 = 1: correct.
	samples[3].Labels[2] = 1
	broken := wikiart.Sample{Path: "S/broken.png", Labels: [3]int{0, -1, -1}}
	if err := os.WriteFile(filepath.Join(dir, broken.Path), []byte("no"), 0o644); err != nil {
		t.Fatal(err)
	}
	samples = append(samples[:6], append([]wikiart.Sample{broken}, samples[6:]...)...)

	p := &fakePredictor{cfg: smallConfig()}
	s, err := Run(context.Background(), p, samples, Options{Images: dir, Batch: 3})
	if err != nil {
		t.Fatal(err)
	}
	if fmt.Sprint(p.calls) != "[3 3 1]" {
		t.Errorf("batches %v, want [3 3 1]", p.calls)
	}
	if s.Samples != 8 || s.Evaluated != 7 || s.Undecodable != 1 || s.UndecodableEx[0].Path != "S/broken.png" || s.ClassNamesFrom != "model" {
		t.Errorf("summary %+v", s)
	}
	st := s.Task("style")
	if st.Samples != 7 || st.Top1 != 5.0/7 || st.K != 5 || st.TopK != 6.0/7 {
		t.Errorf("style: %d samples top-1 %g top-%d %g, want 7, 5/7, top-5 6/7", st.Samples, st.Top1, st.K, st.TopK)
	}
	// class 2 (style_2): support 2 (images 2, 5), predicted once (image 2) → P 1, R 1/2.
	c2 := st.PerClass[2]
	if c2.Support != 2 || c2.Predicted != 1 || *c2.Precision != 1 || *c2.Recall != 0.5 {
		t.Errorf("style_2: %+v", c2)
	}
	g := s.Task("genre")
	if g.Samples != 3 || g.Top1 != 2.0/3 || g.K != 3 || g.TopK != 1 || len(g.Absent) != 1 || g.Absent[0] != "genre_2" {
		t.Errorf("genre: %+v", g)
	}
	if a := s.Task("artist"); a.Samples != 1 || a.Top1 != 1 || len(a.Absent) != 1 {
		t.Errorf("artist: %+v", a)
	}

	// Data class names replace the model's; a count mismatch is an error naming the task.
	names := map[string][]string{"style": {"A", "B", "C", "D", "E", "F", "G"}, "genre": {"x", "y", "z"}, "artist": {"p", "q"}}
	s, err = Run(context.Background(), p, samples[:2], Options{Images: dir, Classes: names})
	if err != nil || s.Task("style").PerClass[1].Class != "B" || s.ClassNamesFrom != "data" {
		t.Errorf("data names: %v %v", err, s)
	}
	if len(s.ClassNameMismatch) != 0 {
		t.Errorf("placeholder model names reported as a mismatch: %v", s.ClassNameMismatch)
	}
	named := &fakePredictor{cfg: smallConfig()}
	named.cfg.Classes = map[string][]string{"style": names["style"], "genre": {"z", "y", "x"}, "artist": names["artist"]}
	s, err = Run(context.Background(), named, samples[:2], Options{Images: dir, Classes: names})
	if err != nil || fmt.Sprint(s.ClassNameMismatch) != "[genre]" {
		t.Errorf("reordered genre names: mismatch %v, err %v", s.ClassNameMismatch, err)
	}
	names["genre"] = []string{"x", "y"}
	if _, err := Run(context.Background(), p, samples[:2], Options{Images: dir, Classes: names}); err == nil || !strings.Contains(err.Error(), "genre") {
		t.Errorf("class count mismatch: %v", err)
	}
}

// A model failure or a cancelled context ends Run with an error, and its decoding goroutine ends.
func TestRunErrorsEndGoroutine(t *testing.T) {
	dir := t.TempDir()
	var samples []wikiart.Sample
	for i := 0; i < 40; i++ {
		p := fmt.Sprintf("S/i%d.png", i)
		writeLevelPNG(t, filepath.Join(dir, p), levels[i%5])
		samples = append(samples, wikiart.Sample{Path: p, Labels: [3]int{i % 5, -1, -1}})
	}
	before := runtime.NumGoroutine()
	boom := errors.New("boom")
	if _, err := Run(context.Background(), &fakePredictor{cfg: smallConfig(), fail: boom}, samples, Options{Images: dir, Batch: 2}); !errors.Is(err, boom) {
		t.Errorf("model failure: %v", err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	go func() { time.Sleep(20 * time.Millisecond); cancel() }()
	if _, err := Run(ctx, &fakePredictor{cfg: smallConfig(), block: make(chan struct{})}, samples, Options{Images: dir, Batch: 2}); !errors.Is(err, context.Canceled) {
		t.Errorf("cancelled: %v", err)
	}
	deadline := time.Now().Add(2 * time.Second)
	for runtime.NumGoroutine() > before && time.Now().Before(deadline) {
		time.Sleep(5 * time.Millisecond)
	}
	if n := runtime.NumGoroutine(); n > before {
		t.Errorf("%d goroutines left running (before: %d)", n, before)
	}
}

func TestSubsample(t *testing.T) {
	var s []wikiart.Sample
	for i := 0; i < 10; i++ {
		s = append(s, wikiart.Sample{Path: fmt.Sprint(i)})
	}
	var got []string
	for _, x := range Subsample(s, 4) {
		got = append(got, x.Path)
	}
	if strings.Join(got, ",") != "0,2,5,7" {
		t.Errorf("Subsample(10, 4) = %v", got)
	}
	if len(Subsample(s, 0)) != 10 || len(Subsample(s, 11)) != 10 {
		t.Error("n ≤ 0 or ≥ len must keep all")
	}
}
