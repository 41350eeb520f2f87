package engine_test

import (
	"github.com/gomlx/gomlx/backends"
	"testing"

	"github.com/gomlx/gomlx/pkg/core/dtypes"
	. "github.com/gomlx/gomlx/pkg/core/graph"
	"github.com/gomlx/gomlx/pkg/core/shapes"
	"github.com/gomlx/gomlx/pkg/core/tensors"
	"github.com/gomlx/gomlx/pkg/core/tensors/images"
)

func shapesF32(dims ...int) shapes.Shape { return shapes.Make(dtypes.Float32, dims...) }

// benchConvGrad times forward+backward of a float32 NCHW convolution (compiled once).
func benchConvGrad(b *testing.B, n, c, hw, o, k, stride, groups int) {
	benchConv(b, true, n, c, hw, o, k, stride, groups)
}

// benchConv times a float32 NCHW convolution, forward only or forward+backward.
func benchConv(b *testing.B, grad bool, n, c, hw, o, k, stride, groups int) {
	b.Run("im2col", func(b *testing.B) { benchConvOn(b, goBackend, grad, n, c, hw, o, k, stride, groups) })
	b.Run("direct", func(b *testing.B) { benchConvOn(b, goDirectBackend, grad, n, c, hw, o, k, stride, groups) })
}

func benchConvOn(b *testing.B, newBackend func() (backends.Backend, error), grad bool, n, c, hw, o, k, stride, groups int) {
	bk, err := newBackend()
	if err != nil {
		b.Fatal(err)
	}
	x := tensors.FromShape(shapesF32(n, c, hw, hw))
	kern := tensors.FromShape(shapesF32(o, c/groups, k, k))
	exec, err := NewExec(bk, func(x, kern *Node) []*Node {
		y := Convolve(x, kern).ChannelsAxis(images.ChannelsFirst).Strides(stride).PadSame().ChannelGroupCount(groups).Done()
		if !grad {
			return []*Node{y}
		}
		return Gradient(ReduceAllSum(Mul(y, y)), x, kern)
	})
	if err != nil {
		b.Fatal(err)
	}
	defer exec.Finalize()
	if _, err := exec.Exec(x, kern); err != nil { // compile
		b.Fatal(err)
	}
	b.ResetTimer()
	for range b.N {
		if _, err := exec.Exec(x, kern); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkConv3x3Grad_b2_c32_24px(b *testing.B)      { benchConvGrad(b, 2, 32, 24, 32, 3, 1, 1) }
func BenchmarkDepthwise3x3Grad_b2_c32_24px(b *testing.B) { benchConvGrad(b, 2, 32, 24, 32, 3, 1, 32) }
func BenchmarkDepthwise3x3Grad_b2_c192_12px(b *testing.B) {
	benchConvGrad(b, 2, 192, 12, 192, 3, 1, 192)
}
func BenchmarkDepthwise5x5S2Grad_b2_c144_24px(b *testing.B) {
	benchConvGrad(b, 2, 144, 24, 144, 5, 2, 144)
}

func BenchmarkConv3x3Fwd_b2_c32_24px(b *testing.B) { benchConv(b, false, 2, 32, 24, 32, 3, 1, 1) }
func BenchmarkDepthwise3x3Fwd_b2_c192_12px(b *testing.B) {
	benchConv(b, false, 2, 192, 12, 192, 3, 1, 192)
}

// depthwiseComposed is a depthwise NCHW convolution (kernel [C,1,k,k], symmetric padding)
// written with Pad, strided Slice, Mul and Add, for comparison with ConvGeneral's grouped path.
func depthwiseComposed(x, kern *Node, stride, pad int) *Node {
	g := x.Graph()
	dims := x.Shape().Dimensions
	c, h, w := dims[1], dims[2], dims[3]
	k := kern.Shape().Dimensions[2]
	// graph.Pad has no gradient in GoMLX v0.26: pad with concatenated zeros.
	n := dims[0]
	zr := Zeros(g, shapesF32(n, c, pad, w))
	xp := Concatenate([]*Node{zr, x, zr}, 2)
	zc := Zeros(g, shapesF32(n, c, h+2*pad, pad))
	xp = Concatenate([]*Node{zc, xp, zc}, 3)
	oh, ow := (h+2*pad-k)/stride+1, (w+2*pad-k)/stride+1
	var out *Node
	for ky := range k {
		for kx := range k {
			tap := Slice(xp, AxisRange(), AxisRange(),
				AxisRange(ky, ky+(oh-1)*stride+1).Stride(stride), AxisRange(kx, kx+(ow-1)*stride+1).Stride(stride))
			wk := Reshape(Slice(kern, AxisRange(), AxisElem(0), AxisElem(ky), AxisElem(kx)), 1, c, 1, 1)
			term := Mul(tap, wk)
			if out == nil {
				out = term
			} else {
				out = Add(out, term)
			}
		}
	}
	return out
}

func benchDepthwiseComposed(b *testing.B, n, c, hw, k, stride int) {
	bk, err := goBackend()
	if err != nil {
		b.Fatal(err)
	}
	x := tensors.FromShape(shapesF32(n, c, hw, hw))
	kern := tensors.FromShape(shapesF32(c, 1, k, k))
	exec, err := NewExec(bk, func(x, kern *Node) []*Node {
		y := depthwiseComposed(x, kern, stride, k/2)
		return Gradient(ReduceAllSum(Mul(y, y)), x, kern)
	})
	if err != nil {
		b.Fatal(err)
	}
	defer exec.Finalize()
	if _, err := exec.Exec(x, kern); err != nil {
		b.Fatal(err)
	}
	b.ResetTimer()
	for range b.N {
		if _, err := exec.Exec(x, kern); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkDepthwiseComposed3x3Grad_b2_c192_12px(b *testing.B) {
	benchDepthwiseComposed(b, 2, 192, 12, 3, 1)
}
func BenchmarkDepthwiseComposed5x5S2Grad_b2_c144_24px(b *testing.B) {
	benchDepthwiseComposed(b, 2, 144, 24, 5, 2)
}

// The EfficientNet-B0/B4 stem-sized case from the shared GoMLX notes (3×3, 48→48, 112×112).
func BenchmarkConv3x3Fwd_b1_c48_112px(b *testing.B)  { benchConv(b, false, 1, 48, 112, 48, 3, 1, 1) }
func BenchmarkConv3x3Grad_b1_c48_112px(b *testing.B) { benchConv(b, true, 1, 48, 112, 48, 3, 1, 1) }
