//go:build cgo && amd64

package clonecheck_test

import (
	"fmt"
	"math"
	"math/rand/v2"
	"testing"

	"github.com/artnet/artnet/engine/internal/kernels"
	"github.com/artnet/artnet/engine/internal/kernels/clonecheck"
)

func randSlice(r *rand.Rand, n int) []float32 {
	v := make([]float32, n)
	for i := range v {
		v[i] = float32(r.NormFloat64())
	}
	return v
}

func sameBits(t *testing.T, what string, got, want []float32) {
	t.Helper()
	for i := range want {
		if math.Float32bits(got[i]) != math.Float32bits(want[i]) && !(got[i] != got[i] && want[i] != want[i]) {
			t.Fatalf("%s: element %d = %g, this CPU's kernels %g", what, i, got[i], want[i])
		}
	}
}

// TestClonesComputeTheSameBits: simd.h compiled for AVX2 and for the x86-64 baseline gives the
// bits of the kernels package (the clone this CPU picks: AVX-512 on this project's VM) — fused
// expressions (every op, one-value and broadcast operands, NaN/Inf/denormals), 16-lane sums,
// depthwise forward (strides, dilations, input dilation) and kernel gradient. So training on an
// AVX2-only machine computes what it computes here.
func TestClonesComputeTheSameBits(t *testing.T) {
	specials := []float32{0, float32(math.Copysign(0, -1)), 1e-40, -1e-40, 87.3, -87.3, -100, 1e30,
		float32(math.Inf(1)), float32(math.Inf(-1)), float32(math.NaN())}
	r := rand.New(rand.NewPCG(51, 52))
	for _, target := range []clonecheck.Target{clonecheck.AVX2, clonecheck.Baseline} {
		if !target.Usable() {
			t.Logf("%s: this CPU cannot run it", target)
			continue
		}
		for trial := range 150 {
			n := []int{7, 511, 512, 513, 3000, 20000}[trial%6]
			nl := 1 + r.IntN(4)
			var leaves []kernels.Leaf
			var full []int32
			for i := range nl {
				l := kernels.Leaf{Data: randSlice(r, n)}
				switch {
				case i > 0 && r.IntN(3) == 0:
					l = kernels.Leaf{Data: []float32{float32(r.NormFloat64())}, Run: -1}
				case i > 0 && r.IntN(2) == 0:
					p := 1 + r.IntN(9)
					l = kernels.Leaf{Data: randSlice(r, p), Run: 1 + r.IntN(700), Period: p}
				}
				if l.Run >= 0 {
					full = append(full, int32(i))
				}
				if i == 0 {
					copy(l.Data, specials)
				}
				leaves = append(leaves, l)
			}
			var code []kernels.Instr
			for k := range 1 + r.IntN(10) {
				op := kernels.FusedOp(r.IntN(int(kernels.FLogistic) + 1))
				a := full[r.IntN(len(full))]
				if k > 0 && r.IntN(2) == 0 {
					a = int32(nl + r.IntN(k))
				}
				b := int32(r.IntN(nl + k))
				code = append(code, kernels.Instr{Op: op, A: a, B: b})
			}
			want, got := make([]float32, n), make([]float32, n)
			kernels.Fused(want, leaves, code)
			clonecheck.Fused(target, got, leaves, code)
			sameBits(t, fmt.Sprintf("%s fused trial %d %v", target, trial, code), got, want)

			x := leaves[0].Data
			sum := make([]float32, 1)
			kernels.Reduce(kernels.ReduceSum, sum, x, []int{len(x)}, []int{0}, 0)
			if s := clonecheck.Sum(target, x); math.Float32bits(s) != math.Float32bits(sum[0]) && !(s != s && sum[0] != sum[0]) {
				t.Fatalf("%s: sum of %d = %g, this CPU's kernels %g", target, len(x), s, sum[0])
			}
		}
		for trial := range 60 {
			k := 1 + r.IntN(5)
			p := kernels.Conv2DParams{B: 1 + r.IntN(3), C: 1 + r.IntN(5), H: 1 + r.IntN(30), W: 1 + r.IntN(30), KH: k, KW: 1 + r.IntN(5),
				SY: 1 + r.IntN(2), SX: 1 + r.IntN(2), PY: r.IntN(3) - 1, PX: r.IntN(3) - 1, DY: 1 + r.IntN(2), DX: 1 + r.IntN(2), IDY: 1, IDX: 1}
			if trial%3 == 2 {
				p.IDY, p.IDX = 2, 1+r.IntN(2)
			}
			p.OH = ((p.H-1)*p.IDY+1+2*p.PY-(p.KH-1)*p.DY-1)/p.SY + 1
			p.OW = ((p.W-1)*p.IDX+1+2*p.PX-(p.KW-1)*p.DX-1)/p.SX + 1
			if p.OH < 1 || p.OW < 1 {
				continue
			}
			x, w := randSlice(r, p.B*p.C*p.H*p.W), randSlice(r, p.C*p.KH*p.KW)
			want, got := make([]float32, p.B*p.C*p.OH*p.OW), make([]float32, p.B*p.C*p.OH*p.OW)
			kernels.DepthwiseConv2D(want, x, w, p)
			clonecheck.DepthwiseForward(target, got, x, w, p, kernels.DepthwiseCols(p))
			sameBits(t, fmt.Sprintf("%s depthwise forward %+v", target, p), got, want)
			if p.IDY == 1 && p.IDX == 1 {
				g := randSlice(r, len(want))
				want, got := make([]float32, len(w)), make([]float32, len(w))
				kernels.DepthwiseFilterGrad(want, x, g, p)
				clonecheck.DepthwiseFilterGrad(target, got, x, g, p)
				sameBits(t, fmt.Sprintf("%s depthwise kernel gradient %+v", target, p), got, want)
			}
		}
	}
}
