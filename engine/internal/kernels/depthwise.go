package kernels

// Conv2DParams are the geometry of a 2-D depthwise convolution over NCHW planes: kernel taps
// KH×KW, strides S, start paddings P (the end padding follows from the output size; negative
// means cropping), kernel dilations D and input dilations ID (ID > 1: zeros between input
// elements, as in a strided convolution's input gradient).
type Conv2DParams struct {
	B, C, H, W     int // input
	KH, KW         int // kernel taps
	OH, OW         int // output
	SY, SX, PY, PX int
	DY, DX         int
	IDY, IDX       int
}

// colRange is, for kernel column j, the outputs it reaches, as (first, step, end) over ox, and
// the input offset: input column (ox·SX + off)/IDX.
type colRange struct{ first, step, end, off int }

// depthwiseCols returns, per kernel column, the outputs it reaches and its input offset.
func depthwiseCols(p Conv2DParams) []colRange {
	wd := (p.W-1)*p.IDX + 1
	cols := make([]colRange, p.KW)
	for j := range p.KW {
		off := j*p.DX - p.PX
		ox0, ox1 := validRange(p.OW, off, p.SX, wd)
		step := 1
		if p.IDX > 1 {
			// Only positions on the dilation grid: (ox·SX + off) ≡ 0 (mod IDX).
			for ox0 < ox1 && (ox0*p.SX+off)%p.IDX != 0 {
				ox0++
			}
			step = p.IDX / gcd(p.SX, p.IDX)
		}
		cols[j] = colRange{ox0, step, ox1, off}
	}
	return cols
}

// DepthwiseCols returns, per kernel column j of p, the outputs it reaches as (first, step, end)
// over ox and its input offset (simd.h's artnet_colrange; for clonecheck's test).
func DepthwiseCols(p Conv2DParams) [][4]int {
	var out [][4]int
	for _, c := range depthwiseCols(p) {
		out = append(out, [4]int{c.first, c.step, c.end, c.off})
	}
	return out
}

// DepthwiseConv2D computes out[b,c,oy,ox] = Σ_{i,j} w[c,i,j]·x̃[b,c, oy·SY+i·DY-PY, ox·SX+j·DX-PX]
// with x [B,C,H,W], w [C,KH,KW] (a [C,1,KH,KW] kernel), out [B,C,OH,OW], x̃ the input dilated
// by ID and zero outside. Planes run in parallel; each output sums its taps in row-major order.
func DepthwiseConv2D[T Float](out, x, w []T, p Conv2DParams) {
	hd := (p.H-1)*p.IDY + 1
	cols := depthwiseCols(p)
	planes := p.B * p.C
	parallelFor(planes, planes*p.OH*p.OW*p.KH*p.KW, func(lo, hi int) {
		if cDepthwiseForward(out, x, w, p, cols, lo, hi) {
			return
		}
		for plane := lo; plane < hi; plane++ {
			c := plane % p.C
			o := out[plane*p.OH*p.OW : (plane+1)*p.OH*p.OW]
			clear(o)
			xp := x[plane*p.H*p.W : (plane+1)*p.H*p.W]
			wp := w[c*p.KH*p.KW : (c+1)*p.KH*p.KW]
			for i := range p.KH {
				for oy := range p.OH {
					u := oy*p.SY + i*p.DY - p.PY
					if u < 0 || u >= hd || u%p.IDY != 0 {
						continue
					}
					xrow := xp[(u/p.IDY)*p.W : (u/p.IDY+1)*p.W]
					orow := o[oy*p.OW : (oy+1)*p.OW]
					for j, cr := range cols {
						if cr.first >= cr.end {
							continue
						}
						wv := wp[i*p.KW+j]
						switch {
						case p.IDX == 1 && p.SX == 1:
							src := xrow[cr.first+cr.off : cr.end+cr.off]
							dst := orow[cr.first:cr.end]
							for k := range dst {
								dst[k] += T(wv * src[k])
							}
						case p.IDX == 1:
							for ox := cr.first; ox < cr.end; ox++ {
								orow[ox] += T(wv * xrow[ox*p.SX+cr.off])
							}
						default:
							for ox := cr.first; ox < cr.end; ox += cr.step {
								orow[ox] += T(wv * xrow[(ox*p.SX+cr.off)/p.IDX])
							}
						}
					}
				}
			}
		}
	})
}

func gcd(a, b int) int {
	for b != 0 {
		a, b = b, a%b
	}
	return a
}

// validRange returns the outputs [ox0, ox1) of n whose input position ox·s+off is in [0, wd).
func validRange(n, off, s, wd int) (int, int) {
	ox0 := 0
	if off < 0 {
		ox0 = (-off + s - 1) / s
	}
	ox1 := n
	if last := wd - 1 - off; last < 0 {
		ox1 = 0
	} else {
		ox1 = min(n, last/s+1)
	}
	return ox0, ox1
}

// DepthwiseFilterGrad computes the kernel gradient of DepthwiseConv2D (input dilation 1):
// dw[c,i,j] = Σ_b Σ_{oy,ox} g[b,c,oy,ox]·x[b,c, oy·SY+i·DY-PY, ox·SX+j·DX-PX] (zero outside),
// with g [B,C,OH,OW] the output gradient, dw [C,KH,KW]. Channels run in parallel. Each sum runs
// over b, then over one plane's positions, in 16 lanes (as simd.h's vectorized loop, which this
// mirrors bit for bit): with strides 1 over the planes laid out Wp wide (filterGradPadded),
// otherwise over each output row's valid run (lane: position in the run mod 16); the lanes are
// added up pairwise at the end.
func DepthwiseFilterGrad[T Float](dw, x, g []T, p Conv2DParams) {
	parallelFor(p.C, p.B*p.C*p.OH*p.OW*p.KH*p.KW, func(lo, hi int) {
		if cDepthwiseFilterGrad(dw, x, g, p, lo, hi) {
			return
		}
		if p.SY == 1 && p.SX == 1 {
			filterGradPadded(dw, x, g, p, lo, hi)
			return
		}
		for c := lo; c < hi; c++ {
			for i := range p.KH {
				for j := range p.KW {
					off := j*p.DX - p.PX
					ox0, ox1 := validRange(p.OW, off, p.SX, p.W)
					var acc [16]T
					for b := range p.B {
						plane := b*p.C + c
						xp := x[plane*p.H*p.W : (plane+1)*p.H*p.W]
						gp := g[plane*p.OH*p.OW : (plane+1)*p.OH*p.OW]
						for oy := range p.OH {
							u := oy*p.SY + i*p.DY - p.PY
							if u < 0 || u >= p.H || ox0 >= ox1 {
								continue
							}
							xrow := xp[u*p.W : (u+1)*p.W]
							grow := gp[oy*p.OW : (oy+1)*p.OW]
							for ox := ox0; ox < ox1; ox++ {
								acc[(ox-ox0)%16] += T(grow[ox] * xrow[ox*p.SX+off])
							}
						}
					}
					dw[(c*p.KH+i)*p.KW+j] = sumLanes(&acc)
				}
			}
		}
	})
}

// sumLanes returns the 16 lanes of acc added up pairwise (simd.h's artnet_fold_lanes).
func sumLanes[T Float](acc *[16]T) T {
	for w := 8; w >= 1; w /= 2 {
		for l := range w {
			acc[l] += acc[l+w]
		}
	}
	return acc[0]
}

// paddedPlane returns the padded plane's sides Hp, Wp of a stride-1 depthwise convolution (the
// input rows and columns its outputs read) and the flat length L of an output plane laid out Wp
// wide.
func paddedPlane(p Conv2DParams) (hp, wp, l int) {
	hp, wp = p.OH+(p.KH-1)*p.DY, p.OW+(p.KW-1)*p.DX
	return hp, wp, (p.OH-1)*wp + p.OW
}

// DepthwiseScratch is the scratch (floats) simd.h's depthwise kernels take for one call: the
// forward's padded plane and output plane Wp wide, or the kernel gradient's per batch element a
// padded plane and a gradient plane Wp wide (strides 1; none otherwise).
func DepthwiseScratch(p Conv2DParams, filterGrad bool) int {
	if p.SY != 1 || p.SX != 1 {
		return 0
	}
	hp, wp, l := paddedPlane(p)
	if filterGrad {
		return p.B * (hp*wp + l)
	}
	return hp*wp + p.OH*wp
}

// filterGradPadded is DepthwiseFilterGrad with strides 1 for channels [lo, hi): x zero-padded
// into planes [Hp×Wp], g laid out Wp wide (zero columns from OW), each tap's sum one dot product
// of the flat planes, g against x shifted by the tap (simd.h's artnet_dw_filter_grad).
func filterGradPadded[T Float](dw, x, g []T, p Conv2DParams, lo, hi int) {
	hp, wp, l := paddedPlane(p)
	plane := hp*wp + l
	scratch := make([]T, DepthwiseScratch(p, true))
	for c := lo; c < hi; c++ {
		for b := range p.B {
			xpad, gpad := scratch[b*plane:b*plane+hp*wp], scratch[b*plane+hp*wp:(b+1)*plane]
			clear(scratch[b*plane : (b+1)*plane])
			xp := x[(b*p.C+c)*p.H*p.W:]
			for r := max(p.PY, 0); r < hp && r-p.PY < p.H; r++ {
				v0, v1 := max(-p.PX, 0), min(p.W, wp-p.PX)
				if v0 < v1 {
					copy(xpad[r*wp+p.PX+v0:r*wp+p.PX+v1], xp[(r-p.PY)*p.W+v0:])
				}
			}
			gp := g[(b*p.C+c)*p.OH*p.OW:]
			for oy := range p.OH {
				copy(gpad[oy*wp:oy*wp+p.OW], gp[oy*p.OW:(oy+1)*p.OW])
			}
		}
		for i := range p.KH {
			for j := range p.KW {
				var acc [16]T
				for b := range p.B {
					gpad := scratch[b*plane+hp*wp : (b+1)*plane]
					src := scratch[b*plane+i*p.DY*wp+j*p.DX:]
					for q, gv := range gpad {
						acc[q%16] += T(gv * src[q])
					}
				}
				dw[(c*p.KH+i)*p.KW+j] = sumLanes(&acc)
			}
		}
	}
}
