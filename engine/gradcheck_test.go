package engine_test

import (
	"math"
	"math/rand/v2"
	"slices"
	"sync"
	"testing"

	"github.com/artnet/artnet/engine"
	"github.com/gomlx/gomlx/backends"
	. "github.com/gomlx/gomlx/pkg/core/graph"
	"github.com/gomlx/gomlx/pkg/core/tensors"
)

// maxRelErr is the largest accepted gradient error, relative to the largest gradient component.
const maxRelErr = 1e-6

// fdStep is the central finite-difference step (float64 graphs).
const fdStep = 1e-5

var goBackend = sync.OnceValues(func() (backends.Backend, error) { return engine.NewBackend("go") })

// goDirectBackend uses simplego's own convolution loop instead of artnet's im2col.
var goDirectBackend = sync.OnceValues(func() (backends.Backend, error) { return engine.NewBackend("go:direct_conv") })

// convBackends are the backend configs conv tests run on.
func convBackends(t *testing.T) map[string]backends.Backend {
	t.Helper()
	d, err := goDirectBackend()
	if err != nil {
		t.Fatalf("NewBackend(\"go:direct_conv\"): %v", err)
	}
	return map[string]backends.Backend{"im2col": backend(t), "direct": d}
}

func backend(t *testing.T) backends.Backend {
	t.Helper()
	b, err := goBackend()
	if err != nil {
		t.Fatalf("NewBackend(\"go\"): %v", err)
	}
	return b
}

// arr is a float64 test input: values and dimensions.
type arr struct {
	v    []float64
	dims []int
}

func (a arr) tensor() *tensors.Tensor {
	return tensors.FromFlatDataAndDimensions(slices.Clone(a.v), a.dims...)
}

func size(dims []int) int {
	n := 1
	for _, d := range dims {
		n *= d
	}
	return n
}

// randArr returns values uniform in [-1, 1), away from 0 by at least 0.05 (keeps ReLU/Max kinks
// away from the finite-difference probes) and pairwise distinct.
func randArr(seed uint64, dims ...int) arr {
	r := rand.New(rand.NewPCG(seed, 17))
	n := size(dims)
	v := make([]float64, n)
	perm := r.Perm(n)
	for i := range v {
		// Distinct by construction: spread over a grid, plus small noise.
		x := -1 + 2*(float64(perm[i])+0.5)/float64(n) + (r.Float64()-0.5)*0.1/float64(n)
		if math.Abs(x) < 0.05 {
			x = math.Copysign(0.05+math.Abs(x), x+1e-9)
		}
		v[i] = x
	}
	return arr{v, dims}
}

// args converts inputs to Exec arguments.
func args(inputs []arr, extra ...arr) []any {
	out := make([]any, 0, len(inputs)+len(extra))
	for _, a := range append(slices.Clone(inputs), extra...) {
		out = append(out, a.tensor())
	}
	return out
}

// forward runs fn on inputs through the backend and returns the output values and dimensions.
func forward(t *testing.T, inputs []arr, fn func(xs []*Node) *Node) arr {
	t.Helper()
	return forwardOn(t, backend(t), inputs, fn)
}

// forwardOn is forward on backend b.
func forwardOn(t *testing.T, b backends.Backend, inputs []arr, fn func(xs []*Node) *Node) arr {
	t.Helper()
	exec, err := NewExec(b, fn)
	if err != nil {
		t.Fatalf("NewExec: %v", err)
	}
	defer exec.Finalize()
	out, err := exec.Exec(args(inputs)...)
	if err != nil {
		t.Fatalf("forward: %v", err)
	}
	v, err := tensors.CopyFlatData[float64](out[0])
	if err != nil {
		t.Fatalf("forward output: %v", err)
	}
	return arr{v, out[0].Shape().Dimensions}
}

// gradError compares the autodiff gradient of sum(fn(inputs)·W) (W a fixed random weight, so
// no output component is privileged) with central finite differences, and returns the largest
// absolute difference divided by the largest finite-difference component. It fails the test if
// building or running fails, or if the gradient is identically zero (a check that can't fail).
func gradError(t *testing.T, inputs []arr, fn func(xs []*Node) *Node) float64 {
	t.Helper()
	return gradErrorWith(t, plainExec(t), inputs, fn)
}

// execMaker compiles a graph function into a runner; plain graphs and context graphs differ.
type execMaker func(graphFn func(xs []*Node) []*Node) (run func(args ...any) ([]*tensors.Tensor, error), done func())

// plainExec builds graph.Exec executors on the "go" backend.
func plainExec(t *testing.T) execMaker { return plainExecOn(t, backend(t)) }

// plainExecOn builds graph.Exec executors on backend b.
func plainExecOn(t *testing.T, b backends.Backend) execMaker {
	return func(graphFn func(xs []*Node) []*Node) (func(args ...any) ([]*tensors.Tensor, error), func()) {
		e, err := NewExec(b, graphFn)
		if err != nil {
			t.Fatalf("NewExec: %v", err)
		}
		return e.Exec, e.Finalize
	}
}

// gradErrorWith is gradError with the executors made by mk.
func gradErrorWith(t *testing.T, mk execMaker, inputs []arr, fn func(xs []*Node) *Node) float64 {
	t.Helper()
	n := len(inputs)
	fwd, done := mk(func(xs []*Node) []*Node { return []*Node{fn(xs)} })
	out, err := fwd(args(inputs)...)
	done()
	if err != nil {
		t.Fatalf("forward: %v", err)
	}
	w := randArr(99, out[0].Shape().Dimensions...)

	lossFn := func(xs []*Node) *Node {
		return ReduceAllSum(Mul(fn(xs[:n]), xs[n]))
	}
	lossRun, lossDone := mk(func(xs []*Node) []*Node { return []*Node{lossFn(xs)} })
	defer lossDone()
	gradRun, gradDone := mk(func(xs []*Node) []*Node { return Gradient(lossFn(xs), xs[:n]...) })
	defer gradDone()

	grads, err := gradRun(args(inputs, w)...)
	if err != nil {
		t.Fatalf("gradient: %v", err)
	}
	loss := func(in []arr) float64 {
		res, err := lossRun(args(in, w)...)
		if err != nil {
			t.Fatalf("loss: %v", err)
		}
		return tensors.MustCopyFlatData[float64](res[0])[0]
	}
	var maxDiff, maxFD float64
	for i := range inputs {
		g, err := tensors.CopyFlatData[float64](grads[i])
		if err != nil {
			t.Fatalf("gradient #%d: %v", i, err)
		}
		if len(g) != len(inputs[i].v) {
			t.Fatalf("gradient #%d has %d values, input has %d", i, len(g), len(inputs[i].v))
		}
		for j := range inputs[i].v {
			in := slices.Clone(inputs)
			v := slices.Clone(in[i].v)
			in[i] = arr{v, in[i].dims}
			v[j] = inputs[i].v[j] + fdStep
			lp := loss(in)
			v[j] = inputs[i].v[j] - fdStep
			lm := loss(in)
			fd := (lp - lm) / (2 * fdStep)
			maxDiff = max(maxDiff, math.Abs(fd-g[j]))
			maxFD = max(maxFD, math.Abs(fd))
		}
	}
	if maxFD < 1e-6 {
		t.Fatalf("finite-difference gradient is ~0 (max %g): the check would be vacuous", maxFD)
	}
	return maxDiff / maxFD
}

// checkGrad fails the test if gradError exceeds maxRelErr, and logs it otherwise.
func checkGrad(t *testing.T, inputs []arr, fn func(xs []*Node) *Node) {
	t.Helper()
	checkGradWith(t, plainExec(t), inputs, fn)
}

// checkGradWith is checkGrad with the executors made by mk.
func checkGradWith(t *testing.T, mk execMaker, inputs []arr, fn func(xs []*Node) *Node) {
	t.Helper()
	e := gradErrorWith(t, mk, inputs, fn)
	if e > maxRelErr || math.IsNaN(e) {
		t.Fatalf("gradient vs finite differences: max relative error %.3g > %g", e, maxRelErr)
	}
	t.Logf("max relative gradient error %.3g", e)
}

// checkClose fails the test if got and want differ (dims, or any value by more than tol).
func checkClose(t *testing.T, got arr, want arr, tol float64) {
	t.Helper()
	if !slices.Equal(got.dims, want.dims) {
		t.Fatalf("dims %v, want %v", got.dims, want.dims)
	}
	if len(got.v) != len(want.v) {
		t.Fatalf("%d values, want %d", len(got.v), len(want.v))
	}
	for i := range got.v {
		if math.Abs(got.v[i]-want.v[i]) > tol || math.IsNaN(got.v[i]) {
			t.Fatalf("value #%d = %.10g, want %.10g (tolerance %g)", i, got.v[i], want.v[i], tol)
		}
	}
}

// TestGradCheckDetectsWrongGradient shows the checker can fail: StopGradient hides part of the
// dependency from autodiff but not from finite differences.
func TestGradCheckDetectsWrongGradient(t *testing.T) {
	x := randArr(1, 3, 4)
	e := gradError(t, []arr{x}, func(xs []*Node) *Node {
		return Mul(xs[0], StopGradient(xs[0]))
	})
	if e < 0.1 {
		t.Fatalf("wrong gradient not detected: relative error %g", e)
	}
}
