//go:build cgo && amd64

// The baseline (x86-64, SSE2) compilation of simd.h for clonecheck.go; see there.
#define ARTNET_CLONES
#include "../simd.h"

void base_fused(float *out, const uintptr_t *leafAddr, const int64_t *run, const int64_t *period, int64_t nleaves,
                const artnet_instr *code, int64_t ninstr, int64_t lo, int64_t hi, float *tmp) {
	artnet_fused(out, leafAddr, run, period, nleaves, code, ninstr, lo, hi, tmp);
}

float base_sum(const float *x, int64_t n) { return artnet_sum(x, n); }

void base_dw_forward(float *out, const float *x, const float *w, const artnet_conv2d *p, const artnet_colrange *cols,
                     int64_t lo, int64_t hi, float *scratch) {
	artnet_dw_forward(out, x, w, p, cols, lo, hi, scratch);
}

void base_dw_filter_grad(float *dw, const float *x, const float *g, const artnet_conv2d *p, int64_t lo, int64_t hi,
                         float *scratch) {
	artnet_dw_filter_grad(dw, x, g, p, lo, hi, scratch);
}
