package train

import (
	"bufio"
	"context"
	"fmt"
	"image"
	"math"
	"math/rand/v2"
	"os"
	"runtime"
	"slices"

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
	// Augment selects the training transform — torchvision's RandomResizedCrop(ImageSize,
	// scale=(MinScale, 1), ratio=(3/4, 4/3)) on the decoded image at its own size and aspect
	// ratio, RandomHorizontalFlip, then brightness/contrast/saturation jitter — seeded by
	// (Seed, stream position, index); false selects the evaluation transform (resize the shorter
	// side to ResizeSize, centre-crop ImageSize, exactly as predict does).
	Augment bool
	// Seed seeds the augmentation.
	Seed int64
	// MinScale is the smallest area fraction of a random resized crop (0 → 0.35).
	MinScale float64
	// Jitter is the colour jitter strength: brightness, contrast and saturation factors are drawn
	// from [1−Jitter, 1+Jitter] (0 → no jitter; negative is an error).
	Jitter float64
	// Cache, when set, keeps decoded images (8-bit) within its memory budget; it may be shared by
	// several data sets. Nil decodes every image each time it is used.
	Cache *ImageCache
	// Workers check the image headers in parallel in NewWikiArt (0 → GOMAXPROCS).
	Workers int
	// Policy, when Augment is set, adds TrivialAugment (AugmentTrivial) or RandAugment
	// (AugmentRand) on the 8-bit crop after the jitter, before normalization ("": none).
	Policy string
	// RandomErasing, when Augment is set, is the probability of timm's random erasing of one
	// rectangle after normalization (0: none).
	RandomErasing float64
}

// WikiArt is a Dataset over WikiArt samples that decodes its images as they are asked for
// (through Cache when one is given): its memory does not grow with the number of samples
// beyond the samples themselves.
type WikiArt struct {
	o       WikiArtOptions
	samples []wikiart.Sample
	decode  preprocess.Options
}

// NewWikiArt checks every sample's image header (in parallel; the pixels are decoded later, as
// examples are read): a file that is not an image of a known format is an error naming it.
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
	if o.Workers <= 0 {
		o.Workers = runtime.GOMAXPROCS(0)
	}
	if o.Policy != "" && o.Policy != AugmentTrivial && o.Policy != AugmentRand {
		return nil, fmt.Errorf("wikiart data set: augment policy %q: want %s, %s or empty", o.Policy, AugmentTrivial, AugmentRand)
	}
	if !(o.RandomErasing >= 0 && o.RandomErasing <= 1) {
		return nil, fmt.Errorf("wikiart data set: RandomErasing must be in [0,1], got %g", o.RandomErasing)
	}
	w := &WikiArt{o: o, samples: samples, decode: preprocess.FromConfig(o.Config)}
	errs := make([]error, len(samples))
	if err := forEach(ctx, len(samples), min(o.Workers, max(len(samples), 1)), func() func(int) {
		return func(i int) { errs[i] = checkHeader(samples[i].File(o.Images)) }
	}); err != nil {
		return nil, fmt.Errorf("wikiart data set: %w", err)
	}
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
	if n > 0 {
		return nil, fmt.Errorf("wikiart data set: %d of %d images are not readable images; first: %v", n, len(samples), first)
	}
	return w, nil
}

// checkHeader reads only the image header of path.
func checkHeader(path string) error {
	f, err := os.Open(path)
	if err != nil {
		return err
	}
	defer f.Close()
	if _, _, err := image.DecodeConfig(bufio.NewReaderSize(f, 4096)); err != nil {
		return fmt.Errorf("%s: %w", path, err)
	}
	return nil
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

// image returns sample i's decoded image (EXIF-oriented, opaque, at the origin), from the
// cache when it holds it.
func (w *WikiArt) image(i int) (*image.RGBA, error) {
	path := w.samples[i].File(w.o.Images)
	if m := w.o.Cache.get(path); m != nil {
		return m, nil
	}
	m, err := preprocess.DecodeImageFile(path, w.decode)
	if err != nil {
		return nil, err
	}
	return w.o.Cache.put(path, m), nil
}

// Example writes sample i with the evaluation transform (or, for an augmenting set, the
// augmentation of stream position 0).
func (w *WikiArt) Example(i int, img []float32) (Labels, error) { return w.ExampleAt(0, i, img) }

// ExampleAt writes sample i as seen at position pos of the training stream (step·batch + b):
// the augmentation is a function of (Seed, pos, i) and the image only, so a resumed run repeats
// it exactly (whether or not the image came from the cache).
func (w *WikiArt) ExampleAt(pos, i int, img []float32) (Labels, error) {
	if i < 0 || i >= len(w.samples) {
		return Labels{}, fmt.Errorf("wikiart example %d: out of range [0,%d)", i, len(w.samples))
	}
	s := w.o.Config.ImageSize
	if len(img) != 3*s*s {
		return Labels{}, fmt.Errorf("wikiart example %d: image buffer has %d values, want %d", i, len(img), 3*s*s)
	}
	m, err := w.image(i)
	if err != nil {
		return Labels{}, err
	}
	if !w.o.Augment {
		preprocess.ToTensorInto(img, m, w.decode)
		return w.labels(i), nil
	}
	rng := rand.New(rand.NewPCG(uint64(w.o.Seed)^0x3c6ef372fe94f82b, uint64(pos)<<24^uint64(i)))
	w.augment(rng, m, img)
	if w.o.Policy != "" || w.o.RandomErasing > 0 {
		// A stream of their own: the crop, flip and jitter draws stay those of a run without.
		rrng := rand.New(rand.NewPCG(uint64(w.o.Seed)^0xa54ff53a5f1d36f1, uint64(pos)<<24^uint64(i)))
		if w.o.Policy != "" {
			w.denormalize(img)
			applyAugment(img, s, drawAugment(rrng, w.o.Policy, s))
			w.normalize(img)
		}
		randomErase(rrng, img, s, w.o.RandomErasing)
	}
	return w.labels(i), nil
}

// RandomResizedCropBox is torchvision 0.14's RandomResizedCrop.get_params for a w×h image:
// up to 10 tries of an area fraction uniform in [minScale, 1] and a log-uniform aspect ratio
// in [3/4, 4/3] (sides rounded half to even, as Python's round), the crop's corner uniform
// over the positions where it fits; else the centre crop of the whole image clamped to that
// ratio range.
func RandomResizedCropBox(rng *rand.Rand, w, h int, minScale float64) image.Rectangle {
	const rmin, rmax = 3.0 / 4, 4.0 / 3
	area := float64(w * h)
	for range 10 {
		a := area * (minScale + (1-minScale)*rng.Float64())
		r := math.Exp(math.Log(rmin) + (math.Log(rmax)-math.Log(rmin))*rng.Float64())
		cw := int(math.RoundToEven(math.Sqrt(a * r)))
		ch := int(math.RoundToEven(math.Sqrt(a / r)))
		if cw > 0 && cw <= w && ch > 0 && ch <= h {
			y := rng.IntN(h - ch + 1)
			x := rng.IntN(w - cw + 1)
			return image.Rect(x, y, x+cw, y+ch)
		}
	}
	cw, ch := w, h
	switch in := float64(w) / float64(h); {
	case in < rmin:
		ch = int(math.RoundToEven(float64(cw) / rmin))
	case in > rmax:
		cw = int(math.RoundToEven(float64(ch) * rmax))
	}
	x, y := (w-cw)/2, (h-ch)/2
	return image.Rect(x, y, x+cw, y+ch)
}

// augment is RandomResizedCrop(ImageSize) on m at its own size (the crop resized with Pillow's
// antialiased bilinear filter, as torchvision does to PIL images), a horizontal flip with
// probability ½, and brightness/contrast/saturation jitter, then normalization with the
// config's mean/std.
func (w *WikiArt) augment(rng *rand.Rand, m *image.RGBA, dst []float32) {
	s := w.o.Config.ImageSize
	box := RandomResizedCropBox(rng, m.Rect.Dx(), m.Rect.Dy(), w.o.MinScale)
	flip := rng.IntN(2) == 1
	j := w.o.Jitter
	bright, contrast, sat := 1+j*(2*rng.Float64()-1), 1+j*(2*rng.Float64()-1), 1+j*(2*rng.Float64()-1)

	preprocess.ResizeInto(dst, m.SubImage(box), s, [3]float32{}, [3]float32{1, 1, 1})
	plane := s * s
	if flip {
		for ch := range 3 {
			for y := range s {
				row := dst[ch*plane+y*s : ch*plane+(y+1)*s]
				slices.Reverse(row)
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
	w.normalize(dst)
}

// normalize maps [0,1] pixels of the [3,S,S] image to the config's normalization.
func (w *WikiArt) normalize(dst []float32) {
	mean, std := w.o.Config.Mean, w.o.Config.Std
	plane := len(dst) / 3
	for ch := range 3 {
		m, sd := mean[ch], std[ch]
		for k := range plane {
			dst[ch*plane+k] = (dst[ch*plane+k] - m) / sd
		}
	}
}

// denormalize is normalize's inverse (back to [0,1]).
func (w *WikiArt) denormalize(dst []float32) {
	mean, std := w.o.Config.Mean, w.o.Config.Std
	plane := len(dst) / 3
	for ch := range 3 {
		m, sd := mean[ch], std[ch]
		for k := range plane {
			dst[ch*plane+k] = dst[ch*plane+k]*sd + m
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
