//go:build cgo

package kernels

/*
#cgo CFLAGS: -O3
#cgo LDFLAGS: -lm
#include "simd.h"
*/
import "C"

import (
	"runtime"
	"unsafe"
)

// HasSIMD reports whether the float32 kernels of simd.h (C, vectorized by GCC) are built in.
const HasSIMD = true

// simdMin is the length below which a float32 loop stays in Go (a cgo call costs ~50 ns).
const simdMin = 64

func f32ptr(s []float32) *C.float { return (*C.float)(unsafe.Pointer(unsafe.SliceData(s))) }

// cBinary runs o = x op y (x or y nil: the scalar cx / cy instead) in C when T is float32, op
// one of Add, Sub, Mul, Div and the row long enough; it reports whether it did.
func cBinary[T Float](op BinaryOp, o, x, y []T, cx, cy T) bool {
	if forceGo || len(o) < simdMin || op > Div {
		return false
	}
	of, ok := any(o).([]float32)
	if !ok {
		return false
	}
	n := C.int64_t(len(o))
	switch {
	case x != nil && y != nil:
		C.artnet_vv(C.int(op), f32ptr(of), f32ptr(any(x).([]float32)), f32ptr(any(y).([]float32)), n)
	case y == nil:
		C.artnet_vs(C.int(op), f32ptr(of), f32ptr(any(x).([]float32)), C.float(any(cy).(float32)), n)
	default:
		C.artnet_sv(C.int(op), f32ptr(of), C.float(any(cx).(float32)), f32ptr(any(y).([]float32)), n)
	}
	return true
}

// cLogistic runs o = 1/(1+e^-x) in C (float32 only); it reports whether it did.
func cLogistic[T Float](o, x []T) bool {
	of, ok := any(o).([]float32)
	if !ok || forceGo || len(o) < simdMin {
		return false
	}
	C.artnet_logistic(f32ptr(of), f32ptr(any(x).([]float32)), C.int64_t(len(o)))
	return true
}

func cConv2D(p Conv2DParams) C.artnet_conv2d {
	return C.artnet_conv2d{
		B: C.int64_t(p.B), C: C.int64_t(p.C), H: C.int64_t(p.H), W: C.int64_t(p.W),
		KH: C.int64_t(p.KH), KW: C.int64_t(p.KW), OH: C.int64_t(p.OH), OW: C.int64_t(p.OW),
		SY: C.int64_t(p.SY), SX: C.int64_t(p.SX), PY: C.int64_t(p.PY), PX: C.int64_t(p.PX),
		DY: C.int64_t(p.DY), DX: C.int64_t(p.DX), IDY: C.int64_t(p.IDY), IDX: C.int64_t(p.IDX),
	}
}

// cDepthwiseForward runs DepthwiseConv2D's planes [lo, hi) in C (float32 only).
func cDepthwiseForward[T Float](out, x, w []T, p Conv2DParams, cols []colRange, lo, hi int) bool {
	of, ok := any(out).([]float32)
	if !ok || forceGo {
		return false
	}
	cp := cConv2D(p)
	cc := make([]C.artnet_colrange, len(cols))
	for j, cr := range cols {
		cc[j] = C.artnet_colrange{first: C.int64_t(cr.first), step: C.int64_t(cr.step), end: C.int64_t(cr.end), off: C.int64_t(cr.off)}
	}
	scratch := make([]float32, DepthwiseScratch(p, false))
	C.artnet_dw_forward(f32ptr(of), f32ptr(any(x).([]float32)), f32ptr(any(w).([]float32)), &cp, unsafe.SliceData(cc), C.int64_t(lo), C.int64_t(hi), f32ptr(scratch))
	return true
}

// cDepthwiseFilterGrad runs DepthwiseFilterGrad's channels [lo, hi) in C (float32 only).
func cDepthwiseFilterGrad[T Float](dw, x, g []T, p Conv2DParams, lo, hi int) bool {
	of, ok := any(dw).([]float32)
	if !ok || forceGo {
		return false
	}
	cp := cConv2D(p)
	scratch := make([]float32, DepthwiseScratch(p, true))
	C.artnet_dw_filter_grad(f32ptr(of), f32ptr(any(x).([]float32)), f32ptr(any(g).([]float32)), &cp, C.int64_t(lo), C.int64_t(hi), f32ptr(scratch))
	return true
}

// cSum returns sum32(x) computed in C, when T is float32 and x long enough.
func cSum[T Float](x []T) (T, bool) {
	xf, ok := any(x).([]float32)
	if !ok || forceGo || len(x) < simdMin {
		return 0, false
	}
	return T(C.artnet_sum(f32ptr(xf), C.int64_t(len(xf)))), true
}

// cFused evaluates a fused expression over out[lo:hi] in C (simd.h's artnet_fused).
func cFused(out []float32, leaves []Leaf, code []Instr, lo, hi int) bool {
	if forceGo {
		return false
	}
	addrs, run, period := FusedCArgs(leaves)
	tmp := make([]float32, (len(code)+len(leaves))*FusedBlock)
	C.artnet_fused(f32ptr(out), (*C.uintptr_t)(unsafe.Pointer(&addrs[0])), (*C.int64_t)(&run[0]), (*C.int64_t)(&period[0]),
		C.int64_t(len(leaves)), (*C.artnet_instr)(unsafe.Pointer(&code[0])), C.int64_t(len(code)), C.int64_t(lo), C.int64_t(hi), f32ptr(tmp))
	runtime.KeepAlive(leaves)
	return true
}

// An Instr is passed to C as an artnet_instr.
var _ = [1]struct{}{}[unsafe.Sizeof(Instr{})-unsafe.Sizeof(C.artnet_instr{})]
