package preprocess

import "image"

// JPEG colour conversion as libjpeg(-turbo) does it, which is what Pillow (and so
// torchvision) sees: "fancy" triangle-filter upsampling of 4:2:0, 4:2:2 and 4:4:0 chroma
// (libjpeg-turbo 2.1 jdsample.c h2v2_, h2v1_ and h1v2_fancy_upsample) and the fixed-point YCbCr → RGB
// tables of jdcolor.c. Go's image/draw replicates chroma instead and rounds differently;
// measured against Pillow 9.4 on ../shared/paintings this halves the mean difference and
// removes the large errors at sharp colour edges. The remaining difference (a level or
// two) comes from image/jpeg's IDCT, which is not libjpeg's.

const (
	yccScaleBits = 16
	yccHalf      = 1 << (yccScaleBits - 1)
)

func yccFix(x float64) int32 { return int32(x*(1<<yccScaleBits) + 0.5) }

var crR, cbB, crG, cbG [256]int32

func init() {
	for i := 0; i < 256; i++ {
		x := int32(i - 128)
		crR[i] = (yccFix(1.40200)*x + yccHalf) >> yccScaleBits
		cbB[i] = (yccFix(1.77200)*x + yccHalf) >> yccScaleBits
		crG[i] = -yccFix(0.71414) * x
		cbG[i] = -yccFix(0.34414)*x + yccHalf
	}
}

func clampU8(v int32) uint8 {
	if v < 0 {
		return 0
	}
	if v > 255 {
		return 255
	}
	return uint8(v)
}

// yccToRGBA converts a YCbCr image as libjpeg would, or returns nil for subsampling ratios
// it does not handle (the caller falls back to image/draw).
func yccToRGBA(src *image.YCbCr) *image.RGBA {
	b := src.Rect
	w, h := b.Dx(), b.Dy()
	var hs, vs int // chroma subsampling factors
	switch src.SubsampleRatio {
	case image.YCbCrSubsampleRatio444:
		hs, vs = 1, 1
	case image.YCbCrSubsampleRatio422:
		hs, vs = 2, 1
	case image.YCbCrSubsampleRatio420:
		hs, vs = 2, 2
	case image.YCbCrSubsampleRatio440:
		hs, vs = 1, 2
	default:
		return nil
	}
	// Chroma planes relative to the image's top-left chroma sample.
	cOff := src.COffset(b.Min.X, b.Min.Y)
	if b.Min.X%hs != 0 || b.Min.Y%vs != 0 {
		return nil // sub-image not on a chroma sample boundary
	}
	cw, ch := (w+hs-1)/hs, (h+vs-1)/vs // libjpeg's downsampled_width/height
	dst := image.NewRGBA(image.Rect(0, 0, w, h))
	cbRow := make([]uint8, w+1)
	crRow := make([]uint8, w+1)
	up := func(out []uint8, plane []uint8, cy, v int) {
		// Upsample chroma row cy (vertically blended for h2v2) into out[0:w].
		row0 := plane[cOff+cy*src.CStride:]
		if hs == 1 && vs == 1 {
			copy(out[:w], row0[:w])
			return
		}
		if hs == 1 { // h1v2: vertical blend only
			ny, bias := cy-1, int32(1)
			if v == 1 {
				ny, bias = cy+1, 2
			}
			ny = max(0, min(ny, ch-1))
			in0, in1 := row0[:w], plane[cOff+ny*src.CStride:][:w]
			for i := range out[:w] {
				out[i] = uint8((int32(in0[i])*3 + int32(in1[i]) + bias) >> 2)
			}
			return
		}
		if vs == 1 { // h2v1
			if cw == 1 {
				out[0], out[1] = row0[0], row0[0]
				return
			}
			in := row0[:cw]
			out[0] = in[0]
			out[1] = uint8((int32(in[0])*3 + int32(in[1]) + 2) >> 2)
			for i := 1; i < cw-1; i++ {
				t := int32(in[i]) * 3
				out[2*i] = uint8((t + int32(in[i-1]) + 1) >> 2)
				out[2*i+1] = uint8((t + int32(in[i+1]) + 2) >> 2)
			}
			t := int32(in[cw-1]) * 3
			out[2*cw-2] = uint8((t + int32(in[cw-2]) + 1) >> 2)
			out[2*cw-1] = in[cw-1]
			return
		}
		// h2v2: the nearer row weighs 3, the next nearer (above for even output rows,
		// below for odd ones, replicated at the edges) 1.
		ny := cy - 1
		if v == 1 {
			ny = cy + 1
		}
		ny = max(0, min(ny, ch-1))
		in0, in1 := row0[:cw], plane[cOff+ny*src.CStride:][:cw]
		this := int32(in0[0])*3 + int32(in1[0])
		if cw == 1 {
			out[0], out[1] = uint8((this*4+8)>>4), uint8((this*4+7)>>4)
			return
		}
		next := int32(in0[1])*3 + int32(in1[1])
		out[0] = uint8((this*4 + 8) >> 4)
		out[1] = uint8((this*3 + next + 7) >> 4)
		last := this
		this = next
		for i := 1; i < cw-1; i++ {
			next = int32(in0[i+1])*3 + int32(in1[i+1])
			out[2*i] = uint8((this*3 + last + 8) >> 4)
			out[2*i+1] = uint8((this*3 + next + 7) >> 4)
			last, this = this, next
		}
		out[2*cw-2] = uint8((this*3 + last + 8) >> 4)
		out[2*cw-1] = uint8((this*4 + 7) >> 4)
	}
	for y := 0; y < h; y++ {
		up(cbRow, src.Cb, y/vs, y%vs)
		up(crRow, src.Cr, y/vs, y%vs)
		yRow := src.Y[src.YOffset(b.Min.X, b.Min.Y+y):][:w]
		out := dst.Pix[y*dst.Stride:][:4*w]
		for x, yy := range yRow {
			cb, cr := cbRow[x], crRow[x]
			yv := int32(yy)
			o := out[4*x : 4*x+4]
			o[0] = clampU8(yv + crR[cr])
			o[1] = clampU8(yv + ((cbG[cb] + crG[cr]) >> yccScaleBits))
			o[2] = clampU8(yv + cbB[cb])
			o[3] = 255
		}
	}
	return dst
}
