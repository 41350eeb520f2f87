// Package heatmap draws a DeepArtNet attention vector over the painting it was computed on.
//
// The model sees only the centre crop of the resized image (preprocess.CropBox gives where that
// crop lies in the original) and attends over an H'×W' grid of tokens read row-major. Overlay
// upsamples the token weights smoothly (separable bicubic, Catmull-Rom, edges clamped) to the
// crop rectangle of the original image, maps them through the inferno colour map (perceptually
// uniform, monotone in lightness) and alpha-blends the colours over the image; the part of the
// image outside the crop, which the model never saw, is dimmed. EncodePNG writes the result.
package heatmap

import (
	"image"
	"image/color"
	"image/draw"
	"image/png"
	"io"
	"math"
)

// inferno is matplotlib's inferno colour map sampled at 10 evenly spaced points (0, 1/9, …, 1);
// Colormap interpolates linearly between them.
var inferno = [...][3]uint8{
	{0x00, 0x00, 0x04}, {0x1b, 0x0c, 0x42}, {0x4b, 0x0c, 0x6b}, {0x78, 0x1c, 0x6d}, {0xa5, 0x2c, 0x60},
	{0xcf, 0x44, 0x46}, {0xed, 0x69, 0x25}, {0xfb, 0x9a, 0x06}, {0xf7, 0xd0, 0x3c}, {0xfc, 0xff, 0xa4},
}

// Colormap returns the inferno colour of v in [0, 1] (values outside are clamped, NaN is 0).
func Colormap(v float64) color.RGBA {
	if !(v > 0) {
		v = 0
	}
	if v > 1 {
		v = 1
	}
	x := v * float64(len(inferno)-1)
	i := int(x)
	if i >= len(inferno)-1 {
		i = len(inferno) - 2
	}
	f := x - float64(i)
	a, b := inferno[i], inferno[i+1]
	var c [3]uint8
	for k := range c {
		c[k] = uint8(math.Round(float64(a[k])*(1-f) + float64(b[k])*f))
	}
	return color.RGBA{c[0], c[1], c[2], 255}
}

// Blending: the colour's opacity grows with the weight, so that the painting stays visible where
// the model did not look.
const (
	alphaMin = 0.30
	alphaMax = 0.80
	dimOut   = 0.45 // brightness kept outside the crop
)

// Overlay returns a copy of img (same bounds) with the attention weights (gridH×gridW tokens,
// row-major) drawn over crop, the rectangle of img the model saw (see preprocess.CropBox), and
// the rest of the image dimmed. Weights are min-max normalized, so the most attended token is
// the hottest colour; NaN weights count as the minimum. If crop does not overlap img, the whole
// image is used. If len(weights) != gridH·gridW or the grid is empty, the copy has no heatmap
// (only the dimming outside crop).
func Overlay(img image.Image, weights []float32, gridH, gridW int, crop image.Rectangle) *image.RGBA {
	b := img.Bounds()
	out := image.NewRGBA(b)
	draw.Draw(out, b, img, b.Min, draw.Src)
	crop = crop.Intersect(b)
	if crop.Empty() {
		crop = b
	}
	if crop.Empty() {
		return out
	}
	dimOutside(out, crop)
	if gridH <= 0 || gridW <= 0 || len(weights) != gridH*gridW {
		return out
	}
	norm := normalize(weights)
	cw, ch := crop.Dx(), crop.Dy()
	// Separable bicubic: first along x for every grid row (gridH × cw), then along y.
	wx := cubicTaps(gridW, cw)
	wy := cubicTaps(gridH, ch)
	rows := make([]float64, gridH*cw)
	for gy := 0; gy < gridH; gy++ {
		src := norm[gy*gridW : (gy+1)*gridW]
		for x := 0; x < cw; x++ {
			rows[gy*cw+x] = wx[x].apply(src, 1)
		}
	}
	var lut [256]color.RGBA
	for i := range lut {
		lut[i] = Colormap(float64(i) / 255)
	}
	for y := 0; y < ch; y++ {
		t := wy[y]
		line := out.Pix[out.PixOffset(crop.Min.X, crop.Min.Y+y):]
		for x := 0; x < cw; x++ {
			v := t.apply(rows[x:], cw)
			v = math.Min(1, math.Max(0, v))
			c := lut[int(v*255+0.5)]
			a := alphaMin + (alphaMax-alphaMin)*v
			p := line[4*x : 4*x+4 : 4*x+4]
			p[0] = blend(p[0], c.R, a)
			p[1] = blend(p[1], c.G, a)
			p[2] = blend(p[2], c.B, a)
			p[3] = 255
		}
	}
	return out
}

func blend(under, over uint8, a float64) uint8 {
	return uint8(float64(under)*(1-a) + float64(over)*a + 0.5)
}

// dimOutside darkens every pixel of m outside crop and makes the whole image opaque.
func dimOutside(m *image.RGBA, crop image.Rectangle) {
	b := m.Rect
	for y := b.Min.Y; y < b.Max.Y; y++ {
		line := m.Pix[m.PixOffset(b.Min.X, y):]
		for x := 0; x < b.Dx(); x++ {
			p := line[4*x : 4*x+4 : 4*x+4]
			if !image.Pt(b.Min.X+x, y).In(crop) {
				p[0] = uint8(float64(p[0]) * dimOut)
				p[1] = uint8(float64(p[1]) * dimOut)
				p[2] = uint8(float64(p[2]) * dimOut)
			}
			p[3] = 255
		}
	}
}

// normalize maps weights to [0, 1] by min-max (all equal → all 0.5); NaN → 0.
func normalize(w []float32) []float64 {
	lo, hi := math.Inf(1), math.Inf(-1)
	for _, v := range w {
		f := float64(v)
		if math.IsNaN(f) || math.IsInf(f, 0) {
			continue
		}
		lo, hi = math.Min(lo, f), math.Max(hi, f)
	}
	out := make([]float64, len(w))
	for i, v := range w {
		f := float64(v)
		switch {
		case math.IsNaN(f) || math.IsInf(f, 0) || !(hi >= lo):
			out[i] = 0
		case hi == lo:
			out[i] = 0.5
		default:
			out[i] = (f - lo) / (hi - lo)
		}
	}
	return out
}

// taps are the 4 source indices and weights of one output sample.
type taps struct {
	idx [4]int
	w   [4]float64
}

// apply returns Σ w_k·src[idx_k·stride].
func (t taps) apply(src []float64, stride int) float64 {
	return t.w[0]*src[t.idx[0]*stride] + t.w[1]*src[t.idx[1]*stride] + t.w[2]*src[t.idx[2]*stride] + t.w[3]*src[t.idx[3]*stride]
}

// cubicTaps returns, for each of out output pixels, the Catmull-Rom taps over n grid cells,
// with pixel and cell centres aligned (half-pixel convention) and edges clamped.
func cubicTaps(n, out int) []taps {
	t := make([]taps, out)
	scale := float64(n) / float64(out)
	for i := range t {
		s := (float64(i)+0.5)*scale - 0.5
		s0 := math.Floor(s)
		f := s - s0
		for k := 0; k < 4; k++ {
			j := int(s0) - 1 + k
			t[i].idx[k] = min(max(j, 0), n-1)
			t[i].w[k] = catmullRom(float64(k-1) - f)
		}
	}
	return t
}

// catmullRom is the cubic convolution kernel with a = -0.5.
func catmullRom(x float64) float64 {
	x = math.Abs(x)
	switch {
	case x < 1:
		return 1.5*x*x*x - 2.5*x*x + 1
	case x < 2:
		return -0.5*x*x*x + 2.5*x*x - 4*x + 2
	}
	return 0
}

// EncodePNG writes img as a PNG, favouring speed over size (it is made per request).
func EncodePNG(w io.Writer, img image.Image) error {
	enc := png.Encoder{CompressionLevel: png.BestSpeed}
	return enc.Encode(w, img)
}
