package train

import (
	"bytes"
	"fmt"
	"image"
	"image/color"
	"image/png"
	"math"
	"math/rand/v2"
	"os"
	"path/filepath"

	"github.com/artnet/artnet/internal/atomicfile"
	"github.com/artnet/artnet/models/spec"
)

// Labels are one example's class indices in spec.Tasks order (style, genre, artist); −1 marks
// an absent label (masked out of the loss and of the accuracy).
type Labels [3]int32

// Dataset is a random-access set of labelled, preprocessed images. Random access (rather than
// an iterator) lets the trainer derive every batch from (seed, step) alone, so a resumed run
// sees exactly the batches an uninterrupted one would have seen.
type Dataset interface {
	// Len is the number of examples.
	Len() int
	// Example writes example i's image — RGB, NCHW without the batch axis (3·S·S float32,
	// S = the model's ImageSize), already normalized with the model's mean/std — into img
	// (len(img) == 3·S·S) and returns its labels. It may be called from several goroutines.
	Example(i int, img []float32) (Labels, error)
}

// Synthetic is a deterministic data set of generated pictures whose three labels can be read
// from the pixels:
//
//   - style (palette): class k of N has the colour pair (hue k/N, bright) and (hue k/N + 1/4,
//     dark); the stripes alternate between the two colours.
//   - genre (texture): class k's stripes have orientation (k mod 4)·45° and 3 + 2·⌊k/4⌋ cycles
//     per 32 pixels (per image side for sides ≤ 32: at 64 px, 3 cycles per side made stripes so
//     shallow per pixel that the noise hid them and spec.Tiny() did not learn the texture).
//   - artist (motif): one "spotlight" blob (radius ≈ 1/4 of the side) at a random position
//     (anywhere it fits) carries a soft glowing core (a Gaussian blend, σ = 0.8 × the blob's
//     radius, towards a pure colour on which the stripes go on as ±0.25 brightness) whose
//     colour is coreColours[k mod 8] (white, black, grey, red, blue, green, yellow,
//     magenta); classes beyond 8 combine it with the blob's shape, blobShapes[⌊k/8⌋ mod 3] (disc,
//     square, diamond), and make the blob 1.3× larger for every further 24 classes. Inside the
//     blob the palette and stripes are at full contrast and lifted; outside they are faded a
//     quarter of the way to grey.
//
// The artist cue is local and sits where the style and genre cues are clearest, so one
// attention map (on the blob) serves all three tasks and they are learned jointly. Two earlier
// designs were not: a blob position (a 3×3 grid cell) had to be carried through the BiLSTM and
// stayed at chance when trained with the other tasks, and sharp-edged motifs (white or black
// shape outlines, hard-edged cores) were learned but stopped the stripe texture from being
// learned (their edges swamp the stripes' in the first convolutions); hence the soft core, and
// the stripes continue through it (a core that hid them slowed the texture down as well).
//
// Noise keeps it from being trivial: random blob position and size (±8 %), random stripe
// phase, colour and brightness jitter, core colour jitter and Gaussian pixel noise (σ = 0.08 on
// the 0..1 scale). Example i depends only on (seed, i), and its labels are drawn uniformly.
type Synthetic struct {
	cfg  spec.Config
	n    int
	seed int64
}

// NewSynthetic returns n synthetic examples for cfg (its ImageSize, Mean/Std and class counts),
// deterministic for seed. Use different seeds for training and validation sets.
func NewSynthetic(cfg spec.Config, n int, seed int64) Dataset {
	return &Synthetic{cfg: cfg, n: max(n, 0), seed: seed}
}

// Len returns the number of examples.
func (s *Synthetic) Len() int { return s.n }

// Example renders example i (normalized NCHW) into img and returns its labels.
func (s *Synthetic) Example(i int, img []float32) (Labels, error) {
	if i < 0 || i >= s.n {
		return Labels{}, fmt.Errorf("synthetic example %d: out of range [0,%d)", i, s.n)
	}
	rng := rand.New(rand.NewPCG(uint64(s.seed), uint64(i)))
	var lb Labels
	for k, task := range spec.Tasks {
		n := s.cfg.NumClasses(task)
		if n < 1 {
			return Labels{}, fmt.Errorf("synthetic example %d: config has no classes for task %q", i, task)
		}
		lb[k] = int32(rng.IntN(n))
	}
	if err := renderSynthetic(s.cfg, lb, rng, img, true); err != nil {
		return Labels{}, fmt.Errorf("synthetic example %d: %w", i, err)
	}
	return lb, nil
}

// coreColours are the artist motif's core colours in class order (class k uses
// coreColours[k mod 8]); white, black and grey first, as they differ most from every palette
// (a saturated core can resemble the palette of some styles).
var coreColours = [8][3]float64{
	{1, 1, 1}, {0, 0, 0}, {0.5, 0.5, 0.5}, {1, 0.1, 0.1},
	{0.1, 0.3, 1}, {0.1, 0.9, 0.1}, {1, 0.95, 0.1}, {1, 0.1, 1},
}

// blobShapes names the spotlight blob's shapes in class order (class k uses
// blobShapes[⌊k/8⌋ mod 3]).
var blobShapes = [3]string{"disc", "square", "diamond"}

// inShape reports whether the offset (x, y) from the blob's centre, in units of its radius,
// lies inside shape s (an index into blobShapes).
func inShape(s int, x, y float64) bool {
	a, b := math.Abs(x), math.Abs(y)
	switch s {
	case 0: // disc
		return a*a+b*b <= 1
	case 1: // square
		return a <= 0.85 && b <= 0.85
	default: // diamond
		return a+b <= 1.15
	}
}

// hsv converts hue (turns), saturation and value in [0,1] to RGB.
func hsv(h, s, v float64) [3]float64 {
	h = h - math.Floor(h)
	h6 := h * 6
	c := v * s
	x := c * (1 - math.Abs(math.Mod(h6, 2)-1))
	var r, g, b float64
	switch int(h6) {
	case 0:
		r, g, b = c, x, 0
	case 1:
		r, g, b = x, c, 0
	case 2:
		r, g, b = 0, c, x
	case 3:
		r, g, b = 0, x, c
	case 4:
		r, g, b = x, 0, c
	default:
		r, g, b = c, 0, x
	}
	m := v - c
	return [3]float64{r + m, g + m, b + m}
}

// renderSynthetic draws the picture for labels lb into img (3·S·S, planar RGB). If normalize,
// values are (v − mean)/std; otherwise they are in 0..1.
func renderSynthetic(cfg spec.Config, lb Labels, rng *rand.Rand, img []float32, normalize bool) error {
	size := cfg.ImageSize
	if size < 8 {
		return fmt.Errorf("image_size %d too small for synthetic pictures (need ≥ 8)", size)
	}
	if len(img) != 3*size*size {
		return fmt.Errorf("image buffer has %d floats, want 3·%d·%d = %d", len(img), size, size, 3*size*size)
	}
	for k, task := range spec.Tasks {
		if n := cfg.NumClasses(task); lb[k] < 0 || int(lb[k]) >= n {
			return fmt.Errorf("%s class %d out of range [0,%d)", task, lb[k], n)
		}
	}
	for c := 0; c < 3; c++ {
		if normalize && !(cfg.Std[c] > 0) {
			return fmt.Errorf("config std[%d] = %g, must be > 0", c, cfg.Std[c])
		}
	}
	style, genre, artist := int(lb[0]), int(lb[1]), int(lb[2])

	// Palette.
	hue := float64(style)/float64(cfg.NumClasses("style")) + (rng.Float64()-0.5)*0.01
	c1 := hsv(hue, 0.85, 0.95)
	c2 := hsv(hue+0.25, 0.75, 0.35)
	bright := 0.9 + 0.2*rng.Float64()

	// Texture.
	theta := float64(genre%4) * math.Pi / 4
	cycles := (3 + 2*float64(genre/4)) * max(1, float64(size)/32)
	phase := rng.Float64() * 2 * math.Pi
	cosT, sinT := math.Cos(theta), math.Sin(theta)

	// Motif: core colour, blob shape and size, random position (the whole blob inside).
	S := float64(size)
	nc := len(coreColours)
	var core [3]float64
	for c := range core {
		core[c] = min(max(coreColours[artist%nc][c]+(rng.Float64()-0.5)*0.1, 0), 1)
	}
	shape := (artist / nc) % len(blobShapes)
	scale := math.Pow(1.3, float64(artist/(nc*len(blobShapes))))
	radius := (0.25 + 0.04*(rng.Float64()-0.5)) * scale * S
	lo, hi := radius+1, S-radius-1
	cx, cy := S/2, S/2
	if hi > lo {
		cx, cy = lo+(hi-lo)*rng.Float64(), lo+(hi-lo)*rng.Float64()
	}
	sigma2 := 2 * (0.8 * radius) * (0.8 * radius)

	plane := size * size
	for y := 0; y < size; y++ {
		for x := 0; x < size; x++ {
			u := (float64(x) + 0.5) / S
			v := (float64(y) + 0.5) / S
			t := 0.5 + 0.5*math.Sin(2*math.Pi*cycles*(u*cosT+v*sinT)+phase)
			dx, dy := float64(x)+0.5-cx, float64(y)+0.5-cy
			inside := inShape(shape, dx/radius, dy/radius)
			glow := 0.95 * math.Exp(-(dx*dx+dy*dy)/sigma2)
			for c := 0; c < 3; c++ {
				val := (t*c1[c] + (1-t)*c2[c]) * bright
				if inside {
					// The blob is a lit "spotlight": full-contrast palette and stripes, lifted,
					// blending into the glowing core at its centre, through which the stripes
					// continue as a brightness modulation.
					val = min(val+0.15, 1)
					val = (1-glow)*val + glow*(core[c]+0.5*(t-0.5))
				} else {
					// Outside it the picture is faded a quarter of the way to grey.
					val = 0.75*val + 0.125
				}
				val += rng.NormFloat64() * 0.08
				val = min(max(val, 0), 1)
				if normalize {
					val = (val - float64(cfg.Mean[c])) / float64(cfg.Std[c])
				}
				img[c*plane+y*size+x] = float32(val)
			}
		}
	}
	return nil
}

// SyntheticImage renders the synthetic picture of the given classes (noise drawn from seed) as
// an RGB image of cfg.ImageSize × cfg.ImageSize pixels.
func SyntheticImage(cfg spec.Config, styleIdx, genreIdx, artistIdx int, seed int64) (image.Image, error) {
	size := cfg.ImageSize
	if size < 8 || size > 4096 {
		return nil, fmt.Errorf("synthetic image: image_size %d out of range [8,4096]", size)
	}
	lb := Labels{int32(styleIdx), int32(genreIdx), int32(artistIdx)}
	buf := make([]float32, 3*size*size)
	rng := rand.New(rand.NewPCG(uint64(seed), 0x5eed))
	if err := renderSynthetic(cfg, lb, rng, buf, false); err != nil {
		return nil, fmt.Errorf("synthetic image: %w", err)
	}
	im := image.NewRGBA(image.Rect(0, 0, size, size))
	plane := size * size
	for y := 0; y < size; y++ {
		for x := 0; x < size; x++ {
			p := y*size + x
			im.SetRGBA(x, y, color.RGBA{
				R: uint8(math.Round(float64(buf[p]) * 255)),
				G: uint8(math.Round(float64(buf[plane+p]) * 255)),
				B: uint8(math.Round(float64(buf[2*plane+p]) * 255)),
				A: 255,
			})
		}
	}
	return im, nil
}

// SaveSyntheticPNG writes the synthetic picture of the given classes as a PNG file at path
// (atomically: a temporary file in the same folder, then rename).
func SaveSyntheticPNG(path string, cfg spec.Config, styleIdx, genreIdx, artistIdx int, seed int64) error {
	im, err := SyntheticImage(cfg, styleIdx, genreIdx, artistIdx, seed)
	if err != nil {
		return fmt.Errorf("%s: %w", path, err)
	}
	var b bytes.Buffer
	if err := png.Encode(&b, im); err != nil {
		return fmt.Errorf("%s: encoding PNG: %w", path, err)
	}
	return atomicfile.WriteFile(path, b.Bytes(), 0o644)
}

// SyntheticConfig is the model `artnet train --synthetic` trains: spec.Tiny() with class names
// that say what the synthetic label is read from (palette, texture, layout).
func SyntheticConfig(styles, genres, artists int) spec.Config {
	c := spec.Tiny()
	c.Classes = map[string][]string{
		spec.TaskStyle:  spec.Numbered("palette", styles),
		spec.TaskGenre:  spec.Numbered("texture", genres),
		spec.TaskArtist: spec.Numbered("layout", artists),
	}
	return c
}

// WriteSyntheticSamples writes n labelled synthetic images into out/samples, named by their
// labels (for trying `artnet predict` on a synthetic model).
func WriteSyntheticSamples(out string, cfg spec.Config, n int, seed int64) error {
	if n <= 0 {
		return nil
	}
	dir := filepath.Join(out, "samples")
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return err
	}
	for i := 0; i < n; i++ {
		s := (i * 7) % cfg.NumClasses(spec.TaskStyle)
		g := (i * 3) % cfg.NumClasses(spec.TaskGenre)
		a := (i * 5) % cfg.NumClasses(spec.TaskArtist)
		name := fmt.Sprintf("%s_%s_%s.png", cfg.Classes[spec.TaskStyle][s], cfg.Classes[spec.TaskGenre][g], cfg.Classes[spec.TaskArtist][a])
		if err := SaveSyntheticPNG(filepath.Join(dir, name), cfg, s, g, a, seed+int64(i)); err != nil {
			return err
		}
	}
	return nil
}
