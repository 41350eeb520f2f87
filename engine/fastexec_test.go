package engine_test

import (
	"fmt"
	"math"
	"math/rand/v2"
	"slices"
	"sync"
	"testing"

	"github.com/artnet/artnet/engine"
	"github.com/gomlx/gomlx/backends"
	"github.com/gomlx/gomlx/pkg/core/dtypes"
	. "github.com/gomlx/gomlx/pkg/core/graph"
	"github.com/gomlx/gomlx/pkg/core/tensors"
)

// goReferenceBackend is the pure-Go backend without artnet's kernels (GoMLX's own executors).
var goReferenceBackend = sync.OnceValues(func() (backends.Backend, error) { return engine.NewBackend("go:reference") })

func referenceBackend(t testing.TB) backends.Backend {
	t.Helper()
	b, err := goReferenceBackend()
	if err != nil {
		t.Fatalf("NewBackend(\"go:reference\"): %v", err)
	}
	return b
}

// TestFastKernelsInstalled fails when artnet's kernels could not be hooked into GoMLX's pure-Go
// backend (e.g. a GoMLX upgrade changed simplego's executor table or its Node/Buffer layout).
func TestFastKernelsInstalled(t *testing.T) {
	if err := engine.FastKernelsError(); err != nil {
		t.Fatal(err)
	}
}

// runBoth runs fn on inputs with the "go" and "go:reference" backends and returns both outputs
// (flat float64 values of every output), checking that artnet's kernels ran on "go".
func runBoth(t *testing.T, inputs []*tensors.Tensor, fn func(xs []*Node) []*Node) (fast, ref [][]float64) {
	t.Helper()
	run := func(b backends.Backend) [][]float64 {
		exec, err := NewExec(b, fn)
		if err != nil {
			t.Fatalf("NewExec: %v", err)
		}
		defer exec.Finalize()
		in := make([]any, len(inputs))
		for i, x := range inputs {
			c, err := x.LocalClone()
			if err != nil {
				t.Fatalf("LocalClone: %v", err)
			}
			in[i] = c
		}
		outs, err := exec.Exec(in...)
		if err != nil {
			t.Fatalf("Exec: %v", err)
		}
		var res [][]float64
		for _, o := range outs {
			o32 := o
			switch o.DType() {
			case dtypes.Float32:
				v := tensors.MustCopyFlatData[float32](o32)
				f := make([]float64, len(v))
				for i, x := range v {
					f[i] = float64(x)
				}
				res = append(res, f)
			case dtypes.Float64:
				res = append(res, tensors.MustCopyFlatData[float64](o32))
			default:
				t.Fatalf("unexpected output dtype %s", o.DType())
			}
		}
		return res
	}
	before := engine.KernelRuns()
	fast = run(backend(t))
	if engine.KernelRuns() == before {
		t.Fatalf("artnet's kernels did not run on the \"go\" backend")
	}
	ref = run(referenceBackend(t))
	return fast, ref
}

// checkSame fails unless fast and ref are bit-identical (NaNs compare equal).
func checkSame(t *testing.T, fast, ref [][]float64) {
	t.Helper()
	if len(fast) != len(ref) {
		t.Fatalf("%d outputs, reference has %d", len(fast), len(ref))
	}
	for i := range fast {
		if len(fast[i]) != len(ref[i]) {
			t.Fatalf("output #%d: %d values, reference has %d", i, len(fast[i]), len(ref[i]))
		}
		for j := range fast[i] {
			a, b := fast[i][j], ref[i][j]
			if math.Float64bits(a) != math.Float64bits(b) && !(math.IsNaN(a) && math.IsNaN(b)) {
				t.Fatalf("output #%d value #%d = %.10g, reference %.10g", i, j, a, b)
			}
		}
	}
}

func randTensor(r *rand.Rand, dtype dtypes.DType, dims ...int) *tensors.Tensor {
	v := make([]float64, size(dims))
	for i := range v {
		v[i] = r.NormFloat64()
	}
	t := tensors.FromFlatDataAndDimensions(v, dims...)
	if dtype == dtypes.Float64 {
		return t
	}
	f := make([]float32, len(v))
	for i, x := range v {
		f[i] = float32(x)
	}
	return tensors.FromFlatDataAndDimensions(f, dims...)
}

// randDims returns rank (>= 2) random dims in [1, 6], and a broadcast variant of them (some dims
// 1) that really broadcasts: at least one axis is broadcast and one is not (both of size >= 2).
func randDims(r *rand.Rand, rank int) (full, bcast []int) {
	rank = max(rank, 2)
	full = make([]int, rank)
	bcast = make([]int, rank)
	for i := range full {
		full[i] = 1 + r.IntN(6)
		bcast[i] = full[i]
		if r.IntN(2) == 0 {
			bcast[i] = 1
		}
	}
	p := r.Perm(rank)
	full[p[0]], bcast[p[0]] = 2+r.IntN(5), 1
	full[p[1]] = 2 + r.IntN(5)
	bcast[p[1]] = full[p[1]]
	return
}

// TestBroadcastBinaryParity compares Add, Sub, Mul, Div, Max and Min with implicit broadcasting
// (either side), same shapes and scalars against GoMLX's own executors, bit for bit, on random
// shapes.
func TestBroadcastBinaryParity(t *testing.T) {
	ops := map[string]func(a, b *Node) *Node{"Add": Add, "Sub": Sub, "Mul": Mul, "Div": Div, "Max": Max, "Min": Min}
	r := rand.New(rand.NewPCG(1, 2))
	for _, dtype := range []dtypes.DType{dtypes.Float32, dtypes.Float64} {
		for trial := range 12 {
			full, bc := randDims(r, 2+trial%4)
			if trial == 0 { // large: the parallel paths
				full, bc = []int{3, 100, 120}, []int{1, 100, 1}
			}
			a, b := randTensor(r, dtype, full...), randTensor(r, dtype, bc...)
			if trial%3 == 2 { // both sides broadcast, along different axes
				bc2 := slices.Clone(full)
				for i := range bc2 {
					if bc[i] == full[i] && r.IntN(2) == 0 {
						bc2[i] = 1
					}
				}
				a = randTensor(r, dtype, bc2...)
			}
			for name, op := range ops {
				t.Run(fmt.Sprintf("%s/%s/%v_%v", dtype, name, a.Shape().Dimensions, b.Shape().Dimensions), func(t *testing.T) {
					same := randTensor(r, dtype, a.Shape().Dimensions...)
					fast, ref := runBoth(t, []*tensors.Tensor{a, b, same}, func(xs []*Node) []*Node {
						s := Scalar(xs[0].Graph(), dtype, 1.7)
						return []*Node{op(xs[0], xs[1]), op(xs[1], xs[0]), op(xs[0], xs[2]), op(xs[0], s), op(s, xs[0])}
					})
					checkSame(t, fast, ref)
				})
			}
		}
	}
}

// TestReduceParity compares ReduceSum and ReduceMax over random axis sets, and BroadcastInDim,
// against GoMLX's own executors, bit for bit — except float32 sums, which artnet adds up in 16
// lanes (kernels.Reduce): there each sum must be within 1e-5·Σ|x| of the reference's (a dropped
// or doubled element is further off).
func TestReduceParity(t *testing.T) {
	r := rand.New(rand.NewPCG(3, 4))
	for _, dtype := range []dtypes.DType{dtypes.Float32, dtypes.Float64} {
		for trial := range 20 {
			rank := 1 + trial%5
			full, _ := randDims(r, rank)
			if trial == 0 {
				full = []int{1, 200, 300} // large: the parallel paths
			}
			rank = len(full)
			var axes []int
			for a := range rank {
				if r.IntN(2) == 0 {
					axes = append(axes, a)
				}
			}
			if len(axes) == 0 {
				axes = []int{r.IntN(rank)}
			}
			x := randTensor(r, dtype, full...)
			t.Run(fmt.Sprintf("%s/%v_axes%v", dtype, full, axes), func(t *testing.T) {
				fast, ref := runBoth(t, []*tensors.Tensor{x}, func(xs []*Node) []*Node {
					s := ReduceSum(xs[0], axes...)
					// The sum broadcast back to the operand's shape (a BroadcastInDim).
					back := BroadcastToDims(ReduceAndKeep(xs[0], ReduceSum, axes...), full...)
					absSum := BroadcastToDims(ReduceAndKeep(Abs(xs[0]), ReduceSum, axes...), full...)
					return []*Node{ReduceMax(xs[0], axes...), s, back, absSum}
				})
				if dtype == dtypes.Float32 {
					scale := slices.Max(ref[3])
					for k, name := range []string{"ReduceSum", "broadcast ReduceSum"} {
						for j, v := range fast[1+k] {
							if d := math.Abs(v - ref[1+k][j]); d > 1e-5*scale {
								t.Fatalf("%s value #%d = %.10g, reference %.10g (Σ|x| up to %g)", name, j, v, ref[1+k][j], scale)
							}
						}
					}
					fast, ref = fast[:1], ref[:1]
				}
				checkSame(t, fast, ref)
			})
		}
	}
}

func tensorsFlat(t *testing.T, x *tensors.Tensor) []float64 {
	t.Helper()
	v, err := tensors.CopyFlatData[float64](x)
	if err != nil {
		t.Fatal(err)
	}
	return v
}

// TestUnaryTransposeParity compares Logistic, Tanh and Transpose with GoMLX's own executors,
// bit for bit, on random shapes (large ones take the parallel paths) — except float32 Logistic,
// which artnet computes in float32 (kernels.Unary: a polynomial e^x, not float64 math.Exp per
// element): within 2 ulp there.
func TestUnaryTransposeParity(t *testing.T) {
	r := rand.New(rand.NewPCG(9, 10))
	for _, dtype := range []dtypes.DType{dtypes.Float32, dtypes.Float64} {
		for trial := range 8 {
			dims, _ := randDims(r, 2+trial%3)
			if trial == 0 {
				dims = []int{3, 170, 130}
			}
			x := randTensor(r, dtype, dims...)
			perm := r.Perm(len(dims))
			if isIdentityPerm(perm) {
				perm[0], perm[1] = perm[1], perm[0]
			}
			t.Run(fmt.Sprintf("%s/%v_perm%v", dtype, dims, perm), func(t *testing.T) {
				fast, ref := runBoth(t, []*tensors.Tensor{x}, func(xs []*Node) []*Node {
					y := MulScalar(xs[0], 4)
					return []*Node{Sigmoid(y), Tanh(y), TransposeAllAxes(xs[0], perm...)}
				})
				if dtype == dtypes.Float32 {
					for j, v := range fast[0] {
						if d := math.Float32bits(float32(v)) - math.Float32bits(float32(ref[0][j])); d+2 > 4 { // |d| > 2, in uint32 arithmetic
							t.Fatalf("Logistic value #%d = %.10g, reference %.10g: more than 2 ulp apart", j, v, ref[0][j])
						}
					}
					fast, ref = fast[1:], ref[1:]
				}
				checkSame(t, fast, ref)
			})
		}
	}
}

func isIdentityPerm(p []int) bool {
	for i, v := range p {
		if i != v {
			return false
		}
	}
	return true
}

// checkValueAndGradientsLikeReference runs fn(inputs) and the gradients of sum(fn(inputs)·W)
// with respect to both inputs (W fixed random) on "go" and "go:reference", and fails unless
// every value agrees within tol.
func checkValueAndGradientsLikeReference(t *testing.T, in []arr, fn func(xs []*Node) *Node, tol float64) {
	t.Helper()
	out := forward(t, in, fn)
	w := randArr(97, out.dims...)
	full := func(xs []*Node) []*Node {
		y := fn(xs[:2])
		return append([]*Node{y}, Gradient(ReduceAllSum(Mul(y, xs[2])), xs[0], xs[1])...)
	}
	fastRun, fastDone := plainExec(t)(full)
	defer fastDone()
	refRun, refDone := plainExecOn(t, referenceBackend(t))(full)
	defer refDone()
	fast, err := fastRun(args(in, w)...)
	if err != nil {
		t.Fatal(err)
	}
	ref, err := refRun(args(in, w)...)
	if err != nil {
		t.Fatal(err)
	}
	for k := range fast {
		checkClose(t, arr{tensorsFlat(t, fast[k]), fast[k].Shape().Dimensions}, arr{tensorsFlat(t, ref[k]), ref[k].Shape().Dimensions}, tol)
	}
}
