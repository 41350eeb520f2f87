package preprocess

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"image"
	"image/color"
	"image/gif"
	"math"
	"os"
	"path/filepath"
	"runtime"
	"slices"
	"strings"
	"testing"

	"github.com/artnet/artnet/internal/testenv"
	"github.com/artnet/artnet/models/spec"
	"github.com/artnet/artnet/preprocess/internal/fixtures"
)

const fixtureDir = "../testdata/images"

func fixture(name string) string { return filepath.Join(fixtureDir, name) }

func small() Options {
	return Options{ImageSize: 8, ResizeSize: 10, Mean: spec.ImageNetMean, Std: spec.ImageNetStd}
}

func near(a, b uint8, tol int) bool { d := int(a) - int(b); return d <= tol && d >= -tol }

func nearRGB(c, want color.RGBA, tol int) bool {
	return near(c.R, want.R, tol) && near(c.G, want.G, tol) && near(c.B, want.B, tol)
}

func decodeFixture(t *testing.T, name string) *image.RGBA {
	t.Helper()
	m, err := DecodeImageFile(fixture(name), small())
	if err != nil {
		t.Fatalf("decode %s: %v", name, err)
	}
	if m.Rect.Min != (image.Point{}) {
		t.Fatalf("%s: bounds %v do not start at the origin", name, m.Rect)
	}
	for i := 3; i < len(m.Pix); i += 4 {
		if m.Pix[i] != 255 {
			t.Fatalf("%s: alpha %d at byte %d, want opaque", name, m.Pix[i], i)
		}
	}
	return m
}

// checkQuads samples the centres of the four quadrants: TL, TR, BL, BR.
func checkQuads(t *testing.T, name string, m *image.RGBA, want [4]color.RGBA, tol int) {
	t.Helper()
	w, h := m.Rect.Dx(), m.Rect.Dy()
	pts := [4]image.Point{{w / 4, h / 4}, {3 * w / 4, h / 4}, {w / 4, 3 * h / 4}, {3 * w / 4, 3 * h / 4}}
	for i, p := range pts {
		if got := m.RGBAAt(p.X, p.Y); !nearRGB(got, want[i], tol) {
			t.Errorf("%s: quadrant %d at %v = %v, want %v ±%d", name, i, p, got, want[i], tol)
		}
	}
}

func gray(v uint8) color.RGBA { return color.RGBA{v, v, v, 255} }

var white = gray(255)

func TestFormats(t *testing.T) {
	q := fixtures.Quad
	solidCMYK := [4]color.RGBA{fixtures.CMYKAsRGB, fixtures.CMYKAsRGB, fixtures.CMYKAsRGB, fixtures.CMYKAsRGB}
	red, blue := color.RGBA{255, 0, 0, 255}, color.RGBA{0, 0, 255, 255}
	cases := []struct {
		name string
		w, h int
		want [4]color.RGBA
		tol  int
	}{
		{"quad.jpg", 32, 16, q, 24},
		{"quad.png", 32, 16, q, 0},
		{"gray.jpg", 32, 16, [4]color.RGBA{gray(30), gray(90), gray(150), gray(210)}, 6},
		{"gray.png", 32, 16, [4]color.RGBA{gray(30), gray(90), gray(150), gray(210)}, 0},
		{"gray16.png", 32, 16, [4]color.RGBA{gray(30), gray(90), gray(150), gray(210)}, 0},
		{"cmyk.jpg", 16, 16, solidCMYK, 2},
		{"rgb48.png", 32, 16, q, 0},
		// TL opaque red; TR black at alpha 128/255 over white → 127; BL fully transparent → white.
		{"rgba64.png", 32, 16, [4]color.RGBA{{230, 30, 30, 255}, gray(127), white, {240, 230, 30, 255}}, 1},
		{"nrgba.png", 32, 16, [4]color.RGBA{{230, 30, 30, 255}, gray(127), white, {240, 230, 30, 255}}, 1},
		{"paletted.png", 32, 16, [4]color.RGBA{q[0], q[1], white, q[3]}, 0},
		{"anim.gif", 32, 16, q, 0}, // the first frame, not the black second one
		{"lossless.webp", 16, 8, [4]color.RGBA{red, blue, red, blue}, 0},
		{"alpha.webp", 16, 8, [4]color.RGBA{gray(0), white, gray(0), white}, 0},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			m := decodeFixture(t, c.name)
			if m.Rect.Dx() != c.w || m.Rect.Dy() != c.h {
				t.Fatalf("size %dx%d, want %dx%d", m.Rect.Dx(), m.Rect.Dy(), c.w, c.h)
			}
			checkQuads(t, c.name, m, c.want, c.tol)
			// The same file through the tensor path.
			x, err := DecodeFile(fixture(c.name), small())
			if err != nil || len(x) != small().Len() {
				t.Fatalf("DecodeFile: len %d, err %v", len(x), err)
			}
		})
	}
}

func TestExifOrientation(t *testing.T) {
	for o := 1; o <= 8; o++ {
		name := fmt.Sprintf("exif%d.jpg", o)
		t.Run(name, func(t *testing.T) {
			data, err := os.ReadFile(fixture(name))
			if err != nil {
				t.Fatal(err)
			}
			if got := jpegOrientation(data); got != o {
				t.Fatalf("jpegOrientation = %d, want %d", got, o)
			}
			m := decodeFixture(t, name)
			if m.Rect.Dx() != 32 || m.Rect.Dy() != 16 {
				t.Fatalf("displayed size %dx%d, want 32x16", m.Rect.Dx(), m.Rect.Dy())
			}
			checkQuads(t, name, m, fixtures.Quad, 24)
		})
	}
}

func TestExifMalformed(t *testing.T) {
	good, err := os.ReadFile(fixture("exif6.jpg"))
	if err != nil {
		t.Fatal(err)
	}
	// Every prefix of the header must parse without panicking; the full one gives 6.
	for n := 0; n < 64; n++ {
		if got := jpegOrientation(good[:n]); got != 1 && got != 6 {
			t.Fatalf("prefix %d: orientation %d", n, got)
		}
	}
	bad := bytes.Clone(good)
	bad[len("\xff\xd8\xff\xe1\x00\x00Exif\x00\x00MM\x00\x2a")+3] = 0xff // IFD0 offset far outside
	if got := jpegOrientation(bad); got != 1 {
		t.Errorf("IFD0 offset out of range: orientation %d, want 1", got)
	}
	bad = bytes.Clone(good)
	bad[31] = 9 // orientation value 9: byte 31 is the low byte of the big-endian SHORT value
	if bad[30] != 0 || good[31] != 6 {
		t.Fatalf("exif6.jpg layout changed: bytes 30..31 = %x", good[30:32])
	}
	if got := jpegOrientation(bad); got != 1 {
		t.Errorf("orientation value 9: got %d, want 1", got)
	}
	if _, err := Decode(bytes.NewReader(bad), small()); err != nil {
		t.Errorf("invalid orientation must be ignored, got %v", err)
	}
}

func TestNormalizeByHand(t *testing.T) {
	o := Options{ImageSize: 4, ResizeSize: 6, Mean: spec.ImageNetMean, Std: spec.ImageNetStd}
	x, err := DecodeFile(fixture("solid.png"), o) // 16×16 of (200, 100, 50)
	if err != nil {
		t.Fatal(err)
	}
	if len(x) != 48 {
		t.Fatalf("len %d, want 48", len(x))
	}
	// (200/255 - 0.485)/0.229, (100/255 - 0.456)/0.224, (50/255 - 0.406)/0.225
	want := [3]float32{1.3070469, -0.2850140, -0.9329848}
	for i, v := range x {
		if math.Abs(float64(v-want[i/16])) > 1e-5 {
			t.Fatalf("x[%d] = %v, want %v (channel %d)", i, v, want[i/16], i/16)
		}
	}
}

func TestPlanarLayout(t *testing.T) {
	// quad.png is 32×16: resize keeps it, the 16×16 crop spans x = 8..23, so its left
	// column is red and its right column green.
	o := Options{ImageSize: 16, ResizeSize: 16, Mean: [3]float32{0, 0, 0}, Std: [3]float32{1, 1, 1}}
	x, err := DecodeFile(fixture("quad.png"), o)
	if err != nil {
		t.Fatal(err)
	}
	const p = 16 * 16
	checks := []struct {
		i    int
		want uint8
	}{
		{0, 230}, {p + 0, 30}, {2*p + 0, 30}, // (0,0) red
		{15, 30}, {p + 15, 200}, {2*p + 15, 40}, // (15,0) green
		{15*16 + 0, 30}, {p + 15*16, 40}, {2*p + 15*16, 220}, // (0,15) blue
		{15*16 + 15, 240}, {p + 15*16 + 15, 230}, {2*p + 15*16 + 15, 30}, // (15,15) yellow
	}
	for _, c := range checks {
		if got := x[c.i] * 255; math.Abs(float64(got)-float64(c.want)) > 0.01 {
			t.Errorf("x[%d]*255 = %v, want %d", c.i, got, c.want)
		}
	}
}

// gradient returns a w×h image with R = 6x and G = 6y.
func gradient(w, h int) *image.RGBA {
	m := image.NewRGBA(image.Rect(0, 0, w, h))
	for y := 0; y < h; y++ {
		for x := 0; x < w; x++ {
			m.SetRGBA(x, y, color.RGBA{uint8(6 * x), uint8(6 * y), 0, 255})
		}
	}
	return m
}

func TestResizeCropGeometry(t *testing.T) {
	o := Options{ImageSize: 8, ResizeSize: 16, Mean: [3]float32{0, 0, 0}, Std: [3]float32{1, 1, 1}}
	for _, c := range []struct {
		w, h   int
		rw, rh int
		box    image.Rectangle
	}{
		{40, 20, 32, 16, image.Rect(15, 5, 25, 15)}, // wide: crop at (12, 4) of 32×16, scale 1.25
		{20, 40, 16, 32, image.Rect(5, 15, 15, 25)}, // tall
	} {
		t.Run(fmt.Sprintf("%dx%d", c.w, c.h), func(t *testing.T) {
			if rw, rh := ResizedSize(c.w, c.h, o); rw != c.rw || rh != c.rh {
				t.Fatalf("ResizedSize = %dx%d, want %dx%d", rw, rh, c.rw, c.rh)
			}
			if box := CropBox(c.w, c.h, o); box != c.box {
				t.Fatalf("CropBox = %v, want %v", box, c.box)
			}
			x := ToTensor(gradient(c.w, c.h), o)
			x0, y0 := (c.rw-8)/2, (c.rh-8)/2
			for j := 0; j < 8; j++ {
				for i := 0; i < 8; i++ {
					// The resized pixel's centre in original coordinates; the gradient is
					// linear, so bilinear resampling reproduces it.
					ox := (float64(x0+i)+0.5)*1.25 - 0.5
					oy := (float64(y0+j)+0.5)*1.25 - 0.5
					r, g := float64(x[j*8+i])*255, float64(x[64+j*8+i])*255
					if math.Abs(r-6*ox) > 2 || math.Abs(g-6*oy) > 2 {
						t.Fatalf("crop pixel (%d,%d): R=%.1f G=%.1f, want %.1f %.1f", i, j, r, g, 6*ox, 6*oy)
					}
				}
			}
		})
	}
}

func TestCropBoxAndSizes(t *testing.T) {
	d := Default()
	// 752×600 → 320×256 (int(256·752/600) = 320), crop at (48, 16); ×2.35 and ×2.34375.
	if got, want := CropBox(752, 600, d), image.Rect(113, 38, 639, 563); got != want {
		t.Errorf("CropBox(752, 600) = %v, want %v", got, want)
	}
	if got, want := CropBox(256, 256, d), image.Rect(16, 16, 240, 240); got != want {
		t.Errorf("CropBox(256, 256) = %v, want %v", got, want)
	}
	if rw, rh := ResizedSize(600, 752, d); rw != 256 || rh != 320 {
		t.Errorf("ResizedSize(600, 752) = %dx%d, want 256x320", rw, rh)
	}
	// torchvision's CenterCrop rounds half to even: (9-8)/2 = 0.5 → 0, (11-8)/2 = 1.5 → 2.
	if x, y := cropOrigin(9, 11, 8); x != 0 || y != 2 {
		t.Errorf("cropOrigin(9, 11, 8) = %d, %d, want 0, 2", x, y)
	}
}

func TestBadInputs(t *testing.T) {
	cases := []struct {
		name     string
		sentinel error
		contains []string
	}{
		{"bad-empty.jpg", ErrEmpty, []string{"empty file"}},
		{"bad-text.png", ErrUnknownFormat, []string{"unknown image format", `"This is "`}},
		{"bad-1x1.png", ErrTooSmall, []string{"1×1", "minimum of 8"}},
		{"bad-7x40.png", ErrTooSmall, []string{"7×40"}},
		{"bad-huge.png", ErrTooManyPixels, []string{"100000×100000", "10000000000", "50000000"}},
		{"bad-truncated.jpg", ErrTruncated, []string{"JPEG"}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			path := fixture(c.name)
			x, err := DecodeFile(path, Default())
			if err == nil {
				t.Fatalf("no error, got a tensor of length %d", len(x))
			}
			msg := err.Error()
			if !errors.Is(err, c.sentinel) {
				t.Errorf("error %q does not wrap %v", msg, c.sentinel)
			}
			if !strings.HasPrefix(msg, path+": ") || strings.Contains(msg, "\n") {
				t.Errorf("error %q: want one line starting with the path", msg)
			}
			for _, s := range c.contains {
				if !strings.Contains(msg, s) {
					t.Errorf("error %q lacks %q", msg, s)
				}
			}
		})
	}
}

func TestHugeHeaderDoesNotAllocate(t *testing.T) {
	data := fixtures.PNGHeaderOnly(100000, 100000)
	var before, after runtime.MemStats
	runtime.ReadMemStats(&before)
	_, err := Decode(bytes.NewReader(data), Default())
	runtime.ReadMemStats(&after)
	if !errors.Is(err, ErrTooManyPixels) {
		t.Fatalf("err = %v, want ErrTooManyPixels", err)
	}
	if n := after.TotalAlloc - before.TotalAlloc; n > 1<<20 {
		t.Errorf("refusing a 100000×100000 header allocated %d bytes", n)
	}
	// Just above a configured cap, and just at it.
	o := small()
	o.MaxPixels = 32*16 - 1
	if _, err := DecodeFile(fixture("quad.png"), o); !errors.Is(err, ErrTooManyPixels) {
		t.Errorf("MaxPixels %d: err = %v, want ErrTooManyPixels", o.MaxPixels, err)
	}
	o.MaxPixels = 32 * 16
	if _, err := DecodeFile(fixture("quad.png"), o); err != nil {
		t.Errorf("MaxPixels %d: %v", o.MaxPixels, err)
	}
}

func TestMoreErrors(t *testing.T) {
	// A valid 32×16 header with no image data.
	_, err := Decode(bytes.NewReader(fixtures.PNGHeaderOnly(32, 16)), small())
	if !errors.Is(err, ErrTruncated) || !strings.HasPrefix(err.Error(), "image: ") {
		t.Errorf("header-only PNG: err = %v, want ErrTruncated starting with \"image: \"", err)
	}
	o := small()
	o.MinSide = 17
	if _, err := DecodeFile(fixture("quad.png"), o); !errors.Is(err, ErrTooSmall) {
		t.Errorf("MinSide 17 on 32×16: err = %v, want ErrTooSmall", err)
	}
	o.MinSide = 16
	if _, err := DecodeFile(fixture("quad.png"), o); err != nil {
		t.Errorf("MinSide 16 on 32×16: %v", err)
	}
	missing := fixture("does-not-exist.jpg")
	if _, err := DecodeFile(missing, small()); err == nil || !strings.Contains(err.Error(), missing) {
		t.Errorf("missing file: err = %v, want one naming %s", err, missing)
	}
	if _, err := DecodeFile(fixture("quad.png"), Options{ImageSize: 8, ResizeSize: 4, Std: [3]float32{1, 1, 1}}); err == nil || !strings.Contains(err.Error(), "ResizeSize") {
		t.Errorf("ResizeSize < ImageSize: err = %v", err)
	}
	if _, err := Decode(bytes.NewReader(nil), Options{ImageSize: 8, ResizeSize: 8}); err == nil || !strings.Contains(err.Error(), "Std[0]") {
		t.Errorf("zero Std: err = %v", err)
	}
	// A decoder that panics (here: the reader does, mid-stream) becomes an ErrCorrupt error.
	png, err := os.ReadFile(fixture("quad.png"))
	if err != nil {
		t.Fatal(err)
	}
	_, err = Decode(&panicReader{data: png[:40]}, small())
	if !errors.Is(err, ErrCorrupt) || !strings.Contains(err.Error(), "boom") {
		t.Errorf("panicking read: err = %v, want ErrCorrupt naming the panic", err)
	}
}

type panicReader struct {
	data []byte
	off  int
}

func (r *panicReader) Read(p []byte) (int, error) {
	if r.off >= len(r.data) {
		panic("boom")
	}
	n := copy(p, r.data[r.off:])
	r.off += n
	return n, nil
}

func TestToTensorInto(t *testing.T) {
	o := small()
	a := gradient(40, 20)
	m := decodeFixture(t, "quad.jpg")
	batch := make([]float32, 2*o.Len())
	ToTensorInto(batch[:o.Len()], a, o)
	ToTensorInto(batch[o.Len():], m, o)
	if !slices.Equal(batch[:o.Len()], ToTensor(a, o)) || !slices.Equal(batch[o.Len():], ToTensor(m, o)) {
		t.Error("ToTensorInto differs from ToTensor")
	}
	// Non-RGBA inputs are converted; a gray image gives three equal planes.
	g := image.NewGray(image.Rect(3, 5, 23, 35)) // bounds not at the origin
	for i := range g.Pix {
		g.Pix[i] = uint8(i)
	}
	gx := ToTensor(g, Options{ImageSize: 8, ResizeSize: 10, Std: [3]float32{1, 1, 1}})
	if !slices.Equal(gx[:64], gx[64:128]) || !slices.Equal(gx[:64], gx[128:]) {
		t.Error("gray input: planes differ")
	}
	// Translucent NRGBA goes over white.
	n := image.NewNRGBA(image.Rect(0, 0, 8, 8))
	for i := 0; i < len(n.Pix); i += 4 {
		n.Pix[i+3] = 0
	}
	nx := ToTensor(n, Options{ImageSize: 8, ResizeSize: 8, Std: [3]float32{1, 1, 1}})
	for i, v := range nx {
		if v != 1 {
			t.Fatalf("transparent NRGBA: x[%d] = %v, want 1 (white)", i, v)
		}
	}
	defer func() {
		if recover() == nil {
			t.Error("ToTensorInto with a short dst did not panic")
		}
	}()
	ToTensorInto(make([]float32, 5), m, o)
}

func TestFromConfig(t *testing.T) {
	c := spec.Tiny()
	o := FromConfig(c)
	if o.ImageSize != 64 || o.ResizeSize != 72 || o.Mean != spec.ImageNetMean || o.Std != spec.ImageNetStd {
		t.Errorf("FromConfig(Tiny) = %+v", o)
	}
	if d := Default(); d.ImageSize != 224 || d.ResizeSize != 256 || d.Len() != 3*224*224 {
		t.Errorf("Default() = %+v", d)
	}
}

func TestPaintings(t *testing.T) {
	paths, err := filepath.Glob(filepath.Join(testenv.Testdata(t, "paintings"), "*.jpg"))
	if err != nil || len(paths) < 3 {
		t.Fatalf("%d paintings in testdata/paintings (err %v), want 3", len(paths), err)
	}
	o := Default()
	lo, hi := float32(math.Inf(1)), float32(math.Inf(-1))
	for c := 0; c < 3; c++ {
		lo = min(lo, (0-o.Mean[c])/o.Std[c])
		hi = max(hi, (1-o.Mean[c])/o.Std[c])
	}
	for _, p := range paths {
		x, err := DecodeFile(p, o)
		if err != nil {
			t.Errorf("%v", err)
			continue
		}
		if len(x) != o.Len() {
			t.Errorf("%s: len %d, want %d", p, len(x), o.Len())
			continue
		}
		plane := 224 * 224
		for c := 0; c < 3; c++ {
			var s, s2 float64
			for _, v := range x[c*plane : (c+1)*plane] {
				if !(v >= lo-1e-4 && v <= hi+1e-4) {
					t.Fatalf("%s: value %v outside [%v, %v]", p, v, lo, hi)
				}
				s += float64(v)
				s2 += float64(v) * float64(v)
			}
			mean := s / float64(plane)
			std := math.Sqrt(s2/float64(plane) - mean*mean)
			if math.Abs(mean) > 1.8 || std < 0.1 {
				t.Errorf("%s channel %d: mean %.3f std %.3f, implausible for a painting", p, c, mean, std)
			}
		}
	}
}

func TestFixturesUpToDate(t *testing.T) {
	files, err := fixtures.Files()
	if err != nil {
		t.Fatal(err)
	}
	for _, name := range fixtures.Names(files) {
		got, err := os.ReadFile(fixture(name))
		if err != nil {
			t.Errorf("%v (run go generate in preprocess)", err)
			continue
		}
		if !bytes.Equal(got, files[name]) {
			t.Errorf("%s differs from what internal/fixtures generates (run go generate in preprocess)", name)
		}
	}
}

func FuzzDecode(f *testing.F) {
	paths, err := filepath.Glob(filepath.Join(fixtureDir, "*"))
	if err != nil || len(paths) == 0 {
		f.Fatalf("no seeds in %s", fixtureDir)
	}
	addSeeds(f, paths)
	o := small()
	o.MaxPixels = 1 << 16 // keep each input cheap
	f.Fuzz(func(t *testing.T, data []byte) {
		x, err := Decode(bytes.NewReader(data), o)
		if err != nil {
			if strings.Contains(err.Error(), "\n") {
				t.Fatalf("multi-line error %q", err)
			}
			return
		}
		if len(x) != o.Len() {
			t.Fatalf("len %d, want %d", len(x), o.Len())
		}
		checkFinite(t, x)
	})
}

// addSeeds adds the files at paths to f's seed corpus.
func addSeeds(f *testing.F, paths []string) {
	for _, p := range paths {
		b, err := os.ReadFile(p)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(b)
	}
}

// checkFinite fails t on a NaN or infinite tensor value.
func checkFinite(t *testing.T, x []float32) {
	t.Helper()
	for i, v := range x {
		if math.IsNaN(float64(v)) || math.IsInf(float64(v), 0) {
			t.Fatalf("x[%d] = %v", i, v)
		}
	}
}

func BenchmarkDecodeJPEG(b *testing.B) {
	data, err := os.ReadFile(testenv.Testdata(b, testenv.StarryNight))
	if err != nil {
		b.Fatal(err)
	}
	o := Default()
	b.SetBytes(int64(len(data)))
	b.ReportAllocs()
	for b.Loop() {
		if _, err := Decode(bytes.NewReader(data), o); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkDecodeImageJPEG is the decode + RGB conversion part alone.
func BenchmarkDecodeImageJPEG(b *testing.B) {
	data, err := os.ReadFile(testenv.Testdata(b, testenv.StarryNight))
	if err != nil {
		b.Fatal(err)
	}
	o := Default()
	b.SetBytes(int64(len(data)))
	b.ReportAllocs()
	for b.Loop() {
		if _, err := DecodeImage(bytes.NewReader(data), o); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkToTensor is the resize + crop + normalize part alone (752×600 → 224).
func BenchmarkToTensor(b *testing.B) {
	m, err := DecodeImageFile(testenv.Testdata(b, testenv.StarryNight), Default())
	if err != nil {
		b.Fatal(err)
	}
	o := Default()
	dst := make([]float32, o.Len())
	b.SetBytes(int64(len(m.Pix)))
	b.ReportAllocs()
	for b.Loop() {
		ToTensorInto(dst, m, o)
	}
}

// TestPillowParity compares with references written by Pillow 9.4 (internal/fixtures/pilref.py):
// torchvision's Resize(20) + CenterCrop(16) on a PIL image, shrinking and enlarging.
func TestPillowParity(t *testing.T) {
	o := Options{ImageSize: 16, ResizeSize: 20, Std: [3]float32{1, 1, 1}}
	for _, name := range []string{"pil-down", "pil-up"} {
		ref, err := os.ReadFile(fixture(name + ".rgb"))
		if err != nil {
			t.Fatal(err)
		}
		x, err := DecodeFile(fixture(name+".png"), o)
		if err != nil {
			t.Fatal(err)
		}
		diffs := 0
		for y := 0; y < 16; y++ {
			for xx := 0; xx < 16; xx++ {
				for c := 0; c < 3; c++ {
					got := int(math.Round(float64(x[c*256+y*16+xx]) * 255))
					if want := int(ref[(y*16+xx)*3+c]); got != want {
						if diffs < 5 {
							t.Errorf("%s: pixel (%d,%d) channel %d = %d, Pillow %d", name, xx, y, c, got, want)
						}
						diffs++
					}
				}
			}
		}
		if diffs > 0 {
			t.Errorf("%s: %d of 768 values differ from Pillow", name, diffs)
		}
	}
}

// TestPillowDecodeParity compares decoded pixels with Pillow's in 8×8 windows recorded by
// internal/fixtures/pilref.py: JPEG (4:2:0, 4:2:2, 4:4:0, 4:4:4, progressive, odd sizes;
// libjpeg-turbo)
// and lossy WebP (odd and even sizes, alpha; libwebp). Chroma upsampling and colour
// conversion follow the two libraries; image/jpeg's IDCT is not libjpeg's, which leaves
// differences of a level or two in JPEGs. WebP must match exactly.
func TestPillowDecodeParity(t *testing.T) {
	raw, err := os.ReadFile(fixture("pil-windows.json"))
	if err != nil {
		t.Fatal(err)
	}
	var windows []struct {
		File string
		X, Y int
		RGB  []byte
	}
	if err := json.Unmarshal(raw, &windows); err != nil {
		t.Fatal(err)
	}
	if len(windows) < 30 {
		t.Fatalf("only %d windows", len(windows))
	}
	decoded := map[string]*image.RGBA{}
	for _, win := range windows {
		m := decoded[win.File]
		if m == nil {
			if m, err = DecodeImageFile(fixture(win.File), Default()); err != nil {
				t.Fatal(err)
			}
			decoded[win.File] = m
		}
		maxDiff, sum := 0, 0
		for y := 0; y < 8; y++ {
			for x := 0; x < 8; x++ {
				c := m.RGBAAt(win.X+x, win.Y+y)
				for k, v := range []uint8{c.R, c.G, c.B} {
					d := int(v) - int(win.RGB[(y*8+x)*3+k])
					d = max(d, -d)
					maxDiff = max(maxDiff, d)
					sum += d
				}
			}
		}
		tol := jpegTolerance
		if strings.HasSuffix(win.File, ".webp") {
			tol = 0
		}
		if maxDiff > tol || float64(sum)/192 > 0.5 {
			t.Errorf("%s window (%d,%d): max difference %d levels (mean %.2f) from Pillow, want ≤ %d",
				win.File, win.X, win.Y, maxDiff, float64(sum)/192, tol)
		} else if testing.Verbose() {
			t.Logf("%s window (%d,%d): max %d, mean %.2f", win.File, win.X, win.Y, maxDiff, float64(sum)/192)
		}
	}
}

const jpegTolerance = 3

func TestGIFOffsetFrameAndCorruptPNG(t *testing.T) {
	// A GIF whose first frame lies at (2,2)-(18,14): the frame itself is returned, at the origin.
	pal := color.Palette{fixtures.Red, fixtures.Green}
	fr := image.NewPaletted(image.Rect(2, 2, 18, 14), pal)
	for y := 2; y < 14; y++ {
		for x := 2; x < 18; x++ {
			if x >= 10 {
				fr.SetColorIndex(x, y, 1)
			}
		}
	}
	var buf bytes.Buffer
	if err := gif.EncodeAll(&buf, &gif.GIF{Image: []*image.Paletted{fr}, Delay: []int{0},
		Config: image.Config{ColorModel: pal, Width: 20, Height: 16}}); err != nil {
		t.Fatal(err)
	}
	m, err := DecodeImage(bytes.NewReader(buf.Bytes()), small())
	if err != nil {
		t.Fatal(err)
	}
	rgba := m.(*image.RGBA)
	if rgba.Rect != image.Rect(0, 0, 16, 12) || rgba.RGBAAt(0, 0) != fixtures.Red || rgba.RGBAAt(15, 11) != fixtures.Green {
		t.Errorf("offset GIF frame: bounds %v, corners %v %v", rgba.Rect, rgba.RGBAAt(0, 0), rgba.RGBAAt(15, 11))
	}

	// A PNG with a damaged IDAT checksum is corrupt, not truncated.
	data, err := os.ReadFile(fixture("quad.png"))
	if err != nil {
		t.Fatal(err)
	}
	i := bytes.Index(data, []byte("IDAT"))
	bad := bytes.Clone(data)
	bad[i+6] ^= 0xff
	_, err = Decode(bytes.NewReader(bad), small())
	if !errors.Is(err, ErrCorrupt) || !strings.Contains(err.Error(), "PNG") {
		t.Errorf("damaged PNG: err = %v, want ErrCorrupt naming PNG", err)
	}
}

// TestToTensorSizes sweeps image and option sizes, extreme aspect ratios included: no
// panic, and a constant image stays constant through resize and crop (the filter weights
// sum to one at every edge).
func TestToTensorSizes(t *testing.T) {
	for _, sz := range [][2]int{{1, 1}, {1, 300}, {300, 1}, {8, 8}, {9, 8}, {17, 5}, {5, 333}, {1000, 9}, {224, 224}, {257, 256}} {
		for _, o := range []Options{
			{ImageSize: 8, ResizeSize: 8, Std: [3]float32{1, 1, 1}},
			{ImageSize: 7, ResizeSize: 9, Std: [3]float32{1, 1, 1}},
			{ImageSize: 16, ResizeSize: 31, Std: [3]float32{1, 1, 1}},
		} {
			m := solidImage(sz[0], sz[1], color.RGBA{17, 128, 250, 255})
			x := ToTensor(m, o)
			if len(x) != o.Len() {
				t.Fatalf("%v %+v: len %d", sz, o, len(x))
			}
			for i, v := range x {
				want := [3]float32{17, 128, 250}[i/(o.ImageSize*o.ImageSize)] / 255
				if math.Abs(float64(v-want)) > 1e-6 {
					t.Fatalf("%dx%d, %d/%d: x[%d] = %v, want %v", sz[0], sz[1], o.ImageSize, o.ResizeSize, i, v, want)
				}
			}
		}
	}
	// Empty image: zeros.
	if x := ToTensor(image.NewRGBA(image.Rectangle{}), small()); len(x) != small().Len() || x[0] != 0 {
		t.Errorf("empty image: len %d x[0] %v", len(x), x[0])
	}
}

func solidImage(w, h int, c color.RGBA) *image.RGBA {
	m := image.NewRGBA(image.Rect(0, 0, w, h))
	for i := 0; i < len(m.Pix); i += 4 {
		m.Pix[i], m.Pix[i+1], m.Pix[i+2], m.Pix[i+3] = c.R, c.G, c.B, c.A
	}
	return m
}

func TestHeaderTooLong(t *testing.T) {
	// A JPEG with more APP15 segments before its frame header than the limit is refused
	// early (the limit, 16 MiB, lowered to 1 MiB to keep the test fast).
	defer func(n int) { maxHeaderBytes = n }(maxHeaderBytes)
	maxHeaderBytes = 1 << 20
	q, err := os.ReadFile(fixture("quad.jpg"))
	if err != nil {
		t.Fatal(err)
	}
	seg := append([]byte{0xff, 0xef, 0xff, 0xff}, make([]byte, 0xffff-2)...)
	var buf bytes.Buffer
	buf.Write(q[:2])
	for buf.Len() < 2<<20 {
		buf.Write(seg)
	}
	buf.Write(q[2:])
	_, err = Decode(&buf, small())
	if !errors.Is(err, ErrCorrupt) || !strings.Contains(err.Error(), "1 MiB of metadata") {
		t.Errorf("err = %v, want ErrCorrupt about 1 MiB of metadata", err)
	}
}
