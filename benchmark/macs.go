package benchmark

import (
	"fmt"
	"sync"

	"github.com/gomlx/gomlx/backends"
	"github.com/gomlx/gomlx/pkg/core/dtypes"
	"github.com/gomlx/gomlx/pkg/core/graph"
	"github.com/gomlx/gomlx/pkg/core/shapes"
	gomlxcontext "github.com/gomlx/gomlx/pkg/ml/context"

	"github.com/artnet/artnet/engine"
	"github.com/artnet/artnet/models"
	"github.com/artnet/artnet/models/spec"
)

// MACs are multiply-accumulate counts of one model run, by op kind. Only convolutions and dot
// products (1×1 convs, squeeze-excitation, projection, LSTM gates, attention, heads) are
// counted: elementwise ops, reductions and batch norm are a few per cent of a CNN's arithmetic
// and are left out, as FLOP counters usually do.
type MACs struct {
	Conv int64 // ConvGeneral: output elements × (kernel elements / output channels)
	Dot  int64 // DotGeneral/Dot: output elements × contracted elements
}

// Total is Conv + Dot.
func (m MACs) Total() int64 { return m.Conv + m.Dot }

// CountMACs builds DeepArtNet's forward graph for cfg at batch size batch (without running it)
// and counts the multiply-accumulates of its convolutions and dot products from the shapes of
// the built graph. Depthwise convolutions are built as grouped convolutions for the count (on
// the go backend they run as k² strided products of the same arithmetic).
//
// A training step is counted as 3× the forward count (TrainingMACs): each convolution and dot
// product has two gradients (input and weights) of its own size, the usual convention and what
// PyTorch computes. (GoMLX v0.26 builds DotGeneral's gradient as a broadcast Mul + ReduceSum,
// not as dot products, so counting the gradient graph's products would miss them.)
func CountMACs(cfg spec.Config, batch int) (m MACs, err error) {
	if batch < 1 {
		return m, fmt.Errorf("benchmark: batch must be ≥ 1, got %d", batch)
	}
	if err := cfg.Validate(); err != nil {
		return m, fmt.Errorf("benchmark: model config: %w", err)
	}
	inner, err := engine.NewBackend(engine.GoBackendName)
	if err != nil {
		return m, err
	}
	defer inner.Finalize()
	cb := &countingBackend{Backend: inner}
	defer func() {
		if r := recover(); r != nil {
			err = fmt.Errorf("benchmark: counting MACs: %v", r)
		}
	}()
	g := graph.NewGraph(cb, "count_macs")
	defer g.Finalize()
	ctx := gomlxcontext.New()
	ctx.SetParam(models.ParamDepthwise, models.DepthwiseConv)
	s := cfg.ImageSize
	models.Build(ctx, cfg, graph.Parameter(g, "images", shapes.Make(dtypes.Float32, batch, 3, s, s)))
	return cb.total(), nil
}

// TrainingMACs is the MAC count of a training step whose forward pass counts forward:
// forward + input gradients + weight gradients.
func TrainingMACs(forward MACs) MACs { return MACs{Conv: 3 * forward.Conv, Dot: 3 * forward.Dot} }

// countingBackend is a backend whose builders add up the MACs of ConvGeneral and DotGeneral ops
// before passing every op to the wrapped backend's builder.
type countingBackend struct {
	backends.Backend
	mu   sync.Mutex
	macs MACs
}

func (c *countingBackend) Builder(name string) backends.Builder {
	return &countingBuilder{Builder: c.Backend.Builder(name), counter: c}
}

func (c *countingBackend) add(conv, dot int64) {
	c.mu.Lock()
	c.macs.Conv += conv
	c.macs.Dot += dot
	c.mu.Unlock()
}

func (c *countingBackend) total() MACs {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.macs
}

type countingBuilder struct {
	backends.Builder
	counter *countingBackend
}

func (b *countingBuilder) ConvGeneral(input, kernel backends.Op, axes backends.ConvolveAxesConfig,
	strides []int, paddings [][2]int, inputDilations, kernelDilations []int,
	channelGroupCount, batchGroupCount int) (backends.Op, error) {
	out, err := b.Builder.ConvGeneral(input, kernel, axes, strides, paddings, inputDilations, kernelDilations, channelGroupCount, batchGroupCount)
	return b.count(out, err, kernel, func(o, k shapes.Shape) { b.counter.add(ConvMACs(o, k, axes.KernelOutputChannels), 0) })
}

func (b *countingBuilder) DotGeneral(lhs backends.Op, lhsContractingAxes, lhsBatchAxes []int,
	rhs backends.Op, rhsContractingAxes, rhsBatchAxes []int) (backends.Op, error) {
	out, err := b.Builder.DotGeneral(lhs, lhsContractingAxes, lhsBatchAxes, rhs, rhsContractingAxes, rhsBatchAxes)
	return b.count(out, err, lhs, func(o, l shapes.Shape) { b.counter.add(0, DotMACs(o, l, lhsContractingAxes)) })
}

func (b *countingBuilder) Dot(lhs, rhs backends.Op) (backends.Op, error) {
	out, err := b.Builder.Dot(lhs, rhs)
	return b.count(out, err, lhs, func(o, l shapes.Shape) { b.counter.add(0, DotMACs(o, l, []int{l.Rank() - 1})) })
}

// count passes an op's result on, calling add with the shapes of out and of operand first.
func (b *countingBuilder) count(out backends.Op, err error, operand backends.Op, add func(out, operand shapes.Shape)) (backends.Op, error) {
	if err != nil {
		return out, err
	}
	os, err := b.OpShape(out)
	if err != nil {
		return out, err
	}
	ps, err := b.OpShape(operand)
	if err != nil {
		return out, err
	}
	add(os, ps)
	return out, nil
}

// ConvMACs is the multiply-accumulate count of a convolution with output shape out and kernel
// shape kernel whose output-channel axis is kernelOut: every output element is a dot product
// over the kernel's input channels (per group) and spatial taps, i.e. over
// size(kernel)/kernel[kernelOut] elements.
func ConvMACs(out, kernel shapes.Shape, kernelOut int) int64 {
	if kernelOut < 0 || kernelOut >= kernel.Rank() || kernel.Dimensions[kernelOut] == 0 {
		return 0
	}
	return int64(out.Size()) * int64(kernel.Size()/kernel.Dimensions[kernelOut])
}

// DotMACs is the multiply-accumulate count of a dot product with output shape out and left
// operand lhs contracted over lhsContracting: output elements × contracted elements.
func DotMACs(out, lhs shapes.Shape, lhsContracting []int) int64 {
	n := int64(out.Size())
	for _, a := range lhsContracting {
		if a < 0 || a >= lhs.Rank() {
			return 0
		}
		n *= int64(lhs.Dimensions[a])
	}
	return n
}
