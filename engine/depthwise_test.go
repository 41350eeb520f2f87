package engine_test

import (
	"math/rand/v2"
	"testing"

	"github.com/artnet/artnet/engine"
	"github.com/gomlx/gomlx/pkg/core/dtypes"
	. "github.com/gomlx/gomlx/pkg/core/graph"
	"github.com/gomlx/gomlx/pkg/core/tensors"
	"github.com/gomlx/gomlx/pkg/core/tensors/images"
)

// depthwiseCases: odd sizes, strides 1 and 2, paddings (same, none, asymmetric), batch 1,
// kernels 3 and 5, a kernel dilation.
var depthwiseCases = []convCase{
	{n: 1, c: 3, h: 7, w: 5, o: 3, k: 3, stride: 1, pad: 1, groups: 3},
	{n: 2, c: 4, h: 7, w: 6, o: 4, k: 3, stride: 2, pad: 1, groups: 4},
	{n: 1, c: 5, h: 9, w: 9, o: 5, k: 5, stride: 2, pad: 2, groups: 5},
	{n: 2, c: 2, h: 6, w: 7, o: 2, k: 5, stride: 1, pad: 2, groups: 2},
	{n: 3, c: 3, h: 8, w: 8, o: 3, k: 3, stride: 2, pad: 0, groups: 3},
	{n: 1, c: 2, h: 5, w: 6, o: 2, k: 3, stride: 1, pad: 0, groups: 2},
	{n: 2, c: 3, h: 9, w: 7, o: 3, k: 3, stride: 1, pad: 2, groups: 3, dilation: 2},
	{n: 1, c: 4, h: 11, w: 10, o: 4, k: 3, stride: 2, pad: 1, groups: 4, explicitStride: true},
}

// TestDepthwiseKernels: artnet's depthwise convolution kernels (forward, input gradient, kernel
// gradient) against the naive reference convolution and finite differences, and against
// "go:reference" (GoMLX's grouped-convolution VJP and simplego's convolution).
func TestDepthwiseKernels(t *testing.T) {
	for _, cc := range depthwiseCases {
		t.Run(cc.String(), func(t *testing.T) {
			in := cc.inputs()
			before := engine.ConvKernelRuns()
			got := forward(t, in, cc.conv)
			checkClose(t, got, cc.reference(in[0], in[1]), 1e-12)
			if engine.ConvKernelRuns() == before {
				t.Fatal("the forward depthwise convolution did not run artnet's kernel")
			}
			before = engine.ConvKernelRuns()
			checkGrad(t, in, cc.conv)
			if runs := engine.ConvKernelRuns() - before; runs < 3 {
				t.Fatalf("forward+backward ran artnet's convolution kernels %d times, want >= 3 (forward, both gradients)", runs)
			}
			checkValueAndGradientsLikeReference(t, in, cc.conv, 1e-12)
		})
	}
}

// TestDepthwiseKernelsFloat32Random: random float32 shapes, forward and gradients against
// "go:reference" (float32 tolerance).
func TestDepthwiseKernelsFloat32Random(t *testing.T) {
	r := rand.New(rand.NewPCG(7, 8))
	for trial := range 6 {
		k := []int{3, 5}[trial%2]
		stride := 1 + trial%2
		c := 1 + r.IntN(6)
		cc := convCase{n: 1 + r.IntN(3), c: c, h: k + r.IntN(9), w: k + r.IntN(9), o: c, k: k, stride: stride, pad: k / 2, groups: c}
		t.Run(cc.String(), func(t *testing.T) {
			x, kern := randTensor(r, dtypes.Float32, cc.n, cc.c, cc.h, cc.w), randTensor(r, dtypes.Float32, cc.c, 1, cc.k, cc.k)
			fast, ref := runBoth(t, []*tensors.Tensor{x, kern}, func(xs []*Node) []*Node {
				y := Convolve(xs[0], xs[1]).ChannelsAxis(images.ChannelsFirst).Strides(cc.stride).
					PaddingPerDim([][2]int{{cc.pad, cc.pad}, {cc.pad, cc.pad}}).ChannelGroupCount(cc.groups).Done()
				return append([]*Node{y}, Gradient(ReduceAllSum(Mul(y, y)), xs[0], xs[1])...)
			})
			for i := range fast {
				checkClose(t, arr{fast[i], nil}, arr{ref[i], nil}, 1e-3)
			}
		})
	}
}

// TestConvParityWithReference: every convolution case (regular, 1×1, grouped, depthwise,
// dilated, channels-last; strides 1 and 2; odd sizes; batch 1) gives the same forward values and
// gradients on "go" (artnet's kernels: GEMM under im2col, depthwise kernels) as on
// "go:reference".
func TestConvParityWithReference(t *testing.T) {
	for _, cc := range append(append([]convCase{}, convCases...), depthwiseCases...) {
		t.Run(cc.String(), func(t *testing.T) {
			checkValueAndGradientsLikeReference(t, cc.inputs(), cc.conv, 1e-12)
		})
	}
}
