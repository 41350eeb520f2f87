package preprocess

import "image"

// CheckBounds applies the pixel cap (MaxPixels) and the minimum side (MinSide) to an image
// decoded elsewhere, as Decode does from a file's header: for callers that hand over an
// image.Image. The error wraps ErrTooManyPixels, ErrTooSmall or ErrCorrupt (empty bounds).
func (o Options) CheckBounds(b image.Rectangle) error {
	return checkSize(&format{name: "image"}, b.Dx(), b.Dy(), o)
}
