package preprocess

import (
	"fmt"
	"image"
	"math"
)

// ResizedSize returns the size of a w×h image after its shorter side is resized to
// ResizeSize, keeping the aspect ratio with torchvision's truncation
// (long' = int(ResizeSize·long/short)).
func ResizedSize(w, h int, o Options) (rw, rh int) {
	s := o.ResizeSize
	if w <= 0 || h <= 0 {
		return 0, 0
	}
	if w <= h {
		return s, max(1, int(int64(s)*int64(h)/int64(w)))
	}
	return max(1, int(int64(s)*int64(w)/int64(h))), s
}

// cropOrigin returns the top-left corner of the centre crop in resized coordinates, with
// torchvision's CenterCrop rounding (round half to even of (size - crop)/2).
func cropOrigin(rw, rh, crop int) (x, y int) {
	return int(math.RoundToEven(float64(rw-crop) / 2)), int(math.RoundToEven(float64(rh-crop) / 2))
}

// CropBox returns where the model's ImageSize×ImageSize centre crop lies in the coordinates of
// a w×h image (as returned by DecodeImage, i.e. after EXIF orientation), rounded to whole
// pixels. A heatmap over the crop maps onto this rectangle of the original image.
func CropBox(w, h int, o Options) image.Rectangle {
	rw, rh := ResizedSize(w, h, o)
	if rw == 0 || rh == 0 {
		return image.Rectangle{}
	}
	x0, y0 := cropOrigin(rw, rh, o.ImageSize)
	sx, sy := float64(w)/float64(rw), float64(h)/float64(rh)
	r := image.Rect(
		int(math.Round(float64(x0)*sx)), int(math.Round(float64(y0)*sy)),
		int(math.Round(float64(x0+o.ImageSize)*sx)), int(math.Round(float64(y0+o.ImageSize)*sy)))
	return r.Intersect(image.Rect(0, 0, w, h))
}

// ToTensor resizes img's shorter side to ResizeSize (bilinear), centre-crops
// ImageSize×ImageSize and normalizes (x/255 - mean)/std into a planar CHW float32 slice of
// length 3·ImageSize·ImageSize (all R, then all G, then all B). Transparent pixels are
// composited over white. An empty image gives an all-zero tensor. It panics if o is invalid
// (see Options.Validate); Decode and DecodeFile check o first.
func ToTensor(img image.Image, o Options) []float32 {
	if err := o.Validate(); err != nil {
		panic("preprocess.ToTensor: " + err.Error())
	}
	dst := make([]float32, o.Len())
	ToTensorInto(dst, img, o)
	return dst
}

// ToTensorInto is ToTensor writing into dst, which must have length 3·ImageSize·ImageSize
// (for example one image's slot of a batch); it panics otherwise.
func ToTensorInto(dst []float32, img image.Image, o Options) {
	if err := o.Validate(); err != nil {
		panic("preprocess.ToTensorInto: " + err.Error())
	}
	if len(dst) != o.Len() {
		panic(fmt.Sprintf("preprocess.ToTensorInto: dst has length %d, want 3·%d·%d = %d", len(dst), o.ImageSize, o.ImageSize, o.Len()))
	}
	m := toRGBA(img)
	w, h := m.Rect.Dx(), m.Rect.Dy()
	if w <= 0 || h <= 0 {
		clear(dst)
		return
	}
	rw, rh := ResizedSize(w, h, o)
	x0, y0 := cropOrigin(rw, rh, o.ImageSize)
	lut := normLUT(o.Mean, o.Std)
	resizeCropNormalize(dst, m, rw, rh, x0, y0, o.ImageSize, &lut)
}
