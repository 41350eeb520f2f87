package preprocess

import (
	"image"
	"math/rand/v2"
	"slices"
	"testing"
)

// TestResizeCropNormalizeSame checks the loop-rearranged resampler against the per-pixel one
// on random images, sizes, scales (down and up) and crop windows: the same float32 bits.
func TestResizeCropNormalizeSame(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 2))
	lut := normLUT([3]float32{0.485, 0.456, 0.406}, [3]float32{0.229, 0.224, 0.225})
	for it := 0; it < 300; it++ {
		w, h := 1+rng.IntN(300), 1+rng.IntN(300)
		m := image.NewRGBA(image.Rect(0, 0, w, h))
		for i := range m.Pix {
			m.Pix[i] = uint8(rng.IntN(256))
		}
		for i := 3; i < len(m.Pix); i += 4 {
			m.Pix[i] = 255
		}
		rw, rh := 1+rng.IntN(260), 1+rng.IntN(260)
		s := 1 + rng.IntN(min(rw, rh))
		x0, y0 := rng.IntN(rw-s+1), rng.IntN(rh-s+1)
		got, want := make([]float32, 3*s*s), make([]float32, 3*s*s)
		resizeCropNormalize(got, m, rw, rh, x0, y0, s, &lut)
		resizeCropNormalizeRef(want, m, rw, rh, x0, y0, s, &lut)
		if !slices.Equal(got, want) {
			t.Fatalf("%d×%d → %d×%d, crop %d at (%d,%d): outputs differ", w, h, rw, rh, s, x0, y0)
		}
	}
}

// resizeCropNormalizeRef is the per-pixel form of resizeCropNormalize (the version before its
// loops were rearranged): it resizes the opaque origin-based m to rw×rh, takes the s×s window at
// (x0, y0) of the result and writes it normalized through lut into dst's three planes.
func resizeCropNormalizeRef(dst []float32, m *image.RGBA, rw, rh, x0, y0, s int, lut *[3][256]float32) {
	w, h := m.Rect.Dx(), m.Rect.Dy()
	hc := bilinearCoeffs(w, rw, x0, s)
	vc := bilinearCoeffs(h, rh, y0, s)
	rowFirst := vc.start[0]
	rowLast := vc.start[s-1] + vc.taps[s-1]
	for i := 1; i < s; i++ { // starts are monotonic, but be safe
		rowFirst = min(rowFirst, vc.start[i])
		rowLast = max(rowLast, vc.start[i]+vc.taps[i])
	}
	// Horizontal pass over the needed source rows into an 8-bit s-wide intermediate.
	rows := rowLast - rowFirst
	tmp := make([]uint8, rows*s*3)
	const half = int32(1) << (precisionBits - 1)
	for r := 0; r < rows; r++ {
		src := m.Pix[(rowFirst+r)*m.Stride : (rowFirst+r)*m.Stride+4*w]
		out := tmp[r*s*3 : (r+1)*s*3]
		for j := 0; j < s; j++ {
			k := hc.k[j*hc.ksize : j*hc.ksize+hc.taps[j]]
			p := src[4*hc.start[j] : 4*(hc.start[j]+len(k))]
			s0, s1, s2 := half, half, half
			for t, kv := range k {
				q := p[4*t : 4*t+3]
				s0 += int32(q[0]) * kv
				s1 += int32(q[1]) * kv
				s2 += int32(q[2]) * kv
			}
			out[3*j], out[3*j+1], out[3*j+2] = clip8(s0), clip8(s1), clip8(s2)
		}
	}
	// Vertical pass, straight into the normalized planes.
	plane := s * s
	dr, dg, db := dst[:plane], dst[plane:2*plane], dst[2*plane:3*plane]
	stride := s * 3
	for i := 0; i < s; i++ {
		k := vc.k[i*vc.ksize : i*vc.ksize+vc.taps[i]]
		base := (vc.start[i] - rowFirst) * stride
		o := i * s
		for j := 0; j < s; j++ {
			s0, s1, s2 := half, half, half
			off := base + 3*j
			for _, kv := range k {
				q := tmp[off : off+3]
				s0 += int32(q[0]) * kv
				s1 += int32(q[1]) * kv
				s2 += int32(q[2]) * kv
				off += stride
			}
			dr[o+j] = lut[0][clip8(s0)]
			dg[o+j] = lut[1][clip8(s1)]
			db[o+j] = lut[2][clip8(s2)]
		}
	}
}
