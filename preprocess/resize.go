package preprocess

import (
	"fmt"
	"image"
)

// ResizeInto resizes all of img to size×size, not keeping its aspect ratio — torchvision's
// Resize((size, size)) on a PIL image (Pillow BILINEAR with antialiasing, bit-exact, like
// ToTensorInto) — and normalizes (x/255 - mean)/std into dst's three planes (CHW, length
// 3·size·size; it panics otherwise). img may be a sub-image (e.g. m.SubImage(box) of a decoded
// *image.RGBA): torchvision's RandomResizedCrop is that crop followed by this resize. With
// mean 0 and std 1 the values are x/255.
func ResizeInto(dst []float32, img image.Image, size int, mean, std [3]float32) {
	if size <= 0 || len(dst) != 3*size*size {
		panic(fmt.Sprintf("preprocess.ResizeInto: dst has length %d, want 3·%d·%d", len(dst), size, size))
	}
	m, ok := img.(*image.RGBA)
	if !ok || !m.Opaque() {
		m = toRGBA(img)
	}
	if m.Rect.Dx() <= 0 || m.Rect.Dy() <= 0 {
		clear(dst)
		return
	}
	lut := normLUT(mean, std)
	// resizeCropNormalize reads rows from m.Pix with m.Stride, so a sub-image (whose Pix starts
	// at its Min) is read in place.
	resizeCropNormalize(dst, m, size, size, 0, 0, size, &lut)
}

// normLUT maps each 8-bit level of each channel to (v/255 - mean)/std.
func normLUT(mean, std [3]float32) (lut [3][256]float32) {
	for c := 0; c < 3; c++ {
		mc, sc := float64(mean[c]), float64(std[c])
		for v := 0; v < 256; v++ {
			lut[c][v] = float32((float64(v)/255 - mc) / sc)
		}
	}
	return lut
}
