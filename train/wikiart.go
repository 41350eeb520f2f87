package train

import (
	"context"
	"errors"
	"fmt"
	"math"
	"math/rand/v2"
	"runtime"

	"github.com/artnet/artnet/models/spec"
	"github.com/artnet/artnet/preprocess"
	"github.com/artnet/artnet/wikiart"
)

// WikiArtOptions configure NewWikiArt.
type WikiArtOptions struct {
	// Images is the image root: sample s is at s.File(Images).
	Images string
	// Config gives the input size, resize size and normalization.
	Config spec.Config
	// Augment selects the training transform (random resized crop, horizontal flip, colour
	// jitter, seeded by (Seed, stream position)); false selects the evaluation transform
	// (resize the shorter side to ResizeSize, centre-crop ImageSize, exactly as predict does).
	Augment bool
	// Seed seeds the augmentation.
	Seed int64
	// CacheSize is the side of the cached, downscaled training image (0 → Config.ResizeSize).
	CacheSize int
	// MinScale is the smallest area fraction of a random resized crop (0 → 0.35).
	MinScale float64
	// Jitter is the colour jitter strength: brightness, contrast and saturation factors are drawn
	// from [1−Jitter, 1+Jitter] (0 → no jitter; negative is an error).
	Jitter float64
	// Workers decode the images in parallel (0 → GOMAXPROCS).
	Workers int
}

// WikiArt is a Dataset over WikiArt samples. All images are decoded once by NewWikiArt into an
// in-memory cache (training: CacheSize² 8-bit RGB; evaluation: the final normalized tensor), so
// Example costs microseconds.
type WikiArt struct {
	o       WikiArtOptions
	samples []wikiart.Sample
	side    int       // cache side (training)
	pix     [][]uint8 // training cache: CHW uint8, side×side per channel
	tensors [][]float32
}

// NewWikiArt decodes every sample's image (in parallel) into the cache. An image that cannot
// be decoded is an error naming its file.
func NewWikiArt(ctx context.Context, samples []wikiart.Sample, o WikiArtOptions) (*WikiArt, error) {
	if err := o.Config.Validate(); err != nil {
		return nil, fmt.Errorf("wikiart data set: config: %v", err)
	}
	if o.Jitter < 0 || o.Jitter >= 1 {
		return nil, fmt.Errorf("wikiart data set: Jitter must be in [0,1), got %g", o.Jitter)
	}
	if o.MinScale == 0 {
		o.MinScale = 0.35
	}
	if o.MinScale < 0 || o.MinScale > 1 {
		return nil, fmt.Errorf("wikiart data set: MinScale must be in (0,1], got %g", o.MinScale)
	}
	if o.CacheSize == 0 {
		o.CacheSize = o.Config.ResizeSize
	}
	if o.CacheSize < o.Config.ImageSize/2 {
		return nil, fmt.Errorf("wikiart data set: CacheSize %d is below half the image size %d", o.CacheSize, o.Config.ImageSize)
	}
	if o.Workers <= 0 {
		o.Workers = runtime.GOMAXPROCS(0)
	}
	w := &WikiArt{o: o, samples: samples, side: o.CacheSize}
	if o.Augment {
		w.pix = make([][]uint8, len(samples))
	} else {
		w.tensors = make([][]float32, len(samples))
	}
	decodeOpt := preprocess.FromConfig(o.Config)
	cacheOpt := preprocess.Options{ImageSize: w.side, ResizeSize: w.side, Std: [3]float32{1, 1, 1}}
	errs := make([]error, len(samples))
	if err := forEach(ctx, len(samples), min(o.Workers, max(len(samples), 1)), func() func(int) {
		buf := make([]float32, cacheOpt.Len())
		return func(i int) {
			img, err := preprocess.DecodeImageFile(samples[i].File(o.Images), decodeOpt)
			if err != nil {
				errs[i] = err
				return
			}
			if !o.Augment {
				t := make([]float32, decodeOpt.Len())
				preprocess.ToTensorInto(t, img, decodeOpt)
				w.tensors[i] = t
				return
			}
			preprocess.ToTensorInto(buf, img, cacheOpt)
			p := make([]uint8, len(buf))
			for k, v := range buf {
				p[k] = uint8(math.Round(float64(min(max(v, 0), 1)) * 255))
			}
			w.pix[i] = p
		}
	}); err != nil {
		return nil, fmt.Errorf("wikiart data set: %w", err)
	}
	if err := errors.Join(errs...); err != nil {
		n := 0
		var first error
		for _, e := range errs {
			if e != nil {
				if first == nil {
					first = e
				}
				n++
			}
		}
		return nil, fmt.Errorf("wikiart data set: %d of %d images do not decode; first: %v", n, len(samples), first)
	}
	return w, nil
}

// Len is the number of samples.
func (w *WikiArt) Len() int { return len(w.samples) }

// Samples returns the samples in index order.
func (w *WikiArt) Samples() []wikiart.Sample { return w.samples }

func (w *WikiArt) labels(i int) Labels {
	var lb Labels
	for k := range lb {
		lb[k] = int32(w.samples[i].Labels[k])
	}
	return lb
}

// Example writes sample i with the evaluation transform (or, for an augmenting set, the
// augmentation of stream position 0).
func (w *WikiArt) Example(i int, img []float32) (Labels, error) { return w.ExampleAt(0, i, img) }

// ExampleAt writes sample i as seen at position pos of the training stream (step·batch + b):
// the augmentation is a function of (Seed, pos, i) only, so a resumed run repeats it exactly.
func (w *WikiArt) ExampleAt(pos, i int, img []float32) (Labels, error) {
	if i < 0 || i >= len(w.samples) {
		return Labels{}, fmt.Errorf("wikiart example %d: out of range [0,%d)", i, len(w.samples))
	}
	s := w.o.Config.ImageSize
	if len(img) != 3*s*s {
		return Labels{}, fmt.Errorf("wikiart example %d: image buffer has %d values, want %d", i, len(img), 3*s*s)
	}
	if !w.o.Augment {
		copy(img, w.tensors[i])
		return w.labels(i), nil
	}
	rng := rand.New(rand.NewPCG(uint64(w.o.Seed)^0x3c6ef372fe94f82b, uint64(pos)<<24^uint64(i)))
	w.augment(rng, w.pix[i], img)
	return w.labels(i), nil
}

// augment is RandomResizedCrop(ImageSize, scale=(MinScale,1), ratio=(3/4,4/3)) with bilinear
// sampling, a horizontal flip with probability ½, and brightness/contrast/saturation jitter,
// then normalization with the config's mean/std.
func (w *WikiArt) augment(rng *rand.Rand, src []uint8, dst []float32) {
	c, s := w.side, w.o.Config.ImageSize
	area := float64(c * c)
	cw, ch := float64(c), float64(c)
	for range 10 {
		a := area * (w.o.MinScale + (1-w.o.MinScale)*rng.Float64())
		r := math.Exp(math.Log(3.0/4) + (math.Log(4.0/3)-math.Log(3.0/4))*rng.Float64())
		tw, th := math.Sqrt(a*r), math.Sqrt(a/r)
		if tw <= float64(c) && th <= float64(c) {
			cw, ch = tw, th
			break
		}
	}
	x0 := rng.Float64() * (float64(c) - cw)
	y0 := rng.Float64() * (float64(c) - ch)
	flip := rng.IntN(2) == 1
	j := w.o.Jitter
	bright, contrast, sat := 1+j*(2*rng.Float64()-1), 1+j*(2*rng.Float64()-1), 1+j*(2*rng.Float64()-1)

	plane := s * s
	sx, sy := cw/float64(s), ch/float64(s)
	for y := range s {
		fy := y0 + (float64(y)+0.5)*sy - 0.5
		fy = min(max(fy, 0), float64(c-1))
		iy := min(int(fy), c-2)
		if c == 1 {
			iy = 0
		}
		dy := fy - float64(iy)
		for x := range s {
			xo := x
			if flip {
				xo = s - 1 - x
			}
			fx := x0 + (float64(xo)+0.5)*sx - 0.5
			fx = min(max(fx, 0), float64(c-1))
			ix := min(int(fx), c-2)
			if c == 1 {
				ix = 0
			}
			dx := fx - float64(ix)
			for ch := range 3 {
				p := src[ch*c*c:]
				at := func(yy, xx int) float64 { return float64(p[min(yy, c-1)*c+min(xx, c-1)]) }
				v := (at(iy, ix)*(1-dx)+at(iy, ix+1)*dx)*(1-dy) + (at(iy+1, ix)*(1-dx)+at(iy+1, ix+1)*dx)*dy
				dst[ch*plane+y*s+x] = float32(v / 255)
			}
		}
	}
	if j > 0 {
		// Brightness, then contrast around the mean grey, then saturation around each pixel's grey.
		var mean float64
		for k := range plane {
			r, g, b := dst[k], dst[plane+k], dst[2*plane+k]
			mean += 0.299*float64(r) + 0.587*float64(g) + 0.114*float64(b)
		}
		mean = mean / float64(plane) * bright
		for k := range plane {
			var v [3]float64
			for ch := range 3 {
				x := float64(dst[ch*plane+k]) * bright
				v[ch] = (x-mean)*contrast + mean
			}
			grey := 0.299*v[0] + 0.587*v[1] + 0.114*v[2]
			for ch := range 3 {
				dst[ch*plane+k] = float32(min(max(grey+(v[ch]-grey)*sat, 0), 1))
			}
		}
	}
	mean, std := w.o.Config.Mean, w.o.Config.Std
	for ch := range 3 {
		m, sd := mean[ch], std[ch]
		for k := range plane {
			dst[ch*plane+k] = (dst[ch*plane+k] - m) / sd
		}
	}
}

// PositionalDataset is a Dataset whose training examples depend on their position in the
// training stream (augmentation): Run calls ExampleAt(step·Batch + b, i, img) for training
// batches, and Example for evaluation.
type PositionalDataset interface {
	Dataset
	ExampleAt(pos, i int, img []float32) (Labels, error)
}

// Sampler returns the example indices of one epoch of the training stream (any length ≥ 1);
// it must be a pure function of (seed, epoch) so that a resumed run repeats it.
type Sampler func(seed int64, epoch int) []int

// BalancedSampler draws n indices per epoch with replacement, each index with probability
// proportional to 1/(count of its class) — PyTorch's WeightedRandomSampler with inverse class
// frequencies. Examples whose class is < 0 (absent) get the mean weight of the others.
func BalancedSampler(class []int) Sampler {
	counts := map[int]int{}
	for _, c := range class {
		if c >= 0 {
			counts[c]++
		}
	}
	w := make([]float64, len(class))
	var sum float64
	present := 0
	for i, c := range class {
		if c >= 0 {
			w[i] = 1 / float64(counts[c])
			sum += w[i]
			present++
		}
	}
	fill := 1.0
	if present > 0 {
		fill = sum / float64(present)
	}
	cum := make([]float64, len(class))
	var acc float64
	for i, c := range class {
		if c < 0 {
			w[i] = fill
		}
		acc += w[i]
		cum[i] = acc
	}
	return func(seed int64, epoch int) []int {
		rng := rand.New(rand.NewPCG(uint64(seed)^0xbb67ae8584caa73b, uint64(epoch)))
		out := make([]int, len(class))
		for k := range out {
			u := rng.Float64() * acc
			lo, hi := 0, len(cum)-1
			for lo < hi {
				mid := (lo + hi) / 2
				if cum[mid] > u {
					hi = mid
				} else {
					lo = mid + 1
				}
			}
			out[k] = lo
		}
		return out
	}
}
