package models

import (
	"fmt"
	"math"

	"github.com/gomlx/gomlx/backends/simplego"
	"github.com/gomlx/gomlx/pkg/core/dtypes"
	"github.com/gomlx/gomlx/pkg/core/graph"
	"github.com/gomlx/gomlx/pkg/core/shapes"
	timage "github.com/gomlx/gomlx/pkg/core/tensors/images"
	"github.com/gomlx/gomlx/pkg/ml/context"

	"github.com/artnet/artnet/engine"
)

// Node is a GoMLX graph node.
type Node = graph.Node

const (
	bnEps      = 1e-5
	bnMomentum = 0.1
)

// Initializers (PyTorch / torchvision conventions).

func zerosInit(g *graph.Graph, s shapes.Shape) *Node { return graph.Zeros(g, s) }
func onesInit(g *graph.Graph, s shapes.Shape) *Node  { return graph.Ones(g, s) }

// kaimingNormalFanOut is nn.init.kaiming_normal_(w, mode="fan_out") (gain √2): N(0, 2/fanOut),
// fanOut = dim0 · receptive field, as PyTorch computes it from the weight's shape.
func kaimingNormalFanOut(ctx *context.Context) context.VariableInitializer {
	return func(g *graph.Graph, s shapes.Shape) *Node {
		fanOut := s.Dimensions[0]
		for _, d := range s.Dimensions[2:] {
			fanOut *= d
		}
		return graph.MulScalar(ctx.RandomNormal(g, s), math.Sqrt(2/float64(fanOut)))
	}
}

// uniformInit draws from U(-bound, bound).
func uniformInit(ctx *context.Context, bound float64) context.VariableInitializer {
	return func(g *graph.Graph, s shapes.Shape) *Node {
		return graph.AddScalar(graph.MulScalar(ctx.RandomUniform(g, s), 2*bound), -bound)
	}
}

// param returns the value of float32 variable name (created with init if it does not exist yet)
// in ctx's scope.
func param(ctx *context.Context, g *graph.Graph, name string, init context.VariableInitializer, dims ...int) *Node {
	v := ctx.WithInitializer(init).VariableWithShape(name, shapes.Make(dtypes.Float32, dims...))
	return toCompute(ctx, v.ValueGraph(g))
}

func silu(x *Node) *Node { return graph.Mul(x, graph.Logistic(x)) }

func relu(x *Node) *Node { return graph.Max(x, graph.ZerosLike(x)) }

// conv2d is nn.Conv2d(in, out, k, stride, padding=(k-1)/2, groups) without bias on NCHW x; the
// weight variable "weight" is [out, in/groups, k, k] (PyTorch layout) in ctx's scope.
// 1×1 stride-1 ungrouped convolutions are computed as a matrix product (much faster than
// ConvGeneral on the pure-Go backend).
func conv2d(ctx *context.Context, x *Node, out, k, stride, groups int, init context.VariableInitializer) *Node {
	g := x.Graph()
	in := x.Shape().Dimensions[1]
	w := param(ctx, g, "weight", init, out, in/groups, k, k)
	if k == 1 && stride == 1 && groups == 1 {
		return pointwise(x, w)
	}
	if groups == in && groups == out && useShiftedDepthwise(ctx, g) {
		return depthwiseShifted(x, w, k, stride)
	}
	p := (k - 1) / 2
	return graph.Convolve(x, w).ChannelsAxis(timage.ChannelsFirst).
		StridePerAxis(stride, stride).DilationPerAxis(1, 1).
		PaddingPerDim([][2]int{{p, p}, {p, p}}).
		ChannelGroupCount(groups).Done()
}

// pointwise applies a 1×1 convolution with weight w [O, C, 1, 1] to x [B, C, H, W] as a batched
// matrix product: [B, O, C] × [B, C, H·W] → [B, O, H·W], with no transposes.
func pointwise(x, w *Node) *Node {
	d := x.Shape().Dimensions
	b, c, h, wd := d[0], d[1], d[2], d[3]
	o := w.Shape().Dimensions[0]
	w2 := graph.Reshape(w, 1, o, c)
	w2 = graph.BroadcastToDims(w2, b, o, c)
	xs := graph.Reshape(x, b, c, h*wd)
	y := graph.DotGeneral(w2, []int{2}, []int{0}, xs, []int{1}, []int{0})
	return graph.Reshape(y, b, o, h, wd)
}

// linear is nn.Linear(in, out) on x [..., in] with "weight" [out, in] and optional "bias" [out],
// both initialized U(±1/√in) as PyTorch does.
func linear(ctx *context.Context, x *Node, out int, bias bool) *Node {
	g := x.Graph()
	in := x.Shape().Dimensions[x.Rank()-1]
	bound := 1 / math.Sqrt(float64(in))
	w := param(ctx, g, "weight", uniformInit(ctx, bound), out, in)
	y := graph.DotGeneral(x, []int{x.Rank() - 1}, nil, w, []int{1}, nil)
	if bias {
		y = addLast(y, param(ctx, g, "bias", uniformInit(ctx, bound), out))
	}
	return y
}

// batchNorm is nn.BatchNorm2d(C, eps=1e-5, momentum=0.1) on NCHW x, with variables weight, bias
// (trainable) and running_mean, running_var (not trainable) in ctx's scope. In training it
// normalizes with the batch statistics and updates the running ones (running_var with the
// unbiased batch variance, as PyTorch); in inference it uses the running statistics. It
// computes in float32 whatever the model's compute dtype (ParamComputeDType; as PyTorch's
// autocast runs batch norm) and returns that dtype.
func batchNorm(ctx *context.Context, x *Node) *Node {
	g := x.Graph()
	c := x.Shape().Dimensions[1]
	x = toFloat32(x)
	f32 := shapes.Make(dtypes.Float32, c)
	weight := ctx.WithInitializer(onesInit).VariableWithShape("weight", f32).ValueGraph(g)
	bias := ctx.WithInitializer(zerosInit).VariableWithShape("bias", f32).ValueGraph(g)
	rmVar := ctx.WithInitializer(zerosInit).VariableWithShape("running_mean", f32).SetTrainable(false)
	rvVar := ctx.WithInitializer(onesInit).VariableWithShape("running_var", f32).SetTrainable(false)
	rm, rv := rmVar.ValueGraph(g), rvVar.ValueGraph(g)
	bc := func(v *Node) *Node { return graph.Reshape(v, 1, c, 1, 1) }
	if !ctx.IsTraining(g) {
		scale := graph.Div(weight, graph.Sqrt(graph.AddScalar(rv, bnEps)))
		shift := graph.Sub(bias, graph.Mul(rm, scale))
		return toCompute(ctx, graph.Add(graph.Mul(x, bc(scale)), bc(shift)))
	}
	d := x.Shape().Dimensions
	n := d[0] * d[2] * d[3]
	mean := graph.ReduceMean(x, 0, 2, 3)
	centered := graph.Sub(x, bc(mean))
	variance := graph.ReduceMean(graph.Square(centered), 0, 2, 3)
	y := graph.Mul(centered, bc(graph.Div(weight, graph.Sqrt(graph.AddScalar(variance, bnEps)))))
	y = graph.Add(y, bc(bias))
	unbiased := graph.StopGradient(variance)
	if n > 1 {
		unbiased = graph.MulScalar(unbiased, float64(n)/float64(n-1))
	}
	rmVar.SetValueGraph(graph.Add(graph.MulScalar(rm, 1-bnMomentum), graph.MulScalar(graph.StopGradient(mean), bnMomentum)))
	rvVar.SetValueGraph(graph.Add(graph.MulScalar(rv, 1-bnMomentum), graph.MulScalar(unbiased, bnMomentum)))
	return toCompute(ctx, y)
}

// stochasticDepth is torchvision's StochasticDepth(p, "row"): in training each example's branch
// is zeroed with probability p and survivors are scaled by 1/(1-p); identity in inference.
func stochasticDepth(ctx *context.Context, x *Node, p float64) *Node {
	g := x.Graph()
	if p <= 0 || !ctx.IsTraining(g) {
		return x
	}
	keep := 1 - p
	maskShape := x.Shape().Clone()
	for i := 1; i < maskShape.Rank(); i++ {
		maskShape.Dimensions[i] = 1
	}
	u := ctx.RandomUniform(g, maskShape)
	mask := graph.ConvertDType(graph.LessThan(u, graph.Scalar(g, u.DType(), keep)), x.DType())
	return graph.Mul(x, graph.MulScalar(mask, 1/keep))
}

// addLast adds v [n] along the last axis of y [..., n].
func addLast(y, v *Node) *Node {
	dims := make([]int, y.Rank())
	for i := range dims {
		dims[i] = 1
	}
	dims[len(dims)-1] = v.Shape().Dimensions[0]
	return graph.Add(y, graph.Reshape(v, dims...))
}

// ParamDepthwise is the context parameter that selects how depthwise convolutions are computed:
// "auto" (the default: DepthwiseConv on artnet's fast "go" backend, whose kernels run it and
// both its gradients as one node each, and on every other backend, e.g. XLA or the ONNX
// exporter's recording backend; DepthwiseShifted on "go:reference" and bare simplego, where it is
// about 6× faster forward+backward than GoMLX's grouped-convolution gradient), DepthwiseConv or DepthwiseShifted. Both compute the
// same function with the same variables.
const ParamDepthwise = "artnet_depthwise"

// Values of ParamDepthwise.
const (
	DepthwiseAuto    = "auto"
	DepthwiseConv    = "conv"    // one grouped ConvGeneral (one ONNX Conv node)
	DepthwiseShifted = "shifted" // Σ over the k² kernel taps of strided slices × per-channel weights
)

func useShiftedDepthwise(ctx *context.Context, g *graph.Graph) bool {
	switch mode := context.GetParamOr(ctx, ParamDepthwise, DepthwiseAuto); mode {
	case DepthwiseConv:
		return false
	case DepthwiseShifted:
		return true
	case DepthwiseAuto, "":
		switch b := g.Backend().(type) {
		case *engine.Backend:
			// artnet's fast "go" backend runs the grouped convolution and both its gradients
			// as single kernels; "go:reference" (GoMLX's own executors) keeps the shifted form.
			return !b.FastDepthwise()
		case *simplego.Backend:
			return true
		}
		return false
	default:
		panic(fmt.Errorf("context parameter %s: unknown value %q (want %q, %q or %q)", ParamDepthwise, mode, DepthwiseAuto, DepthwiseConv, DepthwiseShifted))
	}
}

// depthwiseShifted computes the depthwise convolution of x [B, C, H, W] with w [C, 1, k, k]
// (stride, padding (k-1)/2) as Σ_{i,j} w[:, 0, i, j] · x_padded[:, :, i::stride, j::stride].
// Zero padding is a concatenation (GoMLX's Pad has no gradient).
func depthwiseShifted(x, w *Node, k, stride int) *Node {
	d := x.Shape().Dimensions
	c, h, wd := d[1], d[2], d[3]
	p := (k - 1) / 2
	xp := zeroPad2D(x, p)
	oh, ow := (h+2*p-k)/stride+1, (wd+2*p-k)/stride+1
	var y *Node
	for i := 0; i < k; i++ {
		for j := 0; j < k; j++ {
			tap := graph.Slice(xp, graph.AxisRange(), graph.AxisRange(),
				graph.AxisRange(i, i+(oh-1)*stride+1).Stride(stride),
				graph.AxisRange(j, j+(ow-1)*stride+1).Stride(stride))
			wij := graph.Reshape(graph.Slice(w, graph.AxisRange(), graph.AxisRange(), graph.AxisElem(i), graph.AxisElem(j)), 1, c, 1, 1)
			// An explicit broadcast makes Mul take simplego's same-shape fast path (~30% faster
			// forward+backward than its generic broadcasting).
			term := graph.Mul(tap, graph.BroadcastToDims(wij, tap.Shape().Dimensions...))
			if y == nil {
				y = term
			} else {
				y = graph.Add(y, term)
			}
		}
	}
	return y
}

// zeroPad2D pads the two spatial axes of NCHW x with p zeros on each side.
func zeroPad2D(x *Node, p int) *Node {
	if p == 0 {
		return x
	}
	d := x.Shape().Dimensions
	z := graph.Zeros(x.Graph(), shapes.Make(x.DType(), d[0], d[1], p, d[3]))
	x = graph.Concatenate([]*Node{z, x, z}, 2)
	d = x.Shape().Dimensions
	z = graph.Zeros(x.Graph(), shapes.Make(x.DType(), d[0], d[1], d[2], p))
	return graph.Concatenate([]*Node{z, x, z}, 3)
}
