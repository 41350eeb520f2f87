package preprocess

import (
	"bytes"
	"fmt"
	"image"
	"io"
	"runtime"
	"strings"
	"sync"

	"github.com/artnet/artnet/internal/envvar"
	"github.com/artnet/artnet/internal/errtext"
)

// JPEG decoding has two implementations with one contract:
//
//   - libjpeg-turbo, the decoder Pillow (and so torchvision) uses, through its TurboJPEG API
//     (libturbojpeg.so.0, opened with dlopen at the first JPEG: no build-time dependency,
//     and a binary still starts and decodes where the library is absent). It decodes
//     straight into the RGBA buffer, with libjpeg's ISLOW IDCT and fancy upsampling, as
//     Pillow does, so pixels are Pillow's exactly.
//   - image/jpeg plus the libjpeg-style colour conversion of ycbcr.go: the fallback where the
//     library cannot be loaded (or cgo is off), within a few levels of Pillow's (a different
//     IDCT).
//
// One path for training and serving: the full-size decode by default. Drafting (decoding at
// 1/2, 1/4 or 1/8 of the size in the DCT domain when the image is at least twice the resized
// size, like Pillow's Image.draft) is opt-in (Options.Draft; `artnet serve --jpeg-draft`):
// torchvision 0.14's Resize does not draft (PIL Image.resize with reducing_gap=None), so
// drafting changes what PyTorch-trained weights see. Measured: the full decode gives
// Pillow's final tensor exactly; drafted, the tensor equals Pillow-with-draft exactly but
// differs from torchvision's by up to 24 levels (mean 2.3) on The Starry Night (752×600,
// drafted by 2) and up to 27 (mean 1.4–2.2) on larger images, for ~25 % less CPU time
// (bench/decode-vs-pil.sh prints both).
//
// Robustness: the pixel cap is checked on the header (image/jpeg's DecodeConfig, as for every
// format) before anything is decoded; the compressed data read is bounded by 8 bytes per
// declared pixel; TJFLAG_LIMITSCANS refuses progressive JPEGs with more than 500 scans (a
// known CPU exhaustion); libjpeg warnings other than "premature end" keep the decoded image,
// as Pillow does; each call creates and destroys its own TurboJPEG handle (no C memory
// outlives a call; TurboJPEG allocates no buffers here, so there is nothing for tjFree).
//
// Concurrency: at most GOMAXPROCS libjpeg-turbo decodes run at once (turboSlots). A goroutine
// in a cgo call gives up its P, so without the bound 64 concurrent requests would run 64 OS
// threads of C decoding, oversubscribing the CPU under ONNX Runtime's spinning thread pool;
// image/jpeg is bounded by GOMAXPROCS by construction.
//
// ARTNET_JPEG=go forces the fallback; ARTNET_TURBOJPEG_LIB names the library file to open.
// JPEGDecoder says which is in use (artnet doctor prints it). CMYK/YCCK JPEGs, which
// TurboJPEG 2.x cannot convert to RGB, always take the image/jpeg path.

// forceGoJPEG is set by tests to run the fallback path with the library present.
var forceGoJPEG = envvar.JPEG.Get() == "go"

// draftScale is Pillow's Image.draft("RGB", (rw, rh)) for a w×h JPEG whose shorter side is
// resized to o.ResizeSize (rw×rh): the largest of 8, 4, 2 that both w/rw and h/rh reach, else 1.
func draftScale(w, h int, o Options) int {
	rw, rh := ResizedSize(w, h, o)
	if rw <= 0 || rh <= 0 {
		return 1
	}
	s := min(w/rw, h/rh)
	for _, d := range []int{8, 4, 2} {
		if s >= d {
			return d
		}
	}
	return 1
}

// turboEnabled reports whether JPEGs are decoded by libjpeg-turbo.
func turboEnabled() bool {
	if forceGoJPEG {
		return false
	}
	path, _ := loadTurbo()
	return path != ""
}

// TurboJPEG reports whether JPEGs are decoded by libjpeg-turbo (false with ARTNET_JPEG=go, or
// when libturbojpeg.so.0 cannot be opened; JPEGDecoder says why).
func TurboJPEG() bool { return turboEnabled() }

// JPEGDecoder describes the JPEG decoder in use, in one line: "libjpeg-turbo (PATH)" or
// "Go image/jpeg (REASON)".
func JPEGDecoder() string {
	if forceGoJPEG {
		return "Go image/jpeg (ARTNET_JPEG=go)"
	}
	path, why := loadTurbo()
	if path != "" {
		return "libjpeg-turbo (" + path + ", TurboJPEG API via dlopen)"
	}
	return "Go image/jpeg (libjpeg-turbo not loaded: " + why + "; install Debian libturbojpeg0)"
}

// maxJPEGBytesPerPixel bounds the compressed data read for a JPEG whose header has passed the
// pixel cap: real JPEGs, quality 100 and 4:4:4 included, stay far below 8 bytes per pixel.
const maxJPEGBytesPerPixel = 8

// decodeJPEGTurbo decodes a JPEG with libjpeg-turbo; head holds the bytes already read (the
// header, checked against the pixel cap), rest the remainder of the input. scale (1, 2, 4
// or 8) decodes at 1/scale of the size in the DCT domain (libjpeg's scale_denom), rounding
// up as libjpeg does. It returns the image before EXIF orientation.
func decodeJPEGTurbo(head []byte, rest io.Reader, cfg image.Config, scale int) (*image.RGBA, error) {
	limit := int64(maxJPEGBytesPerPixel)*int64(cfg.Width)*int64(cfg.Height) + 1<<20
	var buf bytes.Buffer
	buf.Grow(len(head) + 64<<10)
	buf.Write(head)
	n, err := buf.ReadFrom(io.LimitReader(rest, limit+1))
	if err != nil {
		return nil, fmt.Errorf("reading: %w", err)
	}
	if n > limit {
		return nil, fmt.Errorf("%w: JPEG data is larger than %d bytes for %d×%d pixels", ErrCorrupt, limit, cfg.Width, cfg.Height)
	}
	data := buf.Bytes()
	h, err := turboHeader(data)
	if err != nil {
		return nil, turboErr("header", err.Error())
	}
	if h.w != cfg.Width || h.h != cfg.Height {
		return nil, fmt.Errorf("%w: JPEG header: libjpeg-turbo reads %d×%d, the frame header says %d×%d", ErrCorrupt, h.w, h.h, cfg.Width, cfg.Height)
	}
	if h.cmyk() {
		return decodeJPEGGo(bytes.NewReader(data), cfg)
	}
	w, ht := (h.w+scale-1)/scale, (h.h+scale-1)/scale // TJSCALED(·, 1/scale)
	m := image.NewRGBA(image.Rect(0, 0, w, ht))
	slots := turboSlots()
	slots <- struct{}{}
	warn, err := turboDecodeRGBA(data, m.Pix, w, ht)
	<-slots
	if err != nil {
		return nil, turboErr("data", err.Error())
	}
	if warn != "" && strings.Contains(strings.ToLower(warn), "premature end of jpeg file") {
		return nil, fmt.Errorf("%w: JPEG data ends early (libjpeg-turbo: %s)", ErrTruncated, errtext.Fold(warn))
	}
	// Other warnings ("extraneous bytes before marker", a bad Huffman code) leave a decoded
	// image, which is kept, as Pillow keeps it.
	return m, nil
}

// turboSlots bounds concurrent libjpeg-turbo decodes to GOMAXPROCS (see the comment above).
var turboSlots = sync.OnceValue(func() chan struct{} { return make(chan struct{}, max(1, runtime.GOMAXPROCS(0))) })

// decodeJPEGGo is the image/jpeg path (the fallback, and CMYK/YCCK JPEGs).
func decodeJPEGGo(r io.Reader, cfg image.Config) (*image.RGBA, error) {
	src, err := fmtJPEG.decode(r)
	if err != nil {
		return nil, decodeErr(fmtJPEG, "data", err)
	}
	if b := src.Bounds(); b.Dx() != cfg.Width || b.Dy() != cfg.Height {
		return nil, fmt.Errorf("%w: JPEG decodes to %d×%d, the header says %d×%d", ErrCorrupt, b.Dx(), b.Dy(), cfg.Width, cfg.Height)
	}
	return toRGBA(src), nil
}

func turboErr(what, msg string) error {
	msg = errtext.Fold(msg)
	if strings.Contains(strings.ToLower(msg), "premature end") {
		return fmt.Errorf("%w: JPEG %s ends early (libjpeg-turbo: %s)", ErrTruncated, what, msg)
	}
	return fmt.Errorf("%w: JPEG %s: libjpeg-turbo: %s", ErrCorrupt, what, msg)
}
