package preprocess

import (
	"image"
	"image/draw"
)

// toRGBA converts any image to an opaque *image.RGBA with bounds at the origin. Transparent
// and translucent pixels are composited over white. An *image.RGBA that is already opaque
// and at the origin is returned as is.
func toRGBA(src image.Image) *image.RGBA {
	b := src.Bounds()
	if m, ok := src.(*image.RGBA); ok && b.Min == (image.Point{}) && m.Opaque() {
		return m
	}
	if y, ok := src.(*image.YCbCr); ok {
		if m := yccToRGBA(y); m != nil {
			return m
		}
	}
	dst := image.NewRGBA(image.Rect(0, 0, b.Dx(), b.Dy()))
	if op, ok := src.(interface{ Opaque() bool }); !ok || !op.Opaque() {
		draw.Draw(dst, dst.Bounds(), image.White, image.Point{}, draw.Src)
	}
	// draw has fast paths for YCbCr, Gray, CMYK, RGBA and NRGBA; the rest (16-bit, paletted)
	// goes through RGBA64 with the same premultiplied-alpha arithmetic.
	draw.Draw(dst, dst.Bounds(), src, b.Min, draw.Over)
	return dst
}

// orient returns m transformed for display according to EXIF orientation o (1..8):
//
//	1 identity, 2 mirror horizontally, 3 rotate 180°, 4 mirror vertically,
//	5 transpose, 6 rotate 90° clockwise, 7 transverse, 8 rotate 90° counter-clockwise.
//
// m must have bounds at the origin.
func orient(m *image.RGBA, o int) *image.RGBA {
	if o <= 1 || o > 8 {
		return m
	}
	w, h := m.Rect.Dx(), m.Rect.Dy()
	dw, dh := w, h
	if o >= 5 {
		dw, dh = h, w
	}
	d := image.NewRGBA(image.Rect(0, 0, dw, dh))
	for dy := 0; dy < dh; dy++ {
		row := d.Pix[dy*d.Stride : dy*d.Stride+4*dw]
		for dx := 0; dx < dw; dx++ {
			var sx, sy int
			switch o {
			case 2:
				sx, sy = w-1-dx, dy
			case 3:
				sx, sy = w-1-dx, h-1-dy
			case 4:
				sx, sy = dx, h-1-dy
			case 5:
				sx, sy = dy, dx
			case 6:
				sx, sy = dy, h-1-dx
			case 7:
				sx, sy = w-1-dy, h-1-dx
			case 8:
				sx, sy = w-1-dy, dx
			}
			s := sy*m.Stride + 4*sx
			copy(row[4*dx:4*dx+4], m.Pix[s:s+4])
		}
	}
	return d
}
