package preprocess

import (
	"bufio"
	"fmt"
	"image"
	"image/color"
	"io"
)

// Header is what an image's header declares, read without decoding its pixels.
type Header struct {
	Format        string // JPEG, PNG, GIF or WebP
	Width, Height int
	// BytesPerPixel is the size of a pixel in the image the format's decoder builds before
	// the conversion to RGBA: 8 for 16-bit RGBA PNGs, 2 for 16-bit grey, 3 at most for JPEG
	// (Y'CbCr 4:4:4), 4 for CMYK, 1 for palettes and 8-bit grey.
	BytesPerPixel int
}

// DecodeConfig reads only the header of the image in r and applies the checks DecodeImage
// makes before decoding (format, pixel cap, minimum side), with the same errors. Servers use
// it with DecodeMemory to reserve memory before they decode.
func DecodeConfig(r io.Reader, o Options) (Header, error) {
	br := bufio.NewReaderSize(r, 4096)
	head, perr := br.Peek(16)
	if len(head) == 0 {
		if perr != nil && perr != io.EOF {
			return Header{}, fmt.Errorf("image: reading: %w", perr)
		}
		return Header{}, fmt.Errorf("image: %w (0 bytes)", ErrEmpty)
	}
	f, ok := sniff(head)
	if !ok {
		return Header{}, fmt.Errorf("image: %w: starts with %s; want JPEG, PNG, GIF or WebP", ErrUnknownFormat, describe(head))
	}
	cfg, err := func() (cfg image.Config, err error) {
		defer func() {
			if p := recover(); p != nil {
				err = fmt.Errorf("%s decoder failed: %v", f.name, p)
			}
		}()
		return f.decodeConfig(&recorder{r: br})
	}()
	if err != nil {
		return Header{}, fmt.Errorf("image: %w", decodeErr(f, "header", err))
	}
	if err := checkSize(f, cfg.Width, cfg.Height, o); err != nil {
		return Header{}, fmt.Errorf("image: %w", err)
	}
	return Header{Format: f.name, Width: cfg.Width, Height: cfg.Height, BytesPerPixel: bytesPerPixel(f, cfg.ColorModel)}, nil
}

func bytesPerPixel(f *format, m color.Model) int {
	switch m {
	case color.GrayModel, color.AlphaModel:
		return 1
	case color.Gray16Model, color.Alpha16Model:
		return 2
	case color.YCbCrModel:
		return 3
	case color.RGBAModel, color.NRGBAModel, color.CMYKModel, color.NYCbCrAModel:
		return 4
	case color.RGBA64Model, color.NRGBA64Model:
		return 8
	}
	if _, ok := m.(color.Palette); ok {
		return 1
	}
	return 8 // unknown: the widest Go image type
}

// DecodeMemory is an upper bound of the bytes that decoding and preprocessing an image with
// header h hold at once: the decoder's own image, its RGBA copy, the copy EXIF orientation
// may make (JPEG), the resize pass's intermediate rows and the output tensor. It follows
// decodeRGBA and ToTensorInto; change it with them.
func (h Header) DecodeMemory(o Options) int64 {
	px := int64(h.Width) * int64(h.Height)
	per := int64(h.BytesPerPixel) + 4 // the decoder's image, then its RGBA copy
	if h.Format == fmtJPEG.name {
		per += 4 // orient's rotated copy
	}
	resize := int64(max(h.Width, h.Height)) * int64(o.ImageSize) * 3
	return px*per + resize + int64(o.Len())*4 + 256<<10 // + the decoders' fixed state (zlib, Huffman tables, buffers)
}
