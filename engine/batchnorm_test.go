package engine_test

import (
	"math"
	"strings"
	"testing"

	. "github.com/gomlx/gomlx/pkg/core/graph"
	"github.com/gomlx/gomlx/pkg/core/tensors"
	"github.com/gomlx/gomlx/pkg/ml/context"
	"github.com/gomlx/gomlx/pkg/ml/layers/batchnorm"
)

const bnEps = 1e-3 // batchnorm's default epsilon

// bnReference normalizes NCHW x per channel with the given mean/variance (nil: batch statistics).
func bnReference(x arr, scale, offset, mean, variance []float64, eps float64) (out arr, bMean, bVar []float64) {
	n, c := x.dims[0], x.dims[1]
	hw := size(x.dims[2:])
	bMean, bVar = make([]float64, c), make([]float64, c)
	for ch := range c {
		var s float64
		for i := range n {
			for j := range hw {
				s += x.v[(i*c+ch)*hw+j]
			}
		}
		bMean[ch] = s / float64(n*hw)
		var v float64
		for i := range n {
			for j := range hw {
				d := x.v[(i*c+ch)*hw+j] - bMean[ch]
				v += d * d
			}
		}
		bVar[ch] = v / float64(n*hw)
	}
	if mean == nil {
		mean, variance = bMean, bVar
	}
	o := make([]float64, len(x.v))
	for i := range n {
		for ch := range c {
			for j := range hw {
				k := (i*c+ch)*hw + j
				o[k] = (x.v[k]-mean[ch])/math.Sqrt(variance[ch]+eps)*scale[ch] + offset[ch]
			}
		}
	}
	return arr{o, x.dims}, bMean, bVar
}

func positive(a arr) arr {
	v := make([]float64, len(a.v))
	for i, x := range a.v {
		v[i] = 0.5 + math.Abs(x)
	}
	return arr{v, a.dims}
}

// TestBatchNormOps checks the wrapper's BatchNormForTraining/ForInference forward values and the
// training gradient (BatchNormGradient) with respect to operand, scale and offset.
func TestBatchNormOps(t *testing.T) {
	x := randArr(20, 3, 2, 3, 4)
	scale, offset := positive(randArr(21, 2)), randArr(22, 2)
	mean, variance := randArr(23, 2), positive(randArr(24, 2))

	t.Run("training/forward", func(t *testing.T) {
		want, bm, bv := bnReference(x, scale.v, offset.v, nil, nil, bnEps)
		exec, err := NewExec(backend(t), func(xs []*Node) (*Node, *Node, *Node) {
			return InternalBatchNormForTraining(xs[0], xs[1], xs[2], bnEps, 1)
		})
		if err != nil {
			t.Fatal(err)
		}
		defer exec.Finalize()
		out, err := exec.Exec(args([]arr{x, scale, offset})...)
		if err != nil {
			t.Fatal(err)
		}
		checkClose(t, arr{tensors.MustCopyFlatData[float64](out[0]), out[0].Shape().Dimensions}, want, 1e-6)
		checkClose(t, arr{tensors.MustCopyFlatData[float64](out[1]), out[1].Shape().Dimensions}, arr{bm, []int{2}}, 1e-12)
		checkClose(t, arr{tensors.MustCopyFlatData[float64](out[2]), out[2].Shape().Dimensions}, arr{bv, []int{2}}, 1e-12)
	})
	t.Run("training/gradient", func(t *testing.T) {
		checkGrad(t, []arr{x, scale, offset}, func(xs []*Node) *Node {
			normalized, _, _ := InternalBatchNormForTraining(xs[0], xs[1], xs[2], bnEps, 1)
			return normalized
		})
	})
	t.Run("training/gradient-channels-last", func(t *testing.T) {
		xl := randArr(25, 2, 3, 5)
		s3, o3 := positive(randArr(26, 5)), randArr(27, 5)
		checkGrad(t, []arr{xl, s3, o3}, func(xs []*Node) *Node {
			normalized, _, _ := InternalBatchNormForTraining(xs[0], xs[1], xs[2], bnEps, -1)
			return normalized
		})
	})
	t.Run("inference/forward", func(t *testing.T) {
		want, _, _ := bnReference(x, scale.v, offset.v, mean.v, variance.v, bnEps)
		got := forward(t, []arr{x, scale, offset, mean, variance}, func(xs []*Node) *Node {
			return InternalBatchNormForInference(xs[0], xs[1], xs[2], xs[3], xs[4], bnEps, 1)
		})
		// epsilon reaches the backend as float32: 1e-3 in float32 differs from 1e-3 by ~5e-11.
		checkClose(t, got, want, 1e-7)
	})
}

// findVar returns the context variable whose scope ends with scopeSuffix and is named name.
func findVar(t *testing.T, ctx *context.Context, scopeSuffix, name string) *context.Variable {
	t.Helper()
	for v := range ctx.IterVariables() {
		if v.Name() == name && strings.HasSuffix(v.Scope(), scopeSuffix) {
			return v
		}
	}
	t.Fatalf("variable %s/%s not found", scopeSuffix, name)
	return nil
}

func varValues(t *testing.T, v *context.Variable) []float64 {
	t.Helper()
	val, err := v.Value()
	if err != nil {
		t.Fatal(err)
	}
	return tensors.MustCopyFlatData[float64](val)
}

// ctxExec builds context executors over ctx in training mode or not.
func ctxExec(t *testing.T, ctx *context.Context, training bool) execMaker {
	b := backend(t)
	return func(graphFn func(xs []*Node) []*Node) (func(args ...any) ([]*tensors.Tensor, error), func()) {
		e, err := context.NewExec(b, ctx, func(ctx *context.Context, xs []*Node) []*Node {
			ctx.SetTraining(xs[0].Graph(), training)
			return graphFn(xs)
		})
		if err != nil {
			t.Fatalf("context.NewExec: %v", err)
		}
		return e.Exec, e.Finalize
	}
}

// TestBatchNormLayer runs pkg/ml/layers/batchnorm with its default settings (backend batch-norm
// ops) in training mode (forward, moving averages, gradients) and in inference mode (forward).
func TestBatchNormLayer(t *testing.T) {
	x := randArr(30, 3, 2, 3, 4)
	ctx := context.New()
	layer := func(xs []*Node) *Node { return batchnorm.New(ctx.In("bn"), xs[0], 1).Done() }

	// A first training run creates the variables; the moving mean then equals the batch mean
	// (debiased momentum is 0 at the first step).
	run, done := ctxExec(t, ctx, true)(func(xs []*Node) []*Node { return []*Node{layer(xs)} })
	if _, err := run(x.tensor()); err != nil {
		t.Fatalf("training forward: %v", err)
	}
	done()
	ctx = ctx.Reuse() // later graphs use the variables created above
	_, bm, bv := bnReference(x, []float64{1, 1}, []float64{0, 0}, nil, nil, bnEps)
	checkClose(t, arr{varValues(t, findVar(t, ctx, "batch_normalization", "mean")), []int{2}}, arr{bm, []int{2}}, 1e-12)
	checkClose(t, arr{varValues(t, findVar(t, ctx, "batch_normalization", "variance")), []int{2}}, arr{bv, []int{2}}, 1e-12)

	scale, offset := positive(randArr(31, 2)), randArr(32, 2)
	findVar(t, ctx, "batch_normalization", "scale").MustSetValue(scale.tensor())
	findVar(t, ctx, "batch_normalization", "offset").MustSetValue(offset.tensor())

	t.Run("training/forward", func(t *testing.T) {
		run, done := ctxExec(t, ctx, true)(func(xs []*Node) []*Node { return []*Node{layer(xs)} })
		defer done()
		out, err := run(x.tensor())
		if err != nil {
			t.Fatal(err)
		}
		want, _, _ := bnReference(x, scale.v, offset.v, nil, nil, bnEps)
		checkClose(t, arr{tensors.MustCopyFlatData[float64](out[0]), x.dims}, want, 1e-6)
	})
	t.Run("training/gradient", func(t *testing.T) {
		checkGradWith(t, ctxExec(t, ctx, true), []arr{x}, layer)
	})
	t.Run("training/gradient-scale-offset", func(t *testing.T) {
		// d/dscale and d/doffset of sum(W·bn(x)) are Σ W·xhat and Σ W per channel.
		w := randArr(33, x.dims...)
		run, done := ctxExec(t, ctx, true)(func(xs []*Node) []*Node {
			loss := ReduceAllSum(Mul(layer(xs), xs[1]))
			s := findVar(t, ctx, "batch_normalization", "scale").ValueGraph(xs[0].Graph())
			o := findVar(t, ctx, "batch_normalization", "offset").ValueGraph(xs[0].Graph())
			return Gradient(loss, s, o)
		})
		defer done()
		out, err := run(x.tensor(), w.tensor())
		if err != nil {
			t.Fatal(err)
		}
		xhat, _, _ := bnReference(x, []float64{1, 1}, []float64{0, 0}, nil, nil, bnEps)
		gs, gb := make([]float64, 2), make([]float64, 2)
		hw := size(x.dims[2:])
		for k := range x.v {
			ch := (k / hw) % 2
			gs[ch] += w.v[k] * xhat.v[k]
			gb[ch] += w.v[k]
		}
		checkClose(t, arr{tensors.MustCopyFlatData[float64](out[0]), []int{2}}, arr{gs, []int{2}}, 1e-6)
		checkClose(t, arr{tensors.MustCopyFlatData[float64](out[1]), []int{2}}, arr{gb, []int{2}}, 1e-9)
	})
	t.Run("inference/forward", func(t *testing.T) {
		mean, variance := randArr(34, 2), positive(randArr(35, 2))
		findVar(t, ctx, "batch_normalization", "mean").MustSetValue(mean.tensor())
		findVar(t, ctx, "batch_normalization", "variance").MustSetValue(variance.tensor())
		run, done := ctxExec(t, ctx, false)(func(xs []*Node) []*Node { return []*Node{layer(xs)} })
		defer done()
		out, err := run(x.tensor())
		if err != nil {
			t.Fatal(err)
		}
		want, _, _ := bnReference(x, scale.v, offset.v, mean.v, variance.v, bnEps)
		checkClose(t, arr{tensors.MustCopyFlatData[float64](out[0]), x.dims}, want, 1e-7)
		// Inference must not touch the moving averages.
		checkClose(t, arr{varValues(t, findVar(t, ctx, "batch_normalization", "mean")), []int{2}}, mean, 0)
	})
}
