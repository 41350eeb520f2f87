// simd.h — artnet's float32 kernels in C, for the cgo build (simd_cgo.go includes it; the pure-Go
// build uses the Go loops of the same names instead).
//
// Why C: Go's compiler does not vectorize, so an elementwise loop in Go handles one float per
// instruction; GCC's auto-vectorizer handles 8 (AVX2) or 16 (AVX-512). Each function is compiled
// three times (target_clones: AVX-512F, AVX2, baseline x86-64) and the loader picks the one this
// CPU runs, so the binary stays portable.
//
// Numbers do not depend on the clone: floating-point contraction is off (no FMA, every product
// rounded as in Go), and sums that are split over lanes use 16 lanes in a fixed order whatever
// the vector width. So a run on an AVX2 machine gives the same bits as on an AVX-512 one, and as
// the Go fallback (which mirrors every loop below).
#pragma GCC optimize("O3", "fp-contract=off")

#include <stddef.h>
#include <stdint.h>
#include <string.h>

#ifndef ARTNET_CLONES // clonecheck/ compiles this file for one target only
#if defined(__x86_64__) && !defined(__clang__)
#define ARTNET_CLONES __attribute__((target_clones("avx512f", "avx2", "default")))
#else
#define ARTNET_CLONES
#endif
#endif

// Binary op codes: kernels.Add, Sub, Mul, Div.
enum { ARTNET_ADD = 0, ARTNET_SUB = 1, ARTNET_MUL = 2, ARTNET_DIV = 3 };

// o = x op y. o may be x or y (the same pointer), never a partial overlap: ivdep says so.
ARTNET_CLONES static void artnet_vv(int op, float *o, const float *x, const float *y, int64_t n) {
	switch (op) {
	case ARTNET_ADD:
#pragma GCC ivdep
		for (int64_t i = 0; i < n; i++) o[i] = x[i] + y[i];
		break;
	case ARTNET_SUB:
#pragma GCC ivdep
		for (int64_t i = 0; i < n; i++) o[i] = x[i] - y[i];
		break;
	case ARTNET_MUL:
#pragma GCC ivdep
		for (int64_t i = 0; i < n; i++) o[i] = x[i] * y[i];
		break;
	case ARTNET_DIV:
#pragma GCC ivdep
		for (int64_t i = 0; i < n; i++) o[i] = x[i] / y[i];
		break;
	}
}

// o = x op c.
ARTNET_CLONES static void artnet_vs(int op, float *o, const float *x, float c, int64_t n) {
	switch (op) {
	case ARTNET_ADD:
#pragma GCC ivdep
		for (int64_t i = 0; i < n; i++) o[i] = x[i] + c;
		break;
	case ARTNET_SUB:
#pragma GCC ivdep
		for (int64_t i = 0; i < n; i++) o[i] = x[i] - c;
		break;
	case ARTNET_MUL:
#pragma GCC ivdep
		for (int64_t i = 0; i < n; i++) o[i] = x[i] * c;
		break;
	case ARTNET_DIV:
#pragma GCC ivdep
		for (int64_t i = 0; i < n; i++) o[i] = x[i] / c;
		break;
	}
}

// o = c op y.
ARTNET_CLONES static void artnet_sv(int op, float *o, float c, const float *y, int64_t n) {
	switch (op) {
	case ARTNET_ADD:
#pragma GCC ivdep
		for (int64_t i = 0; i < n; i++) o[i] = c + y[i];
		break;
	case ARTNET_SUB:
#pragma GCC ivdep
		for (int64_t i = 0; i < n; i++) o[i] = c - y[i];
		break;
	case ARTNET_MUL:
#pragma GCC ivdep
		for (int64_t i = 0; i < n; i++) o[i] = c * y[i];
		break;
	case ARTNET_DIV:
#pragma GCC ivdep
		for (int64_t i = 0; i < n; i++) o[i] = c / y[i];
		break;
	}
}

// artnet_exp_neg returns e^a for a <= 0 (a NaN gives NaN; a < -87.3 is taken as -87.3, e^-87.3 ≈
// 1.2e-38, the smallest normal float's order). Cephes' expf: a = n·ln2 + r, |r| <= ln2/2, e^r by a
// degree-6 polynomial (max error ≈ 1 ulp), 2^n by building the exponent bits.
static inline float artnet_exp_neg(float a) {
	a = a < -87.3f ? -87.3f : a;
	float fn = (a * 1.44269504088896341f + 12582912.0f) - 12582912.0f; // round(a/ln2), |a/ln2| < 2^22
	float r = a - fn * 0.693359375f;
	r = r - fn * -2.12194440e-4f;
	float p = 1.9875691500e-4f;
	p = p * r + 1.3981999507e-3f;
	p = p * r + 8.3334519073e-3f;
	p = p * r + 4.1665795894e-2f;
	p = p * r + 1.6666665459e-1f;
	p = p * r + 5.0000001201e-1f;
	float y = p * (r * r) + r + 1.0f;
	int32_t bits = ((int32_t)fn + 127) << 23;
	float s;
	memcpy(&s, &bits, sizeof s);
	return y * s;
}

// o = 1/(1+e^-x), from e = e^-|x|: 1/(1+e) for x >= 0, e/(1+e) otherwise (no overflow).
ARTNET_CLONES static void artnet_logistic(float *o, const float *x, int64_t n) {
#pragma GCC ivdep
	for (int64_t i = 0; i < n; i++) {
		float v = x[i];
		float e = artnet_exp_neg(v < 0 ? v : -v);
		float d = 1.0f + e;
		o[i] = v >= 0 ? 1.0f / d : e / d;
	}
}

// The geometry of a depthwise convolution (kernels.Conv2DParams, as int64s in its field order),
// and per kernel column the outputs it reaches (kernels.colRange).
typedef struct {
	int64_t B, C, H, W, KH, KW, OH, OW, SY, SX, PY, PX, DY, DX, IDY, IDX;
} artnet_conv2d;
typedef struct {
	int64_t first, step, end, off;
} artnet_colrange;

// artnet_pad_plane writes plane x [H×W], dilated by (IDY, IDX) (zeros between its elements), into
// xpad [Hp×Wp] at offset (PY, PX) (negative: cropped), zero elsewhere.
static inline void artnet_pad_plane(float *xpad, const float *x, int64_t H, int64_t W, int64_t Hp, int64_t Wp,
                                    int64_t PY, int64_t PX, int64_t IDY, int64_t IDX) {
	memset(xpad, 0, sizeof(float) * Hp * Wp);
	const int64_t hd = (H - 1) * IDY + 1;
	// input columns v with 0 <= PX + v·IDX < Wp
	const int64_t v0 = PX < 0 ? (-PX + IDX - 1) / IDX : 0;
	const int64_t v1 = Wp - PX <= 0 ? 0 : ((Wp - PX - 1) / IDX + 1 < W ? (Wp - PX - 1) / IDX + 1 : W);
	if (v0 >= v1) return;
	for (int64_t r = PY < 0 ? 0 : PY; r < Hp && r - PY < hd; r++) {
		const int64_t u = r - PY; // row of the dilated input
		if (u % IDY != 0) continue;
		const float *xrow = x + (u / IDY) * W;
		float *prow = xpad + r * Wp + PX;
		if (IDX == 1) memcpy(prow + v0, xrow + v0, sizeof(float) * (v1 - v0));
		else
			for (int64_t v = v0; v < v1; v++) prow[v * IDX] = xrow[v];
	}
}

// artnet_dot_lanes adds g[k]·x[k·sx] for k in [0, n) into the 16 lanes acc (element k into lane
// k mod 16).
static inline void artnet_dot_lanes(float acc[16], const float *g, const float *x, int64_t n, int64_t sx) {
	int64_t k = 0;
	for (; k + 16 <= n; k += 16)
		for (int l = 0; l < 16; l++) acc[l] += g[k + l] * x[(k + l) * sx];
	for (int l = 0; k + l < n; l++) acc[l] += g[k + l] * x[(k + l) * sx];
}

// artnet_fold_lanes returns the 16 lanes of acc added up pairwise (kernels.sumLanes).
static inline float artnet_fold_lanes(float acc[16]) {
	for (int w = 8; w >= 1; w /= 2)
		for (int l = 0; l < w; l++) acc[l] += acc[l + w];
	return acc[0];
}

// Depthwise convolution forward for planes [lo, hi), kernels.DepthwiseConv2D's sums in its order
// (taps row-major). With strides 1 (the stride-1 convolutions and every input gradient, whose
// input dilation is the forward stride) each plane is first copied into a zero-padded, dilated
// scratch plane xpad [Hp×Wp], so every tap becomes one long shifted multiply-add over the flat
// plane (output rows Wp wide, cropped at the end) instead of OH short rows; a padding or hole
// tap adds w·0, which leaves every sum's bits as they were. Strided forwards keep the row loop.
// scratch holds Hp·Wp + OH·Wp floats (Hp = OH + (KH-1)·DY, Wp = OW + (KW-1)·DX) when SY = SX = 1.
ARTNET_CLONES static void artnet_dw_forward(float *out, const float *x, const float *w, const artnet_conv2d *p,
                                            const artnet_colrange *cols, int64_t lo, int64_t hi, float *scratch) {
	const int64_t hd = (p->H - 1) * p->IDY + 1;
	if (p->SY == 1 && p->SX == 1) {
		const int64_t Hp = p->OH + (p->KH - 1) * p->DY, Wp = p->OW + (p->KW - 1) * p->DX;
		float *xpad = scratch, *opad = scratch + Hp * Wp;
		const int64_t L = (p->OH - 1) * Wp + p->OW;
		for (int64_t plane = lo; plane < hi; plane++) {
			const int64_t c = plane % p->C;
			const float *xp = x + plane * p->H * p->W;
			const float *wp = w + c * p->KH * p->KW;
			artnet_pad_plane(xpad, xp, p->H, p->W, Hp, Wp, p->PY, p->PX, p->IDY, p->IDX);
			memset(opad, 0, sizeof(float) * L);
			for (int64_t i = 0; i < p->KH; i++) {
				for (int64_t j = 0; j < p->KW; j++) {
					const float wv = wp[i * p->KW + j];
					const float *src = xpad + i * p->DY * Wp + j * p->DX;
					for (int64_t q = 0; q < L; q++) opad[q] += wv * src[q];
				}
			}
			float *o = out + plane * p->OH * p->OW;
			for (int64_t oy = 0; oy < p->OH; oy++) memcpy(o + oy * p->OW, opad + oy * Wp, sizeof(float) * p->OW);
		}
		return;
	}
	for (int64_t plane = lo; plane < hi; plane++) {
		const int64_t c = plane % p->C;
		float *o = out + plane * p->OH * p->OW;
		memset(o, 0, sizeof(float) * p->OH * p->OW);
		const float *xp = x + plane * p->H * p->W;
		const float *wp = w + c * p->KH * p->KW;
		for (int64_t i = 0; i < p->KH; i++) {
			for (int64_t oy = 0; oy < p->OH; oy++) {
				const int64_t u = oy * p->SY + i * p->DY - p->PY;
				if (u < 0 || u >= hd || u % p->IDY != 0) continue;
				const float *xrow = xp + (u / p->IDY) * p->W;
				float *orow = o + oy * p->OW;
				for (int64_t j = 0; j < p->KW; j++) {
					const artnet_colrange cr = cols[j];
					if (cr.first >= cr.end) continue;
					const float wv = wp[i * p->KW + j];
					if (p->IDX == 1) {
						const int64_t sx = p->SX;
						for (int64_t k = cr.first; k < cr.end; k++) orow[k] += wv * xrow[k * sx + cr.off];
					} else {
						for (int64_t k = cr.first; k < cr.end; k += cr.step) orow[k] += wv * xrow[(k * p->SX + cr.off) / p->IDX];
					}
				}
			}
		}
	}
}

// The depthwise kernel gradient for channels [lo, hi): kernels.DepthwiseFilterGrad. Each dw[c,i,j]
// sums g·x over b, then the flat positions q of one plane, in 16 lanes (q mod 16), the lanes
// added up pairwise at the end. With strides 1 the planes are first laid out Wp wide (x padded
// and zero outside into xpad [Hp×Wp], g into gpad with zero columns from OW to Wp): a tap's sum
// is then one long dot product of gpad with xpad shifted by the tap (scratch holds
// B·(Hp·Wp + L) floats, L = (OH-1)·Wp + OW). Strided convolutions go row by row over each
// row's valid outputs (lane: the position in that run mod 16).
ARTNET_CLONES static void artnet_dw_filter_grad(float *dw, const float *x, const float *g, const artnet_conv2d *p,
                                                int64_t lo, int64_t hi, float *scratch) {
	if (p->SY == 1 && p->SX == 1) {
		const int64_t Hp = p->OH + (p->KH - 1) * p->DY, Wp = p->OW + (p->KW - 1) * p->DX;
		const int64_t L = (p->OH - 1) * Wp + p->OW, plane = Hp * Wp + L;
		for (int64_t c = lo; c < hi; c++) {
			for (int64_t b = 0; b < p->B; b++) {
				float *xpad = scratch + b * plane, *gpad = xpad + Hp * Wp;
				artnet_pad_plane(xpad, x + (b * p->C + c) * p->H * p->W, p->H, p->W, Hp, Wp, p->PY, p->PX, 1, 1);
				memset(gpad, 0, sizeof(float) * L);
				const float *gp = g + (b * p->C + c) * p->OH * p->OW;
				for (int64_t oy = 0; oy < p->OH; oy++) memcpy(gpad + oy * Wp, gp + oy * p->OW, sizeof(float) * p->OW);
			}
			for (int64_t i = 0; i < p->KH; i++) {
				for (int64_t j = 0; j < p->KW; j++) {
					float acc[16] = {0};
					for (int64_t b = 0; b < p->B; b++) {
						const float *gpad = scratch + b * plane + Hp * Wp;
						artnet_dot_lanes(acc, gpad, scratch + b * plane + i * p->DY * Wp + j * p->DX, L, 1);
					}
					dw[(c * p->KH + i) * p->KW + j] = artnet_fold_lanes(acc);
				}
			}
		}
		return;
	}
	for (int64_t c = lo; c < hi; c++) {
		for (int64_t i = 0; i < p->KH; i++) {
			for (int64_t j = 0; j < p->KW; j++) {
				const int64_t off = j * p->DX - p->PX;
				// validRange(OW, off, SX, W)
				int64_t ox0 = off < 0 ? (-off + p->SX - 1) / p->SX : 0;
				int64_t ox1 = p->OW;
				const int64_t last = p->W - 1 - off;
				if (last < 0) ox1 = 0;
				else if (last / p->SX + 1 < ox1) ox1 = last / p->SX + 1;
				float acc[16] = {0};
				for (int64_t b = 0; b < p->B; b++) {
					const int64_t plane = b * p->C + c;
					const float *xp = x + plane * p->H * p->W;
					const float *gp = g + plane * p->OH * p->OW;
					for (int64_t oy = 0; oy < p->OH; oy++) {
						const int64_t u = oy * p->SY + i * p->DY - p->PY;
						if (u < 0 || u >= p->H || ox0 >= ox1) continue;
						artnet_dot_lanes(acc, gp + oy * p->OW + ox0, xp + u * p->W + ox0 * p->SX + off, ox1 - ox0, p->SX);
					}
				}
				dw[(c * p->KH + i) * p->KW + j] = artnet_fold_lanes(acc);
			}
		}
	}
}

// The sum of x[0..n) in 16 lanes (element k into lane k mod 16), the lanes added up pairwise:
// kernels.sum32.
ARTNET_CLONES static float artnet_sum(const float *x, int64_t n) {
	float acc[16] = {0};
	int64_t k = 0;
	for (; k + 16 <= n; k += 16)
		for (int l = 0; l < 16; l++) acc[l] += x[k + l];
	for (int l = 0; k + l < n; l++) acc[l] += x[k + l];
	return artnet_fold_lanes(acc);
}

// Fused elementwise expressions (kernels.Fused): code is a list of float32 ops over registers —
// registers [0, nleaves) are the leaves, register nleaves + k the result of instruction k —
// evaluated block by block (ARTNET_BLOCK elements), the last instruction writing out. Leaf i is
// out's length when run[i] == 0, one value when run[i] < 0, and otherwise broadcast: element e
// of the output takes leaf[(e / run[i]) % period[i]] (e.g. a [1,C,1,1] vector against
// [B,C,H,W]: run H·W, period C), expanded for each block into tmp. tmp holds (ninstr + nleaves)
// · ARTNET_BLOCK floats. Each op rounds to float32 as the unfused op does: the same bits, one
// pass over memory instead of one per op.
#define ARTNET_BLOCK 512
enum { ARTNET_F_ADD = 0, ARTNET_F_SUB = 1, ARTNET_F_MUL = 2, ARTNET_F_DIV = 3, ARTNET_F_NEG = 4, ARTNET_F_SQRT = 5, ARTNET_F_LOGISTIC = 6 };
typedef struct {
	int32_t op, a, b;
} artnet_instr;

#pragma GCC push_options
#pragma GCC optimize("no-math-errno")
ARTNET_CLONES static void artnet_fused(float *out, const uintptr_t *leafAddr, const int64_t *run, const int64_t *period,
                                       int64_t nleaves, const artnet_instr *code, int64_t ninstr, int64_t lo, int64_t hi,
                                       float *tmp) {
	const float *const *leaves = (const float *const *)leafAddr;
	float *expanded = tmp + ninstr * ARTNET_BLOCK;
	for (int64_t s = lo; s < hi; s += ARTNET_BLOCK) {
		const int64_t m = hi - s < ARTNET_BLOCK ? hi - s : ARTNET_BLOCK;
		for (int64_t l = 0; l < nleaves; l++) {
			if (run[l] <= 0) continue;
			float *x = expanded + l * ARTNET_BLOCK;
			for (int64_t e = s; e < s + m;) {
				const int64_t q = e / run[l], end = (q + 1) * run[l] < s + m ? (q + 1) * run[l] : s + m;
				const float v = leaves[l][q % period[l]];
				for (int64_t i = e; i < end; i++) x[i - s] = v;
				e = end;
			}
		}
		for (int64_t k = 0; k < ninstr; k++) {
			const artnet_instr in = code[k];
			float *o = k == ninstr - 1 ? out + s : tmp + k * ARTNET_BLOCK;
			const float *pa = 0, *pb = 0;
			float va = 0, vb = 0;
			if (in.a >= nleaves) pa = tmp + (in.a - nleaves) * ARTNET_BLOCK;
			else if (run[in.a] < 0) va = leaves[in.a][0];
			else if (run[in.a] > 0) pa = expanded + in.a * ARTNET_BLOCK;
			else pa = leaves[in.a] + s;
			if (in.op <= ARTNET_F_DIV) {
				if (in.b >= nleaves) pb = tmp + (in.b - nleaves) * ARTNET_BLOCK;
				else if (run[in.b] < 0) vb = leaves[in.b][0];
				else if (run[in.b] > 0) pb = expanded + in.b * ARTNET_BLOCK;
				else pb = leaves[in.b] + s;
				if (pa && pb) artnet_vv(in.op, o, pa, pb, m);
				else if (pa) artnet_vs(in.op, o, pa, vb, m);
				else artnet_sv(in.op, o, va, pb, m);
				continue;
			}
			switch (in.op) {
			case ARTNET_F_NEG:
#pragma GCC ivdep
				for (int64_t i = 0; i < m; i++) o[i] = -pa[i];
				break;
			case ARTNET_F_SQRT:
#pragma GCC ivdep
				for (int64_t i = 0; i < m; i++) o[i] = __builtin_sqrtf(pa[i]);
				break;
			case ARTNET_F_LOGISTIC:
				artnet_logistic(o, pa, m);
				break;
			}
		}
	}
}
#pragma GCC pop_options
