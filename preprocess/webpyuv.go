package preprocess

import "image"

// Lossy WebP (VP8) stores BT.601 limited-range ("studio swing") Y'CbCr, but
// golang.org/x/image/webp returns it as an image.YCbCr, whose colour model is JFIF full
// range: converted as JPEG, colours come out washed out (measured against Pillow/libwebp on a
// painting: mean 7.8 levels, max 22). webpToRGBA converts as libwebp 1.2 does
// (src/dsp/upsampling.c fancy upsampler, src/dsp/yuv.h VP8YUVToR/G/B, src/dec/io_dec.c row
// pairing); the VP8 planes themselves are bit-exact by the format's definition.

func webpClip8(v int32) uint8 {
	const mask = (256 << 6) - 1
	if v&^mask == 0 {
		return uint8(v >> 6)
	}
	if v < 0 {
		return 0
	}
	return 255
}

func webpRGB(y, u, v uint8) (uint8, uint8, uint8) {
	yy := int32(y) * 19077 >> 8
	r := yy + int32(v)*26149>>8 - 14234
	g := yy - int32(u)*6419>>8 - int32(v)*13320>>8 + 8708
	b := yy + int32(u)*33050>>8 - 17685
	return webpClip8(r), webpClip8(g), webpClip8(b)
}

// webpUpsampleRow computes one output row of chroma (length w) from chroma rows t (the
// row libwebp calls "top") and c ("cur"), for the top (nearer t) or bottom (nearer c) row of
// a pair.
func webpUpsampleRow(out, t, c []uint8, w int, bottom bool) {
	near, far := t, c
	if bottom {
		near, far = c, t
	}
	out[0] = uint8((3*int32(near[0]) + int32(far[0]) + 2) >> 2)
	last := (w - 1) >> 1
	for x := 1; x <= last; x++ {
		tl, tt, l, cc := int32(t[x-1]), int32(t[x]), int32(c[x-1]), int32(c[x])
		avg := tl + tt + l + cc + 8
		d12 := (avg + 2*(tt+l)) >> 3
		d03 := (avg + 2*(tl+cc)) >> 3
		if !bottom {
			out[2*x-1] = uint8((d12 + tl) >> 1)
			out[2*x] = uint8((d03 + tt) >> 1)
		} else {
			out[2*x-1] = uint8((d03 + l) >> 1)
			out[2*x] = uint8((d12 + cc) >> 1)
		}
	}
	if w&1 == 0 {
		out[w-1] = uint8((3*int32(near[last]) + int32(far[last]) + 2) >> 2)
	}
}

// webpToRGBA converts a 4:2:0 YCbCr image decoded from VP8 as libwebp does, or returns nil
// for anything else.
func webpToRGBA(src *image.YCbCr) *image.RGBA {
	if src.SubsampleRatio != image.YCbCrSubsampleRatio420 || src.Rect.Min != (image.Point{}) {
		return nil
	}
	w, h := src.Rect.Dx(), src.Rect.Dy()
	cw := (w + 1) / 2
	crow := func(p []uint8, k int) []uint8 { return p[k*src.CStride : k*src.CStride+cw] }
	dst := image.NewRGBA(image.Rect(0, 0, w, h))
	us, vs := make([]uint8, w), make([]uint8, w)
	for y := 0; y < h; y++ {
		var ku, kv int // chroma rows "top" and "cur"
		bottom := false
		switch {
		case y == 0:
			ku, kv = 0, 0
		case y&1 == 1 && y == h-1: // last row of an even-height picture
			ku, kv = y/2, y/2
		case y&1 == 1:
			ku, kv = y/2, y/2+1
		default:
			ku, kv, bottom = y/2-1, y/2, true
		}
		webpUpsampleRow(us, crow(src.Cb, ku), crow(src.Cb, kv), w, bottom)
		webpUpsampleRow(vs, crow(src.Cr, ku), crow(src.Cr, kv), w, bottom)
		yr := src.Y[y*src.YStride : y*src.YStride+w]
		out := dst.Pix[y*dst.Stride : y*dst.Stride+4*w]
		for x, yy := range yr {
			o := out[4*x : 4*x+4]
			o[0], o[1], o[2] = webpRGB(yy, us[x], vs[x])
			o[3] = 255
		}
	}
	return dst
}

// webpAlphaToRGBA converts a lossy WebP with alpha, compositing over white.
func webpAlphaToRGBA(src *image.NYCbCrA) *image.RGBA {
	dst := webpToRGBA(&src.YCbCr)
	if dst == nil {
		return nil
	}
	w, h := dst.Rect.Dx(), dst.Rect.Dy()
	for y := 0; y < h; y++ {
		a := src.A[y*src.AStride : y*src.AStride+w]
		p := dst.Pix[y*dst.Stride : y*dst.Stride+4*w]
		for x, av := range a {
			if av == 255 {
				continue
			}
			for k := 0; k < 3; k++ {
				// c·a + 255·(1 − a), rounded, on the non-premultiplied colour.
				p[4*x+k] = uint8((int32(p[4*x+k])*int32(av) + 255*(255-int32(av)) + 127) / 255)
			}
		}
	}
	return dst
}
