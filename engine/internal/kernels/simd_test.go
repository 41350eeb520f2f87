package kernels

import (
	"fmt"
	"math"
	"math/rand/v2"
	"testing"

	"github.com/artnet/artnet/internal/testenv"
)

// withGo runs fn with every kernel on its Go loop (forceGo), then restores the C loops.
func withGo(fn func()) {
	forceGo = true
	defer func() { forceGo = false }()
	fn()
}

func sameBits(t *testing.T, what string, got, want []float32) {
	t.Helper()
	for i := range want {
		if math.Float32bits(got[i]) != math.Float32bits(want[i]) && !(got[i] != got[i] && want[i] != want[i]) {
			t.Fatalf("%s: element %d = %g (C), %g (Go)", what, i, got[i], want[i])
		}
	}
}

// specials are the inputs where a vectorized loop is most likely to part from the Go one.
var specials = []float32{0, float32(math.Copysign(0, -1)), 1e-40, -1e-40, 1, -1, 87, -87, 87.3, -87.3, 88.8, -88.8, 100, -100, 1e30, -1e30,
	float32(math.Inf(1)), float32(math.Inf(-1)), float32(math.NaN())}

// TestSIMDMatchesGo: simd.h's C loops and their Go mirrors give the same bits — binary ops in
// every operand form, Logistic (specials included), depthwise forward (strides, dilations,
// input dilation, paddings) and kernel gradient — so a cgo and a pure-Go build train alike.
func TestSIMDMatchesGo(t *testing.T) {
	if !HasSIMD {
		testenv.Missing(t, "cgo (built with CGO_ENABLED=0: simd.h's C kernels are not in this build)", "install gcc and build with CGO_ENABLED=1")
	}
	r := rand.New(rand.NewPCG(21, 22))
	for _, n := range []int{1, 63, 64, 65, 100, 1031} {
		x, y := randSlice(r, n), randSlice(r, n)
		copy(x, specials)
		for op := Add; op <= Div; op++ {
			for form := range 3 {
				c, g := make([]float32, n), make([]float32, n)
				run := func(o []float32) {
					switch form {
					case 0:
						vv(op, o, x, y)
					case 1:
						vs(op, o, x, 1.7)
					default:
						sv(op, o, -0.3, y)
					}
				}
				run(c)
				withGo(func() { run(g) })
				sameBits(t, fmt.Sprintf("%s form %d n %d", op, form, n), c, g)
			}
		}
		cs, _ := cSum(y)
		if n >= simdMin && math.Float32bits(cs) != math.Float32bits(sum32(y)) {
			t.Fatalf("sum of %d: %g (C), %g (Go)", n, cs, sum32(y))
		}
		c, g := make([]float32, n), make([]float32, n)
		Unary(Logistic, c, x)
		withGo(func() { Unary(Logistic, g, x) })
		sameBits(t, fmt.Sprintf("Logistic n %d", n), c, g)
	}
	for trial := range 300 {
		k := 1 + r.IntN(5)
		p := Conv2DParams{B: 1 + r.IntN(3), C: 1 + r.IntN(5), H: 1 + r.IntN(40), W: 1 + r.IntN(40), KH: k, KW: 1 + r.IntN(5),
			SY: 1 + r.IntN(2), SX: 1 + r.IntN(2), PY: r.IntN(3) - 1, PX: r.IntN(3) - 1, DY: 1 + r.IntN(2), DX: 1 + r.IntN(2), IDY: 1, IDX: 1}
		if trial%3 == 2 {
			p.IDY, p.IDX = 2, 1+r.IntN(2)
		}
		hd, wd := (p.H-1)*p.IDY+1, (p.W-1)*p.IDX+1
		p.OH = (hd+2*p.PY-(p.KH-1)*p.DY-1)/p.SY + 1
		p.OW = (wd+2*p.PX-(p.KW-1)*p.DX-1)/p.SX + 1
		if p.OH < 1 || p.OW < 1 {
			continue
		}
		name := fmt.Sprintf("%+v", p)
		x, w := randSlice(r, p.B*p.C*p.H*p.W), randSlice(r, p.C*p.KH*p.KW)
		c, g := make([]float32, p.B*p.C*p.OH*p.OW), make([]float32, p.B*p.C*p.OH*p.OW)
		DepthwiseConv2D(c, x, w, p)
		withGo(func() { DepthwiseConv2D(g, x, w, p) })
		sameBits(t, "DepthwiseConv2D "+name, c, g)
		if p.IDY == 1 && p.IDX == 1 {
			grad := randSlice(r, len(c))
			c, g := make([]float32, len(w)), make([]float32, len(w))
			DepthwiseFilterGrad(c, x, grad, p)
			withGo(func() { DepthwiseFilterGrad(g, x, grad, p) })
			sameBits(t, "DepthwiseFilterGrad "+name, c, g)
			// And the lanes sum what the plain sum does, within float32 rounding.
			want := make([]float64, len(w))
			DepthwiseFilterGrad(want, f64(x), f64(grad), p)
			for i := range want {
				if d := math.Abs(float64(c[i]) - want[i]); d > 1e-4*(1+math.Abs(want[i])) {
					t.Fatalf("DepthwiseFilterGrad %s: dw[%d] = %g, float64 %g", name, i, c[i], want[i])
				}
			}
		}
	}
}

func f64(v []float32) []float64 {
	o := make([]float64, len(v))
	for i, x := range v {
		o[i] = float64(x)
	}
	return o
}

// TestLogistic32Accuracy: the float32 Logistic (polynomial e^x) against the float64 formula
// simplego uses: at most 2 ulp apart from -87 to 87, and within 2e-38 below (where e^x is taken
// at -87.3); NaN stays NaN, ±Inf give 1 and ~0.
func TestLogistic32Accuracy(t *testing.T) {
	var xs []float32
	for x := float32(-100); x <= 100; x += 0.00731 {
		xs = append(xs, x)
	}
	xs = append(xs, specials...)
	got := make([]float32, len(xs))
	Unary(Logistic, got, xs)
	maxUlp := 0
	for i, x := range xs {
		v := float64(x)
		var want float64
		if v >= 0 {
			want = 1 / (1 + math.Exp(-v))
		} else {
			e := math.Exp(v)
			want = e / (1 + e)
		}
		w32 := float32(want)
		switch {
		case math.IsNaN(v):
			if got[i] == got[i] {
				t.Fatalf("Logistic(NaN) = %g", got[i])
			}
		case v < -87:
			if math.Abs(float64(got[i])-want) > 2e-38 {
				t.Fatalf("Logistic(%g) = %g, want %g", x, got[i], want)
			}
		default:
			ulp := int(math.Float32bits(got[i])) - int(math.Float32bits(w32))
			maxUlp = max(maxUlp, ulp, -ulp)
			if ulp > 2 || ulp < -2 {
				t.Fatalf("Logistic(%g) = %g, want %g (%d ulp)", x, got[i], w32, ulp)
			}
		}
	}
	t.Logf("max %d ulp from the float64 formula over %d inputs", maxUlp, len(xs))
}
