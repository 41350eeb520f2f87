//go:build cgo && amd64

package clonecheck

/*
#cgo CFLAGS: -O3
#cgo LDFLAGS: -lm
#define ARTNET_CLONES __attribute__((target("avx2")))
#include "../simd.h"

static int cpu_has_avx2(void) {
	__builtin_cpu_init();
	return __builtin_cpu_supports("avx2");
}

// The same kernels for the baseline: simd.h's functions are static, so its second compilation is
// its own translation unit (base.c), with these wrappers.
void base_fused(float *out, const uintptr_t *leafAddr, const int64_t *run, const int64_t *period, int64_t nleaves,
                const artnet_instr *code, int64_t ninstr, int64_t lo, int64_t hi, float *tmp);
float base_sum(const float *x, int64_t n);
void base_dw_forward(float *out, const float *x, const float *w, const artnet_conv2d *p, const artnet_colrange *cols,
                     int64_t lo, int64_t hi, float *scratch);
void base_dw_filter_grad(float *dw, const float *x, const float *g, const artnet_conv2d *p, int64_t lo, int64_t hi,
                         float *scratch);
*/
import "C"

import (
	"runtime"
	"unsafe"

	"github.com/artnet/artnet/engine/internal/kernels"
)

// Target is a compilation of simd.h: AVX2 or the x86-64 baseline.
type Target int

// The targets.
const (
	AVX2 Target = iota
	Baseline
)

func (t Target) String() string { return [...]string{"AVX2", "baseline x86-64"}[t] }

// Usable reports whether this CPU runs t's code (the baseline always).
func (t Target) Usable() bool { return t == Baseline || C.cpu_has_avx2() != 0 }

func fp(s []float32) *C.float { return (*C.float)(unsafe.Pointer(unsafe.SliceData(s))) }

// Fused evaluates code over out (all of it, one block loop) with t's simd.h.
func Fused(t Target, out []float32, leaves []kernels.Leaf, code []kernels.Instr) {
	addrs, run, period := kernels.FusedCArgs(leaves)
	tmp := make([]float32, (len(code)+len(leaves))*C.ARTNET_BLOCK)
	a, r, p := (*C.uintptr_t)(unsafe.Pointer(&addrs[0])), (*C.int64_t)(&run[0]), (*C.int64_t)(&period[0])
	nl, c, nc, n := C.int64_t(len(leaves)), (*C.artnet_instr)(unsafe.Pointer(&code[0])), C.int64_t(len(code)), C.int64_t(len(out))
	if t == AVX2 {
		C.artnet_fused(fp(out), a, r, p, nl, c, nc, 0, n, fp(tmp))
	} else {
		C.base_fused(fp(out), a, r, p, nl, c, nc, 0, n, fp(tmp))
	}
	runtime.KeepAlive(leaves)
}

// Sum is simd.h's 16-lane sum of x with t's code.
func Sum(t Target, x []float32) float32 {
	if t == AVX2 {
		return float32(C.artnet_sum(fp(x), C.int64_t(len(x))))
	}
	return float32(C.base_sum(fp(x), C.int64_t(len(x))))
}

// cParams is p as simd.h's artnet_conv2d: the same sixteen 64-bit integers in the same order
// (amd64's int; the sizes are checked at compile time below).
func cParams(p kernels.Conv2DParams) C.artnet_conv2d { return *(*C.artnet_conv2d)(unsafe.Pointer(&p)) }

var (
	_ = [1]struct{}{}[unsafe.Sizeof(kernels.Conv2DParams{})-unsafe.Sizeof(C.artnet_conv2d{})]
	_ = [1]struct{}{}[unsafe.Sizeof([4]int{})-unsafe.Sizeof(C.artnet_colrange{})]
)

// DepthwiseForward is simd.h's depthwise forward over all planes with t's code, cols being
// kernels.DepthwiseCols(p).
func DepthwiseForward(t Target, out, x, w []float32, p kernels.Conv2DParams, cols [][4]int) {
	cp := cParams(p)
	cc := (*C.artnet_colrange)(unsafe.Pointer(unsafe.SliceData(cols)))
	scratch := make([]float32, kernels.DepthwiseScratch(p, false))
	if t == AVX2 {
		C.artnet_dw_forward(fp(out), fp(x), fp(w), &cp, cc, 0, C.int64_t(p.B*p.C), fp(scratch))
	} else {
		C.base_dw_forward(fp(out), fp(x), fp(w), &cp, cc, 0, C.int64_t(p.B*p.C), fp(scratch))
	}
	runtime.KeepAlive(cols)
}

// DepthwiseFilterGrad is simd.h's depthwise kernel gradient over all channels with t's code.
func DepthwiseFilterGrad(t Target, dw, x, g []float32, p kernels.Conv2DParams) {
	cp := cParams(p)
	scratch := make([]float32, kernels.DepthwiseScratch(p, true))
	if t == AVX2 {
		C.artnet_dw_filter_grad(fp(dw), fp(x), fp(g), &cp, 0, C.int64_t(p.C), fp(scratch))
	} else {
		C.base_dw_filter_grad(fp(dw), fp(x), fp(g), &cp, 0, C.int64_t(p.C), fp(scratch))
	}
}
