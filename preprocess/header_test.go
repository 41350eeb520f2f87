package preprocess

import (
	"bytes"
	"errors"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"testing"
)

// DecodeConfig gives the header's size and the decoder's pixel size, and refuses what
// DecodeImage refuses, with the same error.
func TestDecodeConfig(t *testing.T) {
	o := Default()
	for name, want := range map[string]int{"rgba64.png": 8, "rgb48.png": 8, "gray16.png": 2, "gray.png": 1, "paletted.png": 1,
		"nrgba.png": 4, "gray.jpg": 1, "cmyk.jpg": 4, "pil-420.jpg": 3, "anim.gif": 1, "lossless.webp": 4, "pil-lossy.webp": 3} {
		b, err := os.ReadFile(filepath.Join("../testdata/images", name))
		if err != nil {
			t.Fatal(err)
		}
		h, err := DecodeConfig(bytes.NewReader(b), o)
		if err != nil {
			t.Errorf("%s: %v", name, err)
			continue
		}
		img, err := DecodeImage(bytes.NewReader(b), o)
		if err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		w, hh := img.Bounds().Dx(), img.Bounds().Dy()
		if h.Width != w || h.Height != hh || h.BytesPerPixel != want {
			t.Errorf("%s: header %+v, want %d×%d at %d bytes per pixel", name, h, w, hh, want)
		}
	}
	for _, name := range []string{"bad-empty.jpg", "bad-text.png", "bad-1x1.png", "bad-huge.png"} {
		b, _ := os.ReadFile(filepath.Join("../testdata/images", name))
		_, herr := DecodeConfig(bytes.NewReader(b), o)
		_, derr := DecodeImage(bytes.NewReader(b), o)
		if herr == nil || derr == nil || herr.Error() != derr.Error() {
			t.Errorf("%s: DecodeConfig says %v, DecodeImage %v", name, herr, derr)
		}
		for _, sentinel := range []error{ErrEmpty, ErrUnknownFormat, ErrTooSmall, ErrTooManyPixels} {
			if errors.Is(derr, sentinel) != errors.Is(herr, sentinel) {
				t.Errorf("%s: DecodeConfig's error %v is not %v as DecodeImage's", name, herr, sentinel)
			}
		}
	}
}

// DecodeMemory bounds what decoding and preprocessing really allocate, for every format,
// pixel depth and EXIF rotation of the fixtures.
func TestDecodeMemoryBoundsAllocation(t *testing.T) {
	o := Default()
	files, _ := filepath.Glob("../testdata/images/*")
	checked := 0
	for _, p := range files {
		if strings.Contains(p, "bad-") {
			continue
		}
		b, err := os.ReadFile(p)
		if err != nil {
			t.Fatal(err)
		}
		h, err := DecodeConfig(bytes.NewReader(b), o)
		if err != nil {
			continue // not an image fixture
		}
		var before, after runtime.MemStats
		runtime.GC()
		runtime.ReadMemStats(&before)
		img, err := DecodeImage(bytes.NewReader(b), o)
		if err != nil {
			t.Fatalf("%s: %v", p, err)
		}
		x := ToTensor(img, o)
		runtime.ReadMemStats(&after)
		got := int64(after.TotalAlloc - before.TotalAlloc)
		if bound := h.DecodeMemory(o); got > bound {
			t.Errorf("%s (%s %d×%d, %d B/px): decoding allocated %d bytes, DecodeMemory says at most %d", filepath.Base(p), h.Format, h.Width, h.Height, h.BytesPerPixel, got, bound)
		}
		_ = x
		checked++
	}
	if checked < 20 {
		t.Errorf("only %d fixtures checked", checked)
	}
}
