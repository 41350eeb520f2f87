// Package preprocess turns image files into the normalized float32 tensors that DeepArtNet
// reads, identically for training and serving.
//
// The pipeline is:
//
//  1. Sniff the format from the first bytes (JPEG, PNG, GIF, WebP; never the file extension).
//  2. Read only the header (image.DecodeConfig of that format) and refuse images whose declared
//     width×height exceeds Options.MaxPixels, or whose shorter side is below Options.MinSide,
//     before any pixel buffer is allocated.
//  3. Decode fully (GIF: the first frame only). JPEGs are decoded by libjpeg-turbo where
//     libturbojpeg.so.0 can be opened, else by image/jpeg (see jpeg.go and JPEGDecoder).
//     Decoder panics on hostile input are recovered and returned as ErrCorrupt errors.
//  4. Convert to 8-bit RGB (an opaque *image.RGBA): gray, gray16, CMYK, YCbCr, 16-bit RGBA64,
//     paletted and non-premultiplied images are all converted; transparent pixels are
//     composited over white (a painting on a white page), so alpha never reaches the model.
//  5. Apply the JPEG EXIF orientation (all 8 values; parsed here from the APP1 segment, no
//     dependency). Orientation tags in PNG/WebP are ignored.
//  6. Resize the shorter side to Options.ResizeSize and centre-crop ImageSize×ImageSize as
//     torchvision 0.14 does to PIL images (Resize → Pillow BILINEAR with antialiasing,
//     CenterCrop rounding half to even); the resampler reproduces Pillow's fixed-point
//     arithmetic bit for bit (see resample.go for why not github.com/nfnt/resize), and
//     computes only the pixels inside the crop. Then normalize (x/255 - mean)/std into
//     planar CHW float32 (all R, then all G, then all B).
//
// Pixels match what Pillow (and so torchvision) decodes: with libjpeg-turbo, JPEG pixels and
// final tensors are Pillow's exactly (the same library, IDCT and upsampling; measured on the
// paintings and fixtures); with the image/jpeg fallback, chroma upsampling (4:2:0, 4:2:2,
// 4:4:0) and YCbCr → RGB follow libjpeg-turbo and only image/jpeg's IDCT differs from
// libjpeg's, so JPEG pixels are within 3 levels of Pillow's (mean ≈ 0.05); lossy WebP is
// converted as libwebp does (limited-range BT.601 — x/image/webp's image.YCbCr is not JFIF)
// and matches exactly; opaque 8-bit PNG, GIF and lossless WebP match exactly
// (TestPillowDecodeParity, TestPillowParity). Deliberate differences: Pillow's
// convert("RGB") drops alpha and transparency (this package composites over white) and clips
// 16-bit gray to 255 (this package keeps the high byte).
//
// Memory: a decode holds the decoded image and its RGBA copy (4 bytes per pixel), so an image
// at the default cap of 50 megapixels needs about 350 MB (more for a progressive JPEG, whose
// coefficients the decoder keeps; libjpeg-turbo decodes a JPEG straight into the RGBA buffer
// but holds the whole file in memory). Lower Options.MaxPixels where that matters.
//
// All functions are safe for concurrent use.
//
// Errors are one line. DecodeFile's errors start with the path; every error wraps one of the
// sentinels (ErrEmpty, ErrUnknownFormat, ErrTooManyPixels, ErrTooSmall, ErrTruncated,
// ErrCorrupt) with %w, so callers can test them with errors.Is.
package preprocess

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"image"
	"image/gif"
	"image/jpeg"
	"image/png"
	"io"
	"os"
	"strings"

	"golang.org/x/image/webp"

	"github.com/artnet/artnet/internal/errtext"
	"github.com/artnet/artnet/models/spec"
)

// Defaults of the zero fields of Options.
const (
	DefaultMaxPixels = 50_000_000
	DefaultMinSide   = 8
)

// Options is the preprocessing contract of a model.
type Options struct {
	ImageSize  int // side of the square centre crop fed to the model (e.g. 224)
	ResizeSize int // the shorter side is resized to this before cropping (e.g. 256); must be ≥ ImageSize
	Mean, Std  [3]float32
	MaxPixels  int // images whose declared width×height exceeds this are refused; 0 → DefaultMaxPixels
	MinSide    int // images whose shorter side is below this are refused; 0 → DefaultMinSide
	// Draft lets libjpeg-turbo decode a JPEG at 1/2, 1/4 or 1/8 of its size in the DCT domain
	// when that still leaves the shorter side ≥ ResizeSize (Pillow's Image.draft, see jpeg.go):
	// less decoding and resizing work for large photos, at the price of pixels that are
	// Pillow-with-draft's, not torchvision's (mean ≈ 2 levels apart). Off by default; no effect
	// on other formats or with the image/jpeg fallback.
	Draft bool
}

// FromConfig returns the preprocessing options of a model configuration.
func FromConfig(cfg spec.Config) Options {
	return Options{ImageSize: cfg.ImageSize, ResizeSize: cfg.ResizeSize, Mean: cfg.Mean, Std: cfg.Std}
}

// Default returns the options of spec.Default(): 256 → 224, ImageNet mean/std.
func Default() Options { return FromConfig(spec.Default()) }

// Len returns the length of one image's tensor: 3·ImageSize·ImageSize.
func (o Options) Len() int { return 3 * o.ImageSize * o.ImageSize }

func (o Options) maxPixels() int {
	if o.MaxPixels <= 0 {
		return DefaultMaxPixels
	}
	return o.MaxPixels
}

func (o Options) minSide() int {
	if o.MinSide <= 0 {
		return DefaultMinSide
	}
	return o.MinSide
}

// Validate checks the options; the error names the field.
func (o Options) Validate() error {
	switch {
	case o.ImageSize <= 0:
		return fmt.Errorf("preprocess options: ImageSize must be > 0, got %d", o.ImageSize)
	case o.ResizeSize < o.ImageSize:
		return fmt.Errorf("preprocess options: ResizeSize %d is smaller than ImageSize %d", o.ResizeSize, o.ImageSize)
	}
	for i, s := range o.Std {
		if !(s > 0) {
			return fmt.Errorf("preprocess options: Std[%d] must be > 0, got %g", i, s)
		}
	}
	return nil
}

// Sentinel errors, wrapped (%w) by the one-line errors this package returns.
var (
	ErrEmpty         = errors.New("empty file")
	ErrUnknownFormat = errors.New("unknown image format")
	ErrTooManyPixels = errors.New("too many pixels")
	ErrTooSmall      = errors.New("image too small")
	ErrTruncated     = errors.New("truncated image")
	ErrCorrupt       = errors.New("corrupt image")
)

// DecodeFile decodes the image file at path into a CHW float32 tensor of length
// 3·ImageSize·ImageSize. Errors start with the path.
func DecodeFile(path string, o Options) ([]float32, error) {
	if err := o.Validate(); err != nil {
		return nil, err
	}
	img, err := DecodeImageFile(path, o)
	if err != nil {
		return nil, err
	}
	return ToTensor(img, o), nil
}

// DecodeImageFile is DecodeImage on the file at path; errors start with the path.
func DecodeImageFile(path string, o Options) (*image.RGBA, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err // *PathError names the file
	}
	defer f.Close()
	img, err := decodeRGBA(f, o)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	return img, nil
}

// Decode decodes an image from r into a CHW float32 tensor of length 3·ImageSize·ImageSize.
func Decode(r io.Reader, o Options) ([]float32, error) {
	if err := o.Validate(); err != nil {
		return nil, err
	}
	img, err := DecodeImage(r, o)
	if err != nil {
		return nil, err
	}
	return ToTensor(img, o), nil
}

// DecodeImage decodes an image from r with the pixel cap, the minimum side and the EXIF
// orientation applied, without resizing: for augmentation and heatmap overlays. The result is
// always an opaque *image.RGBA with bounds starting at (0, 0) (alpha composited over white).
// Its errors start with "image: ".
func DecodeImage(r io.Reader, o Options) (image.Image, error) {
	img, err := decodeRGBA(r, o)
	if err != nil {
		return nil, fmt.Errorf("image: %w", err)
	}
	return img, nil
}

type format struct {
	name         string
	decodeConfig func(io.Reader) (image.Config, error)
	decode       func(io.Reader) (image.Image, error)
}

var (
	fmtJPEG = &format{"JPEG", jpeg.DecodeConfig, jpeg.Decode}
	fmtPNG  = &format{"PNG", png.DecodeConfig, png.Decode}
	fmtGIF  = &format{"GIF", gif.DecodeConfig, gif.Decode}
	fmtWebP = &format{"WebP", webp.DecodeConfig, webp.Decode}
)

// sniff identifies the format from the first bytes.
func sniff(b []byte) (*format, bool) {
	switch {
	case len(b) >= 3 && b[0] == 0xff && b[1] == 0xd8 && b[2] == 0xff:
		return fmtJPEG, true
	case bytes.HasPrefix(b, []byte("\x89PNG\r\n\x1a\n")):
		return fmtPNG, true
	case bytes.HasPrefix(b, []byte("GIF87a")) || bytes.HasPrefix(b, []byte("GIF89a")):
		return fmtGIF, true
	case len(b) >= 12 && string(b[:4]) == "RIFF" && string(b[8:12]) == "WEBP":
		return fmtWebP, true
	}
	return nil, false
}

// maxHeaderBytes bounds what DecodeConfig may read (and the recorder keep) before the image
// dimensions: real headers, EXIF thumbnails included, are far smaller.
// A variable so that a test can lower it.
var maxHeaderBytes = 16 << 20

// recorder keeps every byte read through it, so that the header read by DecodeConfig can be
// replayed to the full decoder without reading the input twice.
type recorder struct {
	r   io.Reader
	buf bytes.Buffer
}

func (t *recorder) Read(p []byte) (int, error) {
	if t.buf.Len() >= maxHeaderBytes {
		return 0, fmt.Errorf("more than %d MiB of metadata before the image dimensions", maxHeaderBytes>>20)
	}
	n, err := t.r.Read(p)
	t.buf.Write(p[:n])
	return n, err
}

// decodeRGBA is the whole decoding pipeline; its errors carry no file name.
func decodeRGBA(r io.Reader, o Options) (*image.RGBA, error) {
	return decodeWith(r, o, jpegPath{turbo: turboEnabled(), draft: o.Draft})
}

// jpegPath selects the JPEG decoder: libjpeg-turbo (turbo) or image/jpeg, and with
// libjpeg-turbo whether to decode at a DCT-domain scale (draft; see jpeg.go).
type jpegPath struct{ turbo, draft bool }

func decodeWith(r io.Reader, o Options, jp jpegPath) (img *image.RGBA, err error) {
	br := bufio.NewReaderSize(r, 4096)
	head, perr := br.Peek(16)
	if len(head) == 0 {
		if perr != nil && perr != io.EOF {
			return nil, fmt.Errorf("reading: %w", perr)
		}
		return nil, fmt.Errorf("%w (0 bytes)", ErrEmpty)
	}
	f, ok := sniff(head)
	if !ok {
		return nil, fmt.Errorf("%w: starts with %s; want JPEG, PNG, GIF or WebP", ErrUnknownFormat, describe(head))
	}
	defer func() {
		if p := recover(); p != nil {
			img, err = nil, fmt.Errorf("%w: %s decoder failed: %v", ErrCorrupt, f.name, p)
		}
	}()

	rec := &recorder{r: br}
	cfg, err := f.decodeConfig(rec)
	if err != nil {
		return nil, decodeErr(f, "header", err)
	}
	if err := checkSize(f, cfg.Width, cfg.Height, o); err != nil {
		return nil, err
	}
	orientation := 1
	if f == fmtJPEG {
		orientation = jpegOrientation(rec.buf.Bytes())
		var m *image.RGBA
		if jp.turbo {
			scale := 1
			if jp.draft {
				scale = draftScale(cfg.Width, cfg.Height, o)
			}
			m, err = decodeJPEGTurbo(rec.buf.Bytes(), br, cfg, scale)
		} else {
			m, err = decodeJPEGGo(io.MultiReader(bytes.NewReader(rec.buf.Bytes()), br), cfg)
		}
		if err != nil {
			return nil, err
		}
		return orient(m, orientation), nil
	}
	src, err := f.decode(io.MultiReader(bytes.NewReader(rec.buf.Bytes()), br))
	if err != nil {
		return nil, decodeErr(f, "data", err)
	}
	b := src.Bounds()
	if b.Dx() != cfg.Width || b.Dy() != cfg.Height {
		// GIF frames may be smaller than the logical screen; never larger than the header said.
		if err := checkSize(f, b.Dx(), b.Dy(), o); err != nil {
			return nil, err
		}
	}
	var m *image.RGBA
	if f == fmtWebP {
		switch s := src.(type) {
		case *image.YCbCr:
			m = webpToRGBA(s)
		case *image.NYCbCrA:
			m = webpAlphaToRGBA(s)
		}
	}
	if m == nil {
		m = toRGBA(src)
	}
	return orient(m, orientation), nil
}

func (f *format) String() string { return f.name }

func checkSize(f *format, w, h int, o Options) error {
	if w <= 0 || h <= 0 {
		return fmt.Errorf("%w: %s declares %d×%d pixels", ErrCorrupt, f.name, w, h)
	}
	if int64(w)*int64(h) > int64(o.maxPixels()) {
		return fmt.Errorf("%w: %s header declares %d×%d = %d pixels, more than the cap of %d (Options.MaxPixels)",
			ErrTooManyPixels, f.name, w, h, int64(w)*int64(h), o.maxPixels())
	}
	if min(w, h) < o.minSide() {
		return fmt.Errorf("%w: %d×%d, shorter side %d px is below the minimum of %d px (Options.MinSide)",
			ErrTooSmall, w, h, min(w, h), o.minSide())
	}
	return nil
}

func decodeErr(f *format, what string, err error) error {
	msg := errtext.OneLine(err)
	if errors.Is(err, io.ErrUnexpectedEOF) || errors.Is(err, io.EOF) || strings.Contains(msg, "unexpected EOF") {
		return fmt.Errorf("%w: %s %s ends early (%s)", ErrTruncated, f.name, what, msg)
	}
	return fmt.Errorf("%w: %s %s: %s", ErrCorrupt, f.name, what, msg)
}

// describe quotes the first bytes of an unrecognized file for the error message.
func describe(b []byte) string {
	if len(b) > 8 {
		b = b[:8]
	}
	return fmt.Sprintf("%q", b)
}
