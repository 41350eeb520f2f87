package engine

import (
	"fmt"

	"github.com/gomlx/gomlx/backends"
	"github.com/gomlx/gomlx/pkg/core/shapes"
)

// bnSetup checks a batch-norm operand and its per-feature vectors, and returns the operand shape,
// the axes reduced over (all but featureAxis), the number of reduced elements and a function
// reshaping a [C] vector to broadcast against the operand ([1,..,C,..,1]).
func (b *Builder) bnSetup(opName string, operand backends.Op, featureAxis int, vectors ...backends.Op) (
	s shapes.Shape, reduceAxes []int, count int, expand func(backends.Op) (backends.Op, error), err error) {
	if s, err = b.shapeOf(opName, operand); err != nil {
		return
	}
	if !s.DType.IsFloat() {
		err = fmt.Errorf("%s: operand must be a float, got %s", opName, s)
		return
	}
	if featureAxis < 0 || featureAxis >= s.Rank() {
		err = fmt.Errorf("%s: feature axis %d out of range for operand shape %s", opName, featureAxis, s)
		return
	}
	c := s.Dimensions[featureAxis]
	for i, v := range vectors {
		var vs shapes.Shape
		if vs, err = b.shapeOf(opName, v); err != nil {
			return
		}
		if vs.Rank() != 1 || vs.Dimensions[0] != c || vs.DType != s.DType {
			err = fmt.Errorf("%s: per-feature input #%d must be %s[%d], got %s", opName, i, s.DType, c, vs)
			return
		}
	}
	count = 1
	for axis, d := range s.Dimensions {
		if axis != featureAxis {
			reduceAxes = append(reduceAxes, axis)
			count *= d
		}
	}
	bdims := make([]int, s.Rank())
	for i := range bdims {
		bdims[i] = 1
	}
	bdims[featureAxis] = c
	expand = func(v backends.Op) (backends.Op, error) { return b.Reshape(v, bdims...) }
	return
}

// opChain runs a sequence of op constructors, stopping at the first error.
type opChain struct {
	name string
	err  error
}

func (c *opChain) do(op backends.Op, err error) backends.Op {
	if c.err == nil && err != nil {
		c.err = fmt.Errorf("%s: %w", c.name, err)
	}
	if c.err != nil {
		return nil
	}
	return op
}

// BatchNormForInference returns scale*(operand-mean)/sqrt(variance+epsilon)+offset, the
// per-feature vectors ([C]) broadcast along featureAxis.
func (b *Builder) BatchNormForInference(operand, scale, offset, mean, variance backends.Op, epsilon float32, featureAxis int) (backends.Op, error) {
	const name = "BatchNormForInference"
	s, _, _, expand, err := b.bnSetup(name, operand, featureAxis, scale, offset, mean, variance)
	if err != nil {
		return nil, err
	}
	c := &opChain{name: name}
	eps := c.do(b.scalar(float64(epsilon), s.DType))
	if c.err != nil {
		return nil, c.err
	}
	factor := c.do(b.Mul(scale, c.do(b.Rsqrt(c.do(b.Add(variance, eps))))))
	if c.err != nil {
		return nil, c.err
	}
	out := c.do(b.Mul(c.do(b.Sub(operand, c.do(expand(mean)))), c.do(expand(factor))))
	if c.err != nil {
		return nil, c.err
	}
	out = c.do(b.Add(out, c.do(expand(offset))))
	return out, c.err
}

// BatchNormForTraining normalizes operand with the batch mean and (biased) variance computed
// over all axes but featureAxis, then scales and offsets it; it also returns those statistics.
func (b *Builder) BatchNormForTraining(operand, scale, offset backends.Op, epsilon float32, featureAxis int) (
	normalized, batchMean, batchVariance backends.Op, err error) {
	const name = "BatchNormForTraining"
	s, axes, count, expand, err := b.bnSetup(name, operand, featureAxis, scale, offset)
	if err != nil {
		return nil, nil, nil, err
	}
	c := &opChain{name: name}
	invCount := c.do(b.scalar(1/float64(count), s.DType))
	eps := c.do(b.scalar(float64(epsilon), s.DType))
	if c.err != nil {
		return nil, nil, nil, c.err
	}
	batchMean = c.do(b.Mul(c.do(b.ReduceSum(operand, axes...)), invCount))
	if c.err != nil {
		return nil, nil, nil, c.err
	}
	centered := c.do(b.Sub(operand, c.do(expand(batchMean))))
	if c.err != nil {
		return nil, nil, nil, c.err
	}
	batchVariance = c.do(b.Mul(c.do(b.ReduceSum(c.do(b.Mul(centered, centered)), axes...)), invCount))
	if c.err != nil {
		return nil, nil, nil, c.err
	}
	factor := c.do(b.Mul(scale, c.do(b.Rsqrt(c.do(b.Add(batchVariance, eps))))))
	if c.err != nil {
		return nil, nil, nil, c.err
	}
	normalized = c.do(b.Add(c.do(b.Mul(centered, c.do(expand(factor)))), c.do(expand(offset))))
	if c.err != nil {
		return nil, nil, nil, c.err
	}
	return normalized, batchMean, batchVariance, nil
}

// BatchNormGradient returns the gradients of BatchNormForTraining's normalized output with
// respect to operand, scale and offset, given the batch mean and variance it computed and the
// gradient gradOutput with respect to its output (XLA's BatchNormGrad):
//
//	xhat = (x-mean)/sqrt(var+eps); gradOffset = Σ g; gradScale = Σ g·xhat;
//	gradOperand = scale/sqrt(var+eps) · (g - gradOffset/N - xhat·gradScale/N)
func (b *Builder) BatchNormGradient(operand, scale, mean, variance, gradOutput backends.Op, epsilon float32, featureAxis int) (
	gradOperand, gradScale, gradOffset backends.Op, err error) {
	const name = "BatchNormGradient"
	s, axes, count, expand, err := b.bnSetup(name, operand, featureAxis, scale, mean, variance)
	if err != nil {
		return nil, nil, nil, err
	}
	gs, err := b.shapeOf(name, gradOutput)
	if err != nil {
		return nil, nil, nil, err
	}
	if !gs.Equal(s) {
		return nil, nil, nil, fmt.Errorf("%s: gradOutput shape %s differs from operand shape %s", name, gs, s)
	}
	c := &opChain{name: name}
	invCount := c.do(b.scalar(1/float64(count), s.DType))
	eps := c.do(b.scalar(float64(epsilon), s.DType))
	if c.err != nil {
		return nil, nil, nil, c.err
	}
	inv := c.do(b.Rsqrt(c.do(b.Add(variance, eps))))
	if c.err != nil {
		return nil, nil, nil, c.err
	}
	xhat := c.do(b.Mul(c.do(b.Sub(operand, c.do(expand(mean)))), c.do(expand(inv))))
	if c.err != nil {
		return nil, nil, nil, c.err
	}
	gradOffset = c.do(b.ReduceSum(gradOutput, axes...))
	gradScale = c.do(b.ReduceSum(c.do(b.Mul(gradOutput, xhat)), axes...))
	if c.err != nil {
		return nil, nil, nil, c.err
	}
	meanG := c.do(expand(c.do(b.Mul(gradOffset, invCount))))
	meanGX := c.do(expand(c.do(b.Mul(gradScale, invCount))))
	factor := c.do(expand(c.do(b.Mul(scale, inv))))
	if c.err != nil {
		return nil, nil, nil, c.err
	}
	inner := c.do(b.Sub(c.do(b.Sub(gradOutput, meanG)), c.do(b.Mul(xhat, meanGX))))
	if c.err != nil {
		return nil, nil, nil, c.err
	}
	gradOperand = c.do(b.Mul(inner, factor))
	if c.err != nil {
		return nil, nil, nil, c.err
	}
	return gradOperand, gradScale, gradOffset, nil
}
