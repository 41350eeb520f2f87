package train

import (
	"context"
	"encoding/json"
	"image"
	"image/color"
	"image/png"
	"log/slog"
	"math"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"

	"github.com/artnet/artnet/internal/testenv"
	"github.com/artnet/artnet/models/spec"
	"github.com/artnet/artnet/wikiart"
)

// loadSample loads the training split of the repository's WikiArt sample (testdata/wikiart,
// Disjoint) and a model configuration with its classes, ImageNet mean/std and the given input
// and resize sizes (configs/train.yaml's are 112 and 128); it returns the image folder too.
func loadSample(t *testing.T, size, resize int) (*wikiart.Split, spec.Config, string) {
	t.Helper()
	return loadTrain(t, testenv.Sample(t), size, resize)
}

// loadTrain is loadSample on the WikiArt folder root.
func loadTrain(t *testing.T, root string, size, resize int) (*wikiart.Split, spec.Config, string) {
	t.Helper()
	tr, _, classes, rep, err := wikiart.Load(wikiart.Options{Root: root, Disjoint: true})
	if err != nil {
		t.Fatal(err)
	}
	c := spec.Tiny()
	c.ImageSize, c.ResizeSize = size, resize
	c.Classes = classes
	return tr, c, rep.Images
}

// channelStats returns per-channel mean and standard deviation of the pixels (un-normalized
// back to [0,1]) of n CHW images of side s in x.
func channelStats(x []float32, n, s int, cfg spec.Config) (mean, std [3]float64) {
	plane := s * s
	var sum, sq [3]float64
	for b := range n {
		for ch := range 3 {
			for _, v := range x[(b*3+ch)*plane : (b*3+ch+1)*plane] {
				p := float64(v)*float64(cfg.Std[ch]) + float64(cfg.Mean[ch])
				sum[ch] += p
				sq[ch] += p * p
			}
		}
	}
	cnt := float64(n * plane)
	for ch := range 3 {
		mean[ch] = sum[ch] / cnt
		std[ch] = math.Sqrt(sq[ch]/cnt - mean[ch]*mean[ch])
	}
	return mean, std
}

// meanAbsLaplacian is the mean |4-neighbour Laplacian| of the grey level (BT.601 weights, on
// pixels un-normalized to [0,1]) over the interior of n CHW images of side cfg.ImageSize: a
// measure of fine detail.
func meanAbsLaplacian(x []float32, n int, cfg spec.Config) float64 {
	s := cfg.ImageSize
	plane := s * s
	grey := make([]float64, plane)
	var sum float64
	for b := range n {
		for k := range plane {
			var v float64
			for ch, w := range [3]float64{0.299, 0.587, 0.114} {
				v += w * (float64(x[(b*3+ch)*plane+k])*float64(cfg.Std[ch]) + float64(cfg.Mean[ch]))
			}
			grey[k] = v
		}
		for y := 1; y < s-1; y++ {
			for xx := 1; xx < s-1; xx++ {
				k := y*s + xx
				sum += math.Abs(4*grey[k] - grey[k-s] - grey[k+s] - grey[k-1] - grey[k+1])
			}
		}
	}
	return sum / float64(n*(s-2)*(s-2))
}

// writeGrid writes rows of CHW images (side s, normalized with cfg) as one PNG.
func writeGrid(t *testing.T, path string, rows [][]float32, cols, s int, cfg spec.Config) {
	t.Helper()
	const gap = 2
	g := image.NewRGBA(image.Rect(0, 0, cols*(s+gap), len(rows)*(s+gap)))
	plane := s * s
	for r, x := range rows {
		for c := range cols {
			img := x[c*3*plane : (c+1)*3*plane]
			for y := range s {
				for xx := range s {
					var px [3]uint8
					for ch := range 3 {
						v := float64(img[ch*plane+y*s+xx])*float64(cfg.Std[ch]) + float64(cfg.Mean[ch])
						px[ch] = uint8(math.Round(min(max(v, 0), 1) * 255))
					}
					g.Set(c*(s+gap)+xx, r*(s+gap)+y, color.RGBA{px[0], px[1], px[2], 255})
				}
			}
		}
	}
	f, err := os.Create(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	if err := png.Encode(f, g); err != nil {
		t.Fatal(err)
	}
}

// TestTrainAndEvalPixelStatisticsAgree pulls training batches from the real stream
// (batchStream over an augmenting WikiArt set with the default random resized crop and ±0.2
// colour jitter) and the evaluation transform of the same examples, and compares their
// per-channel mean and standard deviation (un-normalized to [0,1]) and their fine detail:
// augmentation must vary the pixels around the evaluation distribution, not shift it (a wrong
// channel order, mean/std, value range or jitter centre would; a blurring or aliasing crop
// resampler would change the detail). ARTNET_AUDIT_PNG=grid.png also writes a picture to
// look at: rows of evaluation images, each above the training crops of the same examples.
func TestTrainAndEvalPixelStatisticsAgree(t *testing.T) {
	tr, cfg, images := loadSample(t, 112, 128)
	checkTrainEvalStatistics(t, tr, cfg, images)
}

// TestTrainAndEvalPixelStatisticsAgreeWikiArt is TestTrainAndEvalPixelStatisticsAgree on the
// full WikiArt set (integration test).
func TestTrainAndEvalPixelStatisticsAgreeWikiArt(t *testing.T) {
	tr, cfg, images := loadTrain(t, testenv.WikiArt(t), 112, 128)
	checkTrainEvalStatistics(t, tr, cfg, images)
}

func checkTrainEvalStatistics(t *testing.T, tr *wikiart.Split, cfg spec.Config, images string) {
	samples := tr.Samples
	ctx := context.Background()
	trainSet, err := NewWikiArt(ctx, samples, WikiArtOptions{Images: images, Config: cfg, Augment: true, Seed: 1, Jitter: 0.2})
	if err != nil {
		t.Fatal(err)
	}
	evalSet, err := NewWikiArt(ctx, samples, WikiArtOptions{Images: images, Config: cfg})
	if err != nil {
		t.Fatal(err)
	}
	const batch, steps = 32, 8
	order := &epochOrder{n: trainSet.Len(), seed: 1}
	s := newBatchStream(ctx, trainSet, cfg, order, batch, 0, steps, 2, 2)
	defer s.close()
	per := 3 * cfg.ImageSize * cfg.ImageSize
	trainX := make([]float32, 0, batch*steps*per)
	evalX := make([]float32, batch*steps*per)
	var idx []int
	for range steps {
		p, err := s.next(ctx)
		if err != nil {
			t.Fatal(err)
		}
		trainX = append(trainX, p.buf.images...)
		idx = append(idx, p.buf.idx...)
		s.release(p)
	}
	for k, i := range idx {
		if _, err := evalSet.Example(i, evalX[k*per:(k+1)*per]); err != nil {
			t.Fatal(err)
		}
	}
	n := len(idx)
	tm, ts := channelStats(trainX, n, cfg.ImageSize, cfg)
	em, es := channelStats(evalX, n, cfg.ImageSize, cfg)
	t.Logf("%d examples: train mean %.4f std %.4f; eval mean %.4f std %.4f", n, tm, ts, em, es)
	for ch := range 3 {
		if d := math.Abs(tm[ch] - em[ch]); d > 0.03 {
			t.Errorf("channel %d: training mean %.4f, evaluation mean %.4f (|Δ| %.4f > 0.03)", ch, tm[ch], em[ch], d)
		}
		if r := ts[ch] / es[ch]; r < 0.9 || r > 1.1 {
			t.Errorf("channel %d: training std %.4f is %.3f× the evaluation std %.4f (want 0.9–1.1)", ch, ts[ch], r, es[ch])
		}
	}
	// Sharpness: the crops are resampled from the image at its own size with Pillow's
	// antialiasing, so their fine detail must match the evaluation images' (the old pipeline's
	// crops from an 80-px cache had a third less; an aliasing resampler would have more).
	tl, el := meanAbsLaplacian(trainX, n, cfg), meanAbsLaplacian(evalX, n, cfg)
	t.Logf("mean |Laplacian| of the grey image: train %.4f, eval %.4f", tl, el)
	if r := tl / el; r < 0.9 || r > 1.1 {
		t.Errorf("training crops' mean |Laplacian| %.4f is %.3f× the evaluation images' %.4f (want 0.9–1.1)", tl, r, el)
	}
	if path := os.Getenv("ARTNET_AUDIT_PNG"); path != "" {
		const cols = 11
		var rows [][]float32
		for r := range 3 {
			rows = append(rows, evalX[r*cols*per:(r+1)*cols*per], trainX[r*cols*per:(r+1)*cols*per])
		}
		writeGrid(t, path, rows, cols, cfg.ImageSize, cfg)
		for c := range cols {
			t.Logf("column %d: %s labels %v", c, samples[idx[c]].Path, samples[idx[c]].Labels)
		}
	}
}

// csvLabels reads the six split CSVs of root with the test's own parser (path first, class
// index last, lines without one skipped) into path → labels per task (−1: none; the first row
// of a path wins, as wikiart.Load keeps it).
func csvLabels(t *testing.T, root, split string) map[string][3]int {
	t.Helper()
	out := map[string][3]int{}
	for k, task := range spec.Tasks {
		b, err := os.ReadFile(filepath.Join(root, task+"_"+split+".csv"))
		if err != nil {
			t.Fatal(err)
		}
		for _, line := range strings.Split(string(b), "\n") {
			f := strings.Split(strings.TrimRight(line, "\r "), ",")
			if len(f) < 2 {
				continue
			}
			c, err := strconv.Atoi(f[len(f)-1])
			if err != nil {
				continue
			}
			lb, ok := out[f[0]]
			if !ok {
				lb = [3]int{-1, -1, -1}
			}
			if lb[k] < 0 {
				lb[k] = c
			}
			out[f[0]] = lb
		}
	}
	return out
}

// TestTrainStreamPairsImagesAndLabels pulls batches from the training stream (batchStream over
// an augmenting WikiArt set, balanced sampler) with the randomness of the crop and the colours
// switched off (MinScale 1 on square images, no jitter, ResizeSize = ImageSize): every training
// image must then be the evaluation image of the same example — same channel order, value
// range, normalization, CHW layout and resampling — or its horizontal (not vertical) mirror,
// both mirrors must occur, and every example's labels must be its path's CSV rows (read by the
// test's own parser), with −1 exactly where a CSV has no row.
func TestTrainStreamPairsImagesAndLabels(t *testing.T) {
	root := testenv.Sample(t)
	tr, cfg, images := loadSample(t, 48, 48)
	ctx := context.Background()
	trainSet, err := NewWikiArt(ctx, tr.Samples, WikiArtOptions{Images: images, Config: cfg, Augment: true, Seed: 3, MinScale: 1})
	if err != nil {
		t.Fatal(err)
	}
	evalSet, err := NewWikiArt(ctx, tr.Samples, WikiArtOptions{Images: images, Config: cfg})
	if err != nil {
		t.Fatal(err)
	}
	want := csvLabels(t, root, "train")
	cls := make([]int, len(tr.Samples))
	for i, s := range tr.Samples {
		cls[i] = s.Labels[0]
	}
	const batch, steps = 8, 4
	order := &epochOrder{n: trainSet.Len(), seed: 3, sampler: BalancedSampler(cls)}
	st := newBatchStream(ctx, trainSet, cfg, order, batch, 0, steps, 2, 1)
	defer st.close()
	s := cfg.ImageSize
	per, plane := 3*s*s, s*s
	ev, mirror := make([]float32, per), make([]float32, per)
	var same, mirrored, absent int
	for range steps {
		p, err := st.next(ctx)
		if err != nil {
			t.Fatal(err)
		}
		for b, i := range p.buf.idx {
			path := tr.Samples[i].Path
			lb := p.buf.labels[b*3 : b*3+3]
			w, ok := want[path]
			if !ok {
				t.Fatalf("batch example %d: %s is in no training CSV", b, path)
			}
			for k := range 3 {
				if int(lb[k]) != w[k] {
					t.Errorf("batch example %d (%s): %s label %d, the CSV says %d", b, path, spec.Tasks[k], lb[k], w[k])
				}
				if w[k] < 0 {
					absent++
				}
			}
			if _, err := evalSet.Example(i, ev); err != nil {
				t.Fatal(err)
			}
			for ch := range 3 {
				for y := range s {
					row := ev[ch*plane+y*s : ch*plane+(y+1)*s]
					m := mirror[ch*plane+y*s : ch*plane+(y+1)*s]
					copy(m, row)
					slices.Reverse(m)
				}
			}
			got := p.buf.images[b*per : (b+1)*per]
			// The augmentation normalizes in float32 after resizing, the evaluation transform through a
			// float64 table: the same 8-bit pixels give values a few float32 ulps apart.
			switch dSame, dMirror := maxAbsDiff(got, ev), maxAbsDiff(got, mirror); {
			case dSame <= 1e-5:
				same++
			case dMirror <= 1e-5:
				mirrored++
			default:
				t.Errorf("batch example %d (%s): the training image is neither the evaluation image (max |Δ| %.3g) nor its left-right mirror (%.3g)", b, path, dSame, dMirror)
			}
		}
		st.release(p)
	}
	if same == 0 || mirrored == 0 {
		t.Errorf("%d unflipped and %d flipped training images; want both", same, mirrored)
	}
	if absent == 0 {
		t.Error("no example without a genre or artist label: the sample should have some")
	}
}

func maxAbsDiff(a, b []float32) float64 {
	var d float64
	for k := range a {
		d = max(d, math.Abs(float64(a[k]-b[k])))
	}
	return d
}

// recordingSet records the (stream position, example) pairs the training stream reads.
type recordingSet struct {
	*WikiArt
	mu   sync.Mutex
	read map[int]int // position → example
}

func (r *recordingSet) ExampleAt(pos, i int, img []float32) (Labels, error) {
	r.mu.Lock()
	r.read[pos] = i
	r.mu.Unlock()
	return r.WikiArt.ExampleAt(pos, i, img)
}

// TestPhasesContinueTheDataStream trains two phases as RunPhases configures them (stand-in
// model) and checks that the second reads the stream positions after the first's, so it draws
// new sampler epochs and new crops instead of replaying the first phase's examples in the same
// order with the same augmentation.
func TestPhasesContinueTheDataStream(t *testing.T) {
	tr, cfg, images := loadSample(t, 32, 36)
	ds, err := NewWikiArt(context.Background(), tr.Samples, WikiArtOptions{Images: images, Config: cfg, Augment: true, Seed: 1, Jitter: 0.2})
	if err != nil {
		t.Fatal(err)
	}
	fc := &FileConfig{
		Data:  DataConfig{Balanced: []string{"style"}},
		Train: TrainConfig{Seed: 1, WeightDecay: 0.01, WarmupEpochs: 0.5, Keep: 1},
		Phases: []PhaseConfig{
			{Name: "1", Epochs: 2, Batch: 8, LR: 1e-3, Freeze: []string{"/hidden"}},
			{Name: "2", Epochs: 2, Batch: 4, LR: 5e-4},
		},
	}
	r := &phaseRun{o: PhasesOptions{Out: t.TempDir()}, fc: fc, cfg: cfg, log: slog.New(slog.DiscardHandler), trainSet: ds}
	var reads []map[int]int
	for _, ph := range fc.Phases {
		o, _ := r.runOptions(ph, r.phaseDir(ph.Name), "")
		o.Model = standIn
		rec := &recordingSet{WikiArt: ds, read: map[int]int{}}
		if _, err := Run(context.Background(), o, rec, nil, nil); err != nil {
			t.Fatal(err)
		}
		reads = append(reads, rec.read)
	}
	first, second := reads[0], reads[1]
	n1 := 2 * (ds.Len() / 8) * 8 // phase 1: 2 epochs of drop_last batches of 8
	for pos := range n1 {
		if _, ok := first[pos]; !ok {
			t.Fatalf("phase 1 did not read stream position %d (read %d positions)", pos, len(first))
		}
	}
	same := 0
	for pos, i := range second {
		if pos < n1 {
			t.Errorf("phase 2 read stream position %d, which phase 1 (positions 0..%d) already read", pos, n1-1)
		}
		if first[pos-n1] == i {
			same++
		}
	}
	if len(second) == 0 || same == len(second) {
		t.Errorf("phase 2 read the same %d examples in the same order as phase 1", same)
	}

	// Where phase 1 recorded what it trained (options.json; here 3 steps of 8, as an --epochs
	// override would give), phase 2 starts right after that rather than at the config's count.
	b, _ := json.Marshal(PhaseOptions{Phase: fc.Phases[0], Steps: 3, StreamStart: 0})
	if err := os.MkdirAll(r.phaseDir("1"), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(r.phaseDir("1"), OptionsFile), b, 0o644); err != nil {
		t.Fatal(err)
	}
	if got := r.streamStart(fc.Phases[1]); got != 24 {
		t.Errorf("phase 2 starts at stream position %d after a recorded phase 1 of 3 steps of 8, want 24", got)
	}
	if got := r.streamStart(fc.Phases[0]); got != 0 {
		t.Errorf("phase 1 starts at stream position %d, want 0", got)
	}
}
