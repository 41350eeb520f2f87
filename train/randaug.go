package train

// TrivialAugment (Müller & Hutter 2021, torchvision's TrivialAugmentWide) and RandAugment
// (Cubuk et al. 2020, torchvision's RandAugment(num_ops=2, magnitude=9)) on the 8-bit
// training crop, and timm's RandomErasing on the normalized one. Both are drawn from a random
// stream of their own seeded by (seed, stream position, example), so they are as
// deterministic as the rest of the augmentation (WikiArt.ExampleAt) and leave the crop, flip
// and jitter draws of a run without them unchanged.
//
// The operations and magnitude ranges are torchvision 0.14's; the pixel arithmetic is artnet's
// own (nearest-neighbour geometry filled with black, PIL's enhance blends, PIL-like equalize),
// not bit-exact with Pillow. Translations are a fraction of the image side (torchvision's 32 px
// of a 224 px image for TrivialAugment, 150/331 for RandAugment).

import (
	"math"
	"math/rand/v2"
)

// Augment policies (data.augment).
const (
	AugmentTrivial = "trivial"
	AugmentRand    = "randaugment"
)

// augOp is one of the image operations.
type augOp int

const (
	opIdentity augOp = iota
	opShearX
	opShearY
	opTranslateX
	opTranslateY
	opRotate
	opBrightness
	opColor
	opContrast
	opSharpness
	opPosterize
	opSolarize
	opAutoContrast
	opEqualize
	numAugOps
)

var augOpNames = [numAugOps]string{"Identity", "ShearX", "ShearY", "TranslateX", "TranslateY", "Rotate",
	"Brightness", "Color", "Contrast", "Sharpness", "Posterize", "Solarize", "AutoContrast", "Equalize"}

func (op augOp) String() string { return augOpNames[op] }

const augBins = 31

// augStep is one drawn operation with its magnitude (already signed where the op is).
type augStep struct {
	op  augOp
	mag float64
}

// augMagnitude is the magnitude of op at bin (0..30) of the policy's range, for a size×size
// image: shear (tan), translation (pixels), rotation (degrees), enhance (factor − 1),
// posterize (bits kept), solarize (threshold).
func augMagnitude(policy string, op augOp, bin, size int) float64 {
	wide := policy == AugmentTrivial
	lin := func(hi float64) float64 { return hi * float64(bin) / (augBins - 1) }
	switch op {
	case opShearX, opShearY:
		if wide {
			return lin(0.99)
		}
		return lin(0.3)
	case opTranslateX, opTranslateY:
		if wide {
			return lin(32.0 / 224 * float64(size))
		}
		return lin(150.0 / 331 * float64(size))
	case opRotate:
		if wide {
			return lin(135)
		}
		return lin(30)
	case opBrightness, opColor, opContrast, opSharpness:
		if wide {
			return lin(0.99)
		}
		return lin(0.9)
	case opPosterize:
		if wide {
			return 8 - math.RoundToEven(float64(bin)/((augBins-1)/6.0))
		}
		return 8 - math.RoundToEven(float64(bin)/((augBins-1)/4.0))
	case opSolarize:
		return 255 - lin(255)
	}
	return 0
}

func signed(op augOp) bool {
	switch op {
	case opShearX, opShearY, opTranslateX, opTranslateY, opRotate, opBrightness, opColor, opContrast, opSharpness:
		return true
	}
	return false
}

// drawAugment returns the operations the policy applies: TrivialAugment one op with a uniform
// magnitude bin, RandAugment two ops at bin 9; signed ops get a random sign.
func drawAugment(rng *rand.Rand, policy string, size int) []augStep {
	n, fixedBin := 1, -1
	if policy == AugmentRand {
		n, fixedBin = 2, 9
	}
	out := make([]augStep, n)
	for k := range out {
		op := augOp(rng.IntN(int(numAugOps)))
		bin := fixedBin
		if bin < 0 {
			bin = rng.IntN(augBins)
		}
		mag := augMagnitude(policy, op, bin, size)
		if signed(op) && rng.IntN(2) == 0 {
			mag = -mag
		}
		out[k] = augStep{op, mag}
	}
	return out
}

// applyAugment applies the steps to the [3,S,S] image x in [0,1] through its 8-bit form.
func applyAugment(x []float32, size int, steps []augStep) {
	img := make([]uint8, len(x))
	for i, v := range x {
		img[i] = uint8(min(max(math.Round(float64(v)*255), 0), 255))
	}
	for _, s := range steps {
		img = applyOp(img, size, s.op, s.mag)
	}
	for i, v := range img {
		x[i] = float32(v) / 255
	}
}

// applyOp applies one operation to the 8-bit [3,S,S] image and returns the result (img itself
// or a new buffer).
func applyOp(img []uint8, size int, op augOp, mag float64) []uint8 {
	plane := size * size
	clamp := func(v float64) uint8 { return uint8(min(max(math.Round(v), 0), 255)) }
	switch op {
	case opShearX, opShearY, opTranslateX, opTranslateY, opRotate:
		return warp(img, size, op, mag)
	case opBrightness: // blend with black
		for i, v := range img {
			img[i] = clamp(float64(v) * (1 + mag))
		}
	case opColor: // blend with the grey image
		f := 1 + mag
		for k := range plane {
			gr := grey(img, plane, k)
			for ch := range 3 {
				v := float64(img[ch*plane+k])
				img[ch*plane+k] = clamp(gr + f*(v-gr))
			}
		}
	case opContrast: // blend with the mean grey
		var mean float64
		for k := range plane {
			mean += math.Round(grey(img, plane, k))
		}
		mean = math.Round(mean / float64(plane))
		for i, v := range img {
			img[i] = clamp(mean + (1+mag)*(float64(v)-mean))
		}
	case opSharpness: // blend with PIL's SMOOTH filter (borders kept)
		out := append([]uint8(nil), img...)
		for ch := range 3 {
			p := img[ch*plane : (ch+1)*plane]
			for y := 1; y < size-1; y++ {
				for x := 1; x < size-1; x++ {
					var s float64
					for dy := -1; dy <= 1; dy++ {
						for dx := -1; dx <= 1; dx++ {
							w := 1.0
							if dx == 0 && dy == 0 {
								w = 5
							}
							s += w * float64(p[(y+dy)*size+x+dx])
						}
					}
					sm := math.Round(s / 13)
					out[ch*plane+y*size+x] = clamp(sm + (1+mag)*(float64(p[y*size+x])-sm))
				}
			}
		}
		return out
	case opPosterize:
		mask := ^uint8(1<<(8-int(mag)) - 1)
		for i := range img {
			img[i] &= mask
		}
	case opSolarize:
		for i, v := range img {
			if float64(v) >= mag {
				img[i] = 255 - v
			}
		}
	case opAutoContrast:
		for ch := range 3 {
			p := img[ch*plane : (ch+1)*plane]
			lo, hi := uint8(255), uint8(0)
			for _, v := range p {
				lo, hi = min(lo, v), max(hi, v)
			}
			if hi > lo {
				scale := 255 / float64(hi-lo)
				for i, v := range p {
					p[i] = clamp(float64(v-lo) * scale)
				}
			}
		}
	case opEqualize:
		for ch := range 3 {
			equalize(img[ch*plane : (ch+1)*plane])
		}
	}
	return img
}

func grey(img []uint8, plane, k int) float64 {
	return 0.299*float64(img[k]) + 0.587*float64(img[plane+k]) + 0.114*float64(img[2*plane+k])
}

// equalize is PIL's ImageOps.equalize on one channel: a lookup table that spreads the
// cumulative histogram (without its last non-empty bin) over 0..255.
func equalize(p []uint8) {
	var hist [256]int
	for _, v := range p {
		hist[v]++
	}
	last := 0
	for v := 255; v >= 0; v-- {
		if hist[v] > 0 {
			last = hist[v]
			break
		}
	}
	step := (len(p) - last) / 255
	if step == 0 {
		return
	}
	var lut [256]uint8
	n := step / 2
	for v := range 256 {
		lut[v] = uint8(min(n/step, 255))
		n += hist[v]
	}
	for i, v := range p {
		p[i] = lut[v]
	}
}

// warp is the geometric operations with nearest-neighbour sampling, black outside the image:
// shears about the top-left corner (as torchvision), rotation about the centre, translation by
// mag pixels.
func warp(img []uint8, size int, op augOp, mag float64) []uint8 {
	out := make([]uint8, len(img))
	plane := size * size
	c := float64(size-1) / 2
	sin, cos := math.Sincos(mag * math.Pi / 180)
	for y := range size {
		for x := range size {
			sx, sy := float64(x), float64(y) // the source of output pixel (x, y)
			switch op {
			case opShearX:
				sx = float64(x) + mag*float64(y)
			case opShearY:
				sy = float64(y) + mag*float64(x)
			case opTranslateX:
				sx = float64(x) - mag
			case opTranslateY:
				sy = float64(y) - mag
			case opRotate:
				dx, dy := float64(x)-c, float64(y)-c
				sx, sy = cos*dx-sin*dy+c, sin*dx+cos*dy+c
			}
			ix, iy := int(math.Round(sx)), int(math.Round(sy))
			if ix < 0 || iy < 0 || ix >= size || iy >= size {
				continue
			}
			for ch := range 3 {
				out[ch*plane+y*size+x] = img[ch*plane+iy*size+ix]
			}
		}
	}
	return out
}

// randomErase is timm's RandomErasing(probability p, mode "pixel", one rectangle) on the
// normalized [3,S,S] image x: with probability p, a rectangle of 2%–33% of the image with
// aspect ratio in [0.3, 3.3] (log-uniform; up to 10 tries to fit) is filled with N(0,1) noise
// per pixel and channel. It returns the rectangle (empty when nothing was erased).
func randomErase(rng *rand.Rand, x []float32, size int, p float64) (top, left, h, w int) {
	if p <= 0 || rng.Float64() >= p {
		return 0, 0, 0, 0
	}
	area := float64(size * size)
	lo, hi := math.Log(0.3), math.Log(1/0.3)
	for range 10 {
		target := area * (0.02 + (1.0/3-0.02)*rng.Float64())
		ar := math.Exp(lo + (hi-lo)*rng.Float64())
		h = int(math.Round(math.Sqrt(target * ar)))
		w = int(math.Round(math.Sqrt(target / ar)))
		if w < size && h < size && w > 0 && h > 0 {
			top, left = rng.IntN(size-h+1), rng.IntN(size-w+1)
			plane := size * size
			for ch := range 3 {
				for y := top; y < top+h; y++ {
					for xx := left; xx < left+w; xx++ {
						x[ch*plane+y*size+xx] = float32(rng.NormFloat64())
					}
				}
			}
			return top, left, h, w
		}
	}
	return 0, 0, 0, 0
}
