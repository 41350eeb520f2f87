package kernels

import (
	"math"
	"math/rand/v2"
	"testing"

	"github.com/artnet/artnet/internal/testenv"
)

// naiveGemm is the textbook triple loop (float64 accumulation).
func naiveGemm(transA, transB bool, batch, m, n, k int, a, b []float32) []float64 {
	c := make([]float64, batch*m*n)
	for bi := range batch {
		for i := range m {
			for j := range n {
				var s float64
				for p := range k {
					ai := bi*m*k + i*k + p
					if transA {
						ai = bi*m*k + p*m + i
					}
					bj := bi*k*n + p*n + j
					if transB {
						bj = bi*k*n + j*k + p
					}
					s += float64(a[ai]) * float64(b[bj])
				}
				c[bi*m*n+i*n+j] = s
			}
		}
	}
	return c
}

func randSlice(r *rand.Rand, n int) []float32 {
	v := make([]float32, n)
	for i := range v {
		v[i] = float32(r.NormFloat64())
	}
	return v
}

func TestGemm(t *testing.T) {
	if !HasBLAS {
		testenv.Missing(t, "OpenBLAS (built with cgo off or -tags noblas: Gemm is not used)", "apt-get install libopenblas-dev, then rebuild")
	}
	r := rand.New(rand.NewPCG(1, 1))
	for _, sz := range [][4]int{{1, 1, 1, 1}, {2, 3, 5, 7}, {3, 17, 1, 9}, {1, 64, 33, 130}, {1, 301, 67, 40}, {1, 37, 290, 41}, {3, 70, 80, 90}} {
		for _, ta := range []bool{false, true} {
			for _, tb := range []bool{false, true} {
				batch, m, n, k := sz[0], sz[1], sz[2], sz[3]
				a, b := randSlice(r, batch*m*k), randSlice(r, batch*k*n)
				c := make([]float32, batch*m*n)
				for i := range c {
					c[i] = float32(math.NaN()) // Gemm overwrites
				}
				Gemm(ta, tb, batch, m, n, k, a, b, c)
				want := naiveGemm(ta, tb, batch, m, n, k, a, b)
				for i := range c {
					if d := math.Abs(float64(c[i]) - want[i]); !(d <= 1e-4*math.Sqrt(float64(k))) {
						t.Fatalf("%v ta=%v tb=%v: c[%d] = %g, want %g", sz, ta, tb, i, c[i], want[i])
					}
				}
			}
		}
	}
}

func TestTranspose(t *testing.T) {
	dims := []int{2, 3, 1, 4}
	perm := []int{3, 0, 2, 1}
	x := make([]int, 24)
	for i := range x {
		x[i] = i
	}
	out := make([]int, 24)
	Transpose(out, x, dims, perm)
	// out[d, a, c, b] = x[a, b, c, d]
	i := 0
	for d := range 4 {
		for a := range 2 {
			for b := range 3 {
				if want := ((a*3+b)*1+0)*4 + d; out[i] != want {
					t.Fatalf("out[%d] = %d, want %d", i, out[i], want)
				}
				i++
			}
		}
	}
}

// BenchmarkGemm512 is one 512×512×512 float32 product (134 M multiply-adds).
func BenchmarkGemm512(b *testing.B) {
	if !HasBLAS {
		b.Skip("no OpenBLAS")
	}
	r := rand.New(rand.NewPCG(1, 1))
	const n = 512
	x, y, c := randSlice(r, n*n), randSlice(r, n*n), make([]float32, n*n)
	b.ResetTimer()
	for range b.N {
		Gemm(false, false, 1, n, n, n, x, y, c)
	}
	b.ReportMetric(float64(n*n*n)*float64(b.N)/b.Elapsed().Seconds()/1e9, "GMAC/s")
}

// TestGemmReproducible: the same product, from differently aligned copies, gives the same bits
// (OpenBLAS's own threading did not; a resumed training run drifted).
func TestGemmReproducible(t *testing.T) {
	if !HasBLAS {
		testenv.Missing(t, "OpenBLAS (built with cgo off or -tags noblas: Gemm is not used)", "apt-get install libopenblas-dev, then rebuild")
	}
	r := rand.New(rand.NewPCG(2, 2))
	for _, sz := range [][4]int{{1, 300, 200, 150}, {1, 8, 1000, 64}, {4, 96, 64, 80}} {
		batch, m, n, k := sz[0], sz[1], sz[2], sz[3]
		a0, b0 := randSlice(r, batch*m*k), randSlice(r, batch*k*n)
		var first []float32
		for off := range 5 {
			a, b := make([]float32, len(a0)+off), make([]float32, len(b0)+2*off)
			copy(a[off:], a0)
			copy(b[2*off:], b0)
			c := make([]float32, batch*m*n)
			Gemm(false, true, batch, m, n, k, a[off:], b[2*off:], c)
			if first == nil {
				first = c
				continue
			}
			for i := range c {
				if math.Float32bits(c[i]) != math.Float32bits(first[i]) {
					t.Fatalf("%v offset %d: c[%d] = %g, first run %g", sz, off, i, c[i], first[i])
				}
			}
		}
	}
}
