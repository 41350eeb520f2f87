package engine

import (
	"fmt"
	"slices"

	"github.com/gomlx/gomlx/backends"
	"github.com/gomlx/gomlx/backends/shapeinference"
	"github.com/gomlx/gomlx/pkg/core/dtypes"
	"github.com/gomlx/gomlx/pkg/core/shapes"
)

// shapeOf returns the shape of op, wrapping the error with the name of the op being built.
func (b *Builder) shapeOf(opName string, op backends.Op) (shapes.Shape, error) {
	s, err := b.OpShape(op)
	if err != nil {
		return shapes.Invalid(), fmt.Errorf("%s: %w", opName, err)
	}
	return s, nil
}

// scalar returns a scalar constant of the given dtype.
func (b *Builder) scalar(v float64, dtype dtypes.DType) (backends.Op, error) {
	c, err := b.Constant([]float64{v})
	if err != nil || dtype == dtypes.Float64 {
		return c, err
	}
	return b.ConvertDType(c, dtype)
}

// fullSlice returns starts, limits and strides selecting the whole of dims.
func fullSlice(dims []int) (starts, limits, strides []int) {
	starts = make([]int, len(dims))
	limits = slices.Clone(dims)
	strides = make([]int, len(dims))
	for i := range strides {
		strides[i] = 1
	}
	return
}

// Reverse returns x with the values along the given axes reversed.
// Composed from one Slice per element along each reversed axis and a Concatenate: fine for
// convolution kernels (its only user in GoMLX), linear in the axis length.
func (b *Builder) Reverse(x backends.Op, axes ...int) (backends.Op, error) {
	s, err := b.shapeOf("Reverse", x)
	if err != nil {
		return nil, err
	}
	seen := make(map[int]bool)
	for _, axis := range axes {
		if axis < 0 || axis >= s.Rank() {
			return nil, fmt.Errorf("Reverse: axis %d out of range for operand shape %s", axis, s)
		}
		if seen[axis] {
			return nil, fmt.Errorf("Reverse: axis %d given twice (axes %v)", axis, axes)
		}
		seen[axis] = true
	}
	out := x
	for _, axis := range axes {
		dim := s.Dimensions[axis]
		if dim <= 1 {
			continue
		}
		parts := make([]backends.Op, dim)
		for i := range dim {
			starts, limits, strides := fullSlice(s.Dimensions)
			starts[axis], limits[axis] = dim-1-i, dim-i
			if parts[i], err = b.Slice(out, starts, limits, strides); err != nil {
				return nil, fmt.Errorf("Reverse: %w", err)
			}
		}
		if out, err = b.Concatenate(axis, parts...); err != nil {
			return nil, fmt.Errorf("Reverse: %w", err)
		}
	}
	return out, nil
}

// Pad pads x with fillValue (a scalar of x's dtype): axesConfig[i] gives the padding before
// (Start), after (End) and between elements (Interior) of axis i; missing axes are not padded.
// Like XLA, negative Start/End crop, and they apply after the interior padding.
func (b *Builder) Pad(x, fillValue backends.Op, axesConfig ...backends.PadAxis) (backends.Op, error) {
	s, err := b.shapeOf("Pad", x)
	if err != nil {
		return nil, err
	}
	fs, err := b.shapeOf("Pad", fillValue)
	if err != nil {
		return nil, err
	}
	if !fs.IsScalar() || fs.DType != s.DType {
		return nil, fmt.Errorf("Pad: fill value must be a scalar of the operand's dtype %s, got %s", s.DType, fs)
	}
	if len(axesConfig) > s.Rank() {
		return nil, fmt.Errorf("Pad: %d axes configured for operand shape %s of rank %d", len(axesConfig), s, s.Rank())
	}
	dims := slices.Clone(s.Dimensions)
	out := x
	wrap := func(e error) error { return fmt.Errorf("Pad: %w", e) }
	// fill returns a block of fillValue shaped like dims but with n at axis.
	fill := func(axis, n int, dims []int) (backends.Op, error) {
		fd := slices.Clone(dims)
		fd[axis] = n
		return b.BroadcastInDim(fillValue, shapes.Make(s.DType, fd...), nil)
	}
	for axis, cfg := range axesConfig {
		if cfg.Interior < 0 {
			return nil, fmt.Errorf("Pad: negative interior padding %d for axis %d", cfg.Interior, axis)
		}
		// Interior padding: [.., d, ..] -> [.., d, 1+p, ..] -> [.., d*(1+p), ..] -> drop the last p.
		if p := cfg.Interior; p > 0 && dims[axis] > 1 {
			d := dims[axis]
			expanded := slices.Insert(slices.Clone(dims), axis+1, 1)
			if out, err = b.Reshape(out, expanded...); err != nil {
				return nil, wrap(err)
			}
			block, err := fill(axis+1, p, expanded)
			if err != nil {
				return nil, wrap(err)
			}
			if out, err = b.Concatenate(axis+1, out, block); err != nil {
				return nil, wrap(err)
			}
			merged := slices.Clone(dims)
			merged[axis] = d * (1 + p)
			if out, err = b.Reshape(out, merged...); err != nil {
				return nil, wrap(err)
			}
			starts, limits, strides := fullSlice(merged)
			limits[axis] = (d-1)*(1+p) + 1
			if out, err = b.Slice(out, starts, limits, strides); err != nil {
				return nil, wrap(err)
			}
			dims[axis] = limits[axis]
		}
		// Cropping (negative edges).
		if cfg.Start < 0 || cfg.End < 0 {
			lo, hi := max(-cfg.Start, 0), max(-cfg.End, 0)
			if lo+hi > dims[axis] {
				return nil, fmt.Errorf("Pad: negative padding (start %d, end %d) crops more than axis %d's %d elements", cfg.Start, cfg.End, axis, dims[axis])
			}
			starts, limits, strides := fullSlice(dims)
			starts[axis], limits[axis] = lo, dims[axis]-hi
			if out, err = b.Slice(out, starts, limits, strides); err != nil {
				return nil, wrap(err)
			}
			dims[axis] -= lo + hi
		}
		// Edges.
		parts := make([]backends.Op, 0, 3)
		if cfg.Start > 0 {
			block, err := fill(axis, cfg.Start, dims)
			if err != nil {
				return nil, wrap(err)
			}
			parts = append(parts, block)
		}
		if dims[axis] > 0 {
			parts = append(parts, out)
		}
		if cfg.End > 0 {
			block, err := fill(axis, cfg.End, dims)
			if err != nil {
				return nil, wrap(err)
			}
			parts = append(parts, block)
		}
		if len(parts) > 1 || (len(parts) == 1 && dims[axis] == 0) {
			if out, err = b.Concatenate(axis, parts...); err != nil {
				return nil, wrap(err)
			}
		}
		dims[axis] += max(cfg.Start, 0) + max(cfg.End, 0)
	}
	return out, nil
}

// ConvGeneral fills in default strides (1), paddings (0) and dilations (1) where they are
// nil or empty, then computes the convolution with im2col + DotGeneral (see convIm2col), or
// with simplego's direct ConvGeneral for the cases im2col doesn't cover or with "go:direct_conv".
func (b *Builder) ConvGeneral(input, kernel backends.Op, axes backends.ConvolveAxesConfig,
	strides []int, paddings [][2]int, inputDilations, kernelDilations []int,
	channelGroupCount, batchGroupCount int) (backends.Op, error) {
	s, err := b.shapeOf("ConvGeneral", input)
	if err != nil {
		return nil, err
	}
	n := s.Rank() - 2
	if n < 1 {
		return nil, fmt.Errorf("ConvGeneral: input must have rank >= 3 (batch, channels, spatial...), got shape %s", s)
	}
	ones := func(name string, v []int) ([]int, error) {
		if len(v) == 0 {
			v = make([]int, n)
			for i := range v {
				v[i] = 1
			}
			return v, nil
		}
		if len(v) != n {
			return nil, fmt.Errorf("ConvGeneral: %s %v must have one value per spatial axis (%d) of input shape %s", name, v, n, s)
		}
		for i, x := range v {
			if x < 1 {
				return nil, fmt.Errorf("ConvGeneral: %s[%d]=%d must be >= 1", name, i, x)
			}
		}
		return slices.Clone(v), nil
	}
	if strides, err = ones("strides", strides); err != nil {
		return nil, err
	}
	if inputDilations, err = ones("input dilations", inputDilations); err != nil {
		return nil, err
	}
	if kernelDilations, err = ones("kernel dilations", kernelDilations); err != nil {
		return nil, err
	}
	if len(paddings) == 0 {
		paddings = make([][2]int, n)
	} else if len(paddings) != n {
		return nil, fmt.Errorf("ConvGeneral: paddings %v must have one pair per spatial axis (%d) of input shape %s", paddings, n, s)
	}
	if channelGroupCount < 1 || batchGroupCount < 1 {
		return nil, fmt.Errorf("ConvGeneral: channel group count (%d) and batch group count (%d) must be >= 1", channelGroupCount, batchGroupCount)
	}
	if b.fast {
		// Depthwise convolutions and their kernel gradients: one simplego node, run by artnet's
		// kernels (depthwise.go).
		is, ks := s, shapes.Invalid()
		if ks, err = b.shapeOf("ConvGeneral", kernel); err != nil {
			return nil, err
		}
		if outS, err := shapeinference.ConvGeneralOp(is, ks, axes, strides, paddings, inputDilations, kernelDilations,
			channelGroupCount, batchGroupCount); err == nil {
			a := convArgs{axes, strides, paddings, inputDilations, kernelDilations, channelGroupCount, batchGroupCount}
			if kind, _ := classifyConv(is, ks, outS, a); kind != convOther {
				return b.Builder.ConvGeneral(input, kernel, axes, strides, paddings, inputDilations, kernelDilations,
					channelGroupCount, batchGroupCount)
			}
		}
	}
	if !b.directConv {
		out, err := b.convIm2col(input, kernel, axes, strides, paddings, inputDilations, kernelDilations,
			channelGroupCount, batchGroupCount)
		if err != nil || out != nil {
			return out, err
		}
	}
	return b.Builder.ConvGeneral(input, kernel, axes, strides, paddings, inputDilations, kernelDilations,
		channelGroupCount, batchGroupCount)
}
