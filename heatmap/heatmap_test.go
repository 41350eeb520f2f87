package heatmap

import (
	"bytes"
	"image"
	"image/color"
	"image/png"
	"math"
	"os"
	"path/filepath"
	"testing"

	"github.com/artnet/artnet/internal/testenv"
	"github.com/artnet/artnet/preprocess"
)

func solid(w, h int, c color.RGBA) *image.RGBA {
	m := image.NewRGBA(image.Rect(0, 0, w, h))
	for i := 0; i < len(m.Pix); i += 4 {
		m.Pix[i], m.Pix[i+1], m.Pix[i+2], m.Pix[i+3] = c.R, c.G, c.B, c.A
	}
	return m
}

func lum(c color.RGBA) float64 {
	return 0.2126*float64(c.R) + 0.7152*float64(c.G) + 0.0722*float64(c.B)
}

// On a black image the overlay's brightness is the colour map's, which grows with the weight:
// the brightest pixel must lie in the cell of the one peaked token, for every token.
func TestPeakIsHottest(t *testing.T) {
	const gh, gw = 4, 5
	img := solid(120, 90, color.RGBA{0, 0, 0, 255})
	crop := image.Rect(12, 7, 112, 87)
	for tok := 0; tok < gh*gw; tok++ {
		w := make([]float32, gh*gw)
		for i := range w {
			w[i] = 0.01
		}
		w[tok] = 0.9
		out := Overlay(img, w, gh, gw, crop)
		best, bestP := -1.0, image.Point{}
		for y := 0; y < 90; y++ {
			for x := 0; x < 120; x++ {
				if l := lum(out.RGBAAt(x, y)); l > best {
					best, bestP = l, image.Pt(x, y)
				}
			}
		}
		gy, gx := tok/gw, tok%gw
		cell := image.Rect(
			crop.Min.X+gx*crop.Dx()/gw, crop.Min.Y+gy*crop.Dy()/gh,
			crop.Min.X+(gx+1)*crop.Dx()/gw, crop.Min.Y+(gy+1)*crop.Dy()/gh)
		if !bestP.In(cell) {
			t.Errorf("token %d (row %d col %d): hottest pixel %v is outside its cell %v", tok, gy, gx, bestP, cell)
		}
		// The cell centre is (nearly) the top of the colour map, a far cell is dark.
		c := out.RGBAAt((cell.Min.X+cell.Max.X)/2, (cell.Min.Y+cell.Max.Y)/2)
		if lum(c) < 0.6*lum(Colormap(1)) {
			t.Errorf("token %d: centre colour %v is not hot", tok, c)
		}
	}
}

func TestSizeAndOutsideCrop(t *testing.T) {
	img := solid(37, 23, color.RGBA{200, 100, 50, 255})
	crop := image.Rect(5, 0, 28, 23)
	out := Overlay(img, []float32{1, 2, 3, 4}, 2, 2, crop)
	if out.Bounds() != img.Bounds() {
		t.Fatalf("bounds %v, want %v", out.Bounds(), img.Bounds())
	}
	// Outside the crop: dimmed original, opaque.
	if got, want := out.RGBAAt(1, 1), (color.RGBA{90, 45, 22, 255}); got != want {
		t.Errorf("outside crop: %v, want %v", got, want)
	}
	// Inside: changed from the original.
	if out.RGBAAt(15, 10) == img.RGBAAt(15, 10) {
		t.Errorf("inside crop: pixel unchanged")
	}
	// Bounds not at the origin are kept.
	sub := img.SubImage(image.Rect(3, 4, 30, 20))
	out2 := Overlay(sub, []float32{1, 2, 3, 4}, 2, 2, image.Rect(0, 0, 100, 100))
	if out2.Bounds() != sub.Bounds() {
		t.Fatalf("sub-image bounds %v, want %v", out2.Bounds(), sub.Bounds())
	}
}

func TestBadWeightsDoNotPanic(t *testing.T) {
	img := solid(16, 16, color.RGBA{10, 20, 30, 255})
	cases := []struct {
		name   string
		w      []float32
		gh, gw int
		crop   image.Rectangle
	}{
		{"wrong length", []float32{1, 2, 3}, 2, 2, img.Bounds()},
		{"zero grid", nil, 0, 0, img.Bounds()},
		{"negative grid", []float32{1}, -1, -1, img.Bounds()},
		{"NaN and Inf", []float32{float32(math.NaN()), float32(math.Inf(1)), 1, 2}, 2, 2, img.Bounds()},
		{"all equal", []float32{3, 3, 3, 3}, 2, 2, img.Bounds()},
		{"crop outside", []float32{1, 2, 3, 4}, 2, 2, image.Rect(100, 100, 200, 200)},
		{"grid larger than image", make([]float32, 64*64), 64, 64, image.Rect(0, 0, 3, 3)},
	}
	for _, c := range cases {
		out := Overlay(img, c.w, c.gh, c.gw, c.crop)
		if out.Bounds() != img.Bounds() {
			t.Errorf("%s: bounds %v", c.name, out.Bounds())
		}
	}
	empty := Overlay(image.NewRGBA(image.Rectangle{}), []float32{1}, 1, 1, image.Rectangle{})
	if !empty.Bounds().Empty() {
		t.Errorf("empty image: bounds %v", empty.Bounds())
	}
}

func TestColormapMonotoneLightness(t *testing.T) {
	prev := -1.0
	for i := 0; i <= 100; i++ {
		l := lum(Colormap(float64(i) / 100))
		if l < prev-0.5 {
			t.Fatalf("lightness drops at %d%%: %.1f after %.1f", i, l, prev)
		}
		prev = l
	}
	if Colormap(-1) != Colormap(0) || Colormap(2) != Colormap(1) || Colormap(math.NaN()) != Colormap(0) {
		t.Errorf("out-of-range values are not clamped")
	}
}

func TestEncodePNG(t *testing.T) {
	img := Overlay(solid(20, 10, color.RGBA{1, 2, 3, 255}), []float32{0, 1}, 1, 2, image.Rect(0, 0, 20, 10))
	var buf bytes.Buffer
	if err := EncodePNG(&buf, img); err != nil {
		t.Fatal(err)
	}
	back, err := png.Decode(&buf)
	if err != nil {
		t.Fatal(err)
	}
	if back.Bounds().Dx() != 20 || back.Bounds().Dy() != 10 {
		t.Fatalf("decoded size %v", back.Bounds())
	}
}

// TestPainting overlays a synthetic attention (a blob at the upper right, over the moon of The
// Starry Night, and a weaker one at the lower left) on a real painting. With
// ARTNET_HEATMAP_OUT=file.png it also writes the picture, to look at.
func TestPainting(t *testing.T) {
	opts := preprocess.Default()
	img, err := preprocess.DecodeImageFile(testenv.Testdata(t, testenv.StarryNight), opts)
	if err != nil {
		t.Fatal(err)
	}
	const g = 7
	w := make([]float32, g*g)
	for y := 0; y < g; y++ {
		for x := 0; x < g; x++ {
			d1 := math.Hypot(float64(x-6), float64(y-1))
			d2 := math.Hypot(float64(x-1), float64(y-5))
			w[y*g+x] = float32(math.Exp(-d1*d1/3) + 0.5*math.Exp(-d2*d2/2) + 0.02)
		}
	}
	crop := preprocess.CropBox(img.Bounds().Dx(), img.Bounds().Dy(), opts)
	out := Overlay(img, w, g, g, crop)
	if out.Bounds() != img.Bounds() {
		t.Fatalf("bounds %v, want %v", out.Bounds(), img.Bounds())
	}
	if p := os.Getenv("ARTNET_HEATMAP_OUT"); p != "" {
		f, err := os.Create(filepath.Clean(p))
		if err != nil {
			t.Fatal(err)
		}
		defer f.Close()
		if err := EncodePNG(f, out); err != nil {
			t.Fatal(err)
		}
	}
}

func BenchmarkOverlay(b *testing.B) {
	img := solid(752, 600, color.RGBA{120, 130, 140, 255})
	w := make([]float32, 49)
	for i := range w {
		w[i] = float32(i)
	}
	crop := image.Rect(76, 0, 676, 600)
	b.ReportAllocs()
	for b.Loop() {
		Overlay(img, w, 7, 7, crop)
	}
}
