package engine_test

import (
	"fmt"
	"testing"

	"github.com/gomlx/gomlx/backends"
	"github.com/gomlx/gomlx/pkg/core/dtypes"
	. "github.com/gomlx/gomlx/pkg/core/graph"
	"github.com/gomlx/gomlx/pkg/core/shapes"
	"github.com/gomlx/gomlx/pkg/ml/layers/activations"
)

// strides returns row-major strides of dims.
func stridesOf(dims []int) []int {
	s := make([]int, len(dims))
	acc := 1
	for i := len(dims) - 1; i >= 0; i-- {
		s[i] = acc
		acc *= dims[i]
	}
	return s
}

// unflatten returns the multi-index of flat position i.
func unflatten(i int, dims []int) []int {
	idx := make([]int, len(dims))
	for a := len(dims) - 1; a >= 0; a-- {
		idx[a] = i % dims[a]
		i /= dims[a]
	}
	return idx
}

func TestReverseForward(t *testing.T) {
	x := randArr(5, 2, 3, 4)
	for _, axes := range [][]int{{0}, {1}, {2}, {1, 2}, {0, 1, 2}, {}} {
		t.Run(fmt.Sprint(axes), func(t *testing.T) {
			got := forward(t, []arr{x}, func(xs []*Node) *Node { return Reverse(xs[0], axes...) })
			want := make([]float64, len(x.v))
			st := stridesOf(x.dims)
			for i := range x.v {
				idx := unflatten(i, x.dims)
				for _, a := range axes {
					idx[a] = x.dims[a] - 1 - idx[a]
				}
				j := 0
				for a := range idx {
					j += idx[a] * st[a]
				}
				want[i] = x.v[j]
			}
			checkClose(t, got, arr{want, x.dims}, 0)
		})
	}
}

// naivePad pads x per XLA semantics (negative edges crop, applied after interior padding).
func naivePad(x arr, fill float64, cfg []backends.PadAxis) arr {
	rank := len(x.dims)
	full := make([]backends.PadAxis, rank)
	copy(full, cfg)
	outDims := make([]int, rank)
	for a, d := range x.dims {
		outDims[a] = full[a].Start + full[a].End + (d-1)*(full[a].Interior+1) + 1
	}
	out := make([]float64, size(outDims))
	for i := range out {
		out[i] = fill
	}
	st := stridesOf(outDims)
	for i, v := range x.v {
		idx := unflatten(i, x.dims)
		j, ok := 0, true
		for a := range idx {
			p := full[a].Start + idx[a]*(full[a].Interior+1)
			if p < 0 || p >= outDims[a] {
				ok = false
				break
			}
			j += p * st[a]
		}
		if ok {
			out[j] = v
		}
	}
	return arr{out, outDims}
}

func TestPadForward(t *testing.T) {
	x := randArr(6, 2, 3, 4)
	cases := [][]backends.PadAxis{
		{{Start: 1, End: 2}},
		{{}, {Start: 0, End: 3, Interior: 1}, {Start: 2, Interior: 2}},
		{{Start: -1, End: 1}, {Start: 1, End: -2, Interior: 1}, {Start: -2, End: -1}},
		{{}, {}, {Start: -1, End: -1, Interior: 3}},
	}
	for _, cfg := range cases {
		t.Run(fmt.Sprint(cfg), func(t *testing.T) {
			got := forward(t, []arr{x}, func(xs []*Node) *Node {
				return Pad(xs[0], Scalar(xs[0].Graph(), xs[0].DType(), 7.5), cfg...)
			})
			checkClose(t, got, naivePad(x, 7.5, cfg), 0)
		})
	}
}

// TestBuilderErrors checks that bad input to the wrapper's ops is a returned error naming the op.
func TestBuilderErrors(t *testing.T) {
	b := backend(t).Builder("errors")
	x, err := b.Parameter("x", shapes.Make(dtypes.Float64, 2, 3), nil)
	if err != nil {
		t.Fatal(err)
	}
	v, err := b.Parameter("v", shapes.Make(dtypes.Float64, 2), nil)
	if err != nil {
		t.Fatal(err)
	}
	fill, err := b.Constant([]float64{0})
	if err != nil {
		t.Fatal(err)
	}
	checks := []struct {
		op  string
		err error
	}{
		{"Reverse", second(b.Reverse(x, 2))},
		{"Pad", second(b.Pad(x, v, backends.PadAxis{Start: 1}))},
		{"Pad", second(b.Pad(x, fill, backends.PadAxis{Start: -2, End: -1}))},
		{"Pad", second(b.Pad(x, fill, backends.PadAxis{}, backends.PadAxis{}, backends.PadAxis{}))},
		{"ConvGeneral", second(b.ConvGeneral(x, x, backends.ConvolveAxesConfig{}, nil, nil, nil, nil, 1, 1))},
		{"BatchNormForInference", second(b.BatchNormForInference(x, v, v, v, v, 1e-3, 1))},
		{"BatchNormForTraining", func() error { _, _, _, err := b.BatchNormForTraining(x, v, v, 1e-3, 2); return err }()},
	}
	for i, c := range checks {
		if c.err == nil {
			t.Errorf("check #%d (%s): no error", i, c.op)
			continue
		}
		if msg := c.err.Error(); len(msg) < len(c.op) || msg[:len(c.op)] != c.op {
			t.Errorf("check #%d: error %q does not start with the op name %q", i, msg, c.op)
		}
	}
}

func second[T any](_ T, err error) error { return err }

// TestSliceGradient covers Slice (plain and strided), whose gradient is a Pad (interior
// padding for strides).
func TestSliceGradient(t *testing.T) {
	x := randArr(7, 3, 8, 5)
	cases := map[string]func(xs []*Node) *Node{
		"plain": func(xs []*Node) *Node { return Slice(xs[0], AxisRange(1, 3), AxisRange(2, 7), AxisRange()) },
		"strided": func(xs []*Node) *Node {
			return Slice(xs[0], AxisRange(), AxisRange(1, 8).Stride(3), AxisRange(0, 5).Stride(2))
		},
		"elem": func(xs []*Node) *Node { return Slice(xs[0], AxisElem(2), AxisRange(), AxisRangeToEnd(3)) },
	}
	for name, fn := range cases {
		t.Run(name, func(t *testing.T) { checkGrad(t, []arr{x}, fn) })
	}
}

// TestSliceForward checks a strided slice against a hand-computed result.
func TestSliceForward(t *testing.T) {
	x := arr{[]float64{0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11}, []int{3, 4}}
	got := forward(t, []arr{x}, func(xs []*Node) *Node { return Slice(xs[0], AxisRange(0, 3).Stride(2), AxisRange(1, 4).Stride(2)) })
	checkClose(t, got, arr{[]float64{1, 3, 9, 11}, []int{2, 2}}, 0)
}

// TestOpGradients checks the gradient of each op the model uses against finite differences.
func TestOpGradients(t *testing.T) {
	x := randArr(8, 2, 3, 4)
	y := randArr(9, 2, 3, 4)
	m := randArr(10, 4, 5)
	cases := []struct {
		name   string
		inputs []arr
		fn     func(xs []*Node) *Node
	}{
		{"Concatenate", []arr{x, randArr(11, 2, 2, 4)}, func(xs []*Node) *Node { return Concatenate([]*Node{xs[0], xs[1]}, 1) }},
		{"Sigmoid", []arr{x}, func(xs []*Node) *Node { return Sigmoid(MulScalar(xs[0], 3)) }},
		{"SiLU", []arr{x}, func(xs []*Node) *Node { return activations.Swish(MulScalar(xs[0], 3)) }},
		{"Tanh", []arr{x}, func(xs []*Node) *Node { return Tanh(MulScalar(xs[0], 2)) }},
		{"ReLU", []arr{x}, func(xs []*Node) *Node { return activations.Relu(xs[0]) }},
		{"Softmax", []arr{x}, func(xs []*Node) *Node { return Softmax(MulScalar(xs[0], 3), -1) }},
		{"Dot", []arr{randArr(12, 3, 4), m}, func(xs []*Node) *Node { return Dot(xs[0], xs[1]) }},
		{"MatMul", []arr{x, m}, func(xs []*Node) *Node { return MatMul(xs[0], xs[1]) }},
		{"Einsum", []arr{x, randArr(13, 2, 4, 5)}, func(xs []*Node) *Node { return Einsum("bij,bjk->bik", xs[0], xs[1]) }},
		{"ReduceSum", []arr{x}, func(xs []*Node) *Node { return ReduceSum(Square(xs[0]), 1) }},
		{"ReduceMean", []arr{x}, func(xs []*Node) *Node { return ReduceMean(Square(xs[0]), 0, 2) }},
		{"ReduceMax", []arr{x}, func(xs []*Node) *Node { return ReduceMax(xs[0], 2) }},
		{"Reshape", []arr{x}, func(xs []*Node) *Node { return Square(Reshape(xs[0], 6, 4)) }},
		{"Transpose", []arr{x}, func(xs []*Node) *Node { return Square(TransposeAllAxes(xs[0], 2, 0, 1)) }},
		{"Gather", []arr{m}, func(xs []*Node) *Node {
			idx := Const(xs[0].Graph(), [][]int32{{2}, {0}, {2}, {3}})
			return Square(Gather(xs[0], idx))
		}},
		{"Where", []arr{x, y}, func(xs []*Node) *Node {
			return Where(GreaterThan(xs[1], ZerosLike(xs[1])), Square(xs[0]), MulScalar(xs[0], 3))
		}},
		{"MeanPool", []arr{randArr(14, 2, 3, 4, 6)}, func(xs []*Node) *Node {
			return ReduceMean(xs[0], 2, 3) // global average pooling, NCHW
		}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) { checkGrad(t, c.inputs, c.fn) })
	}
}
