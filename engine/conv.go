package engine

import (
	"fmt"
	"slices"

	"github.com/gomlx/gomlx/backends"
	"github.com/gomlx/gomlx/backends/shapeinference"
	"github.com/gomlx/gomlx/pkg/core/dtypes"
)

// maxIm2colSlices bounds the number of Slice ops one im2col convolution may emit
// (min(kernel taps, output positions)); above it simplego's direct convolution is used.
const maxIm2colSlices = 256

// convIm2col computes ConvGeneral (arguments already defaulted and validated) as an im2col
// gather of strided Slices followed by one DotGeneral, or, for depthwise convolutions, as a
// sum over kernel taps of Slice·weight. simplego's DotGeneral is blocked and parallel, its
// ConvGeneral is a scalar loop; this is much faster for the convolutions and convolution
// gradients of a CNN. It returns (nil, nil) when the case is not covered (batch groups,
// dtypes other than float32/float64/bfloat16, too many slices), and the caller falls back to simplego.
func (b *Builder) convIm2col(input, kernel backends.Op, axes backends.ConvolveAxesConfig,
	strides []int, paddings [][2]int, inputDilations, kernelDilations []int,
	groups, batchGroups int) (backends.Op, error) {
	const name = "ConvGeneral"
	is, err := b.shapeOf(name, input)
	if err != nil {
		return nil, err
	}
	ks, err := b.shapeOf(name, kernel)
	if err != nil {
		return nil, err
	}
	outShape, err := shapeinference.ConvGeneralOp(is, ks, axes, strides, paddings, inputDilations, kernelDilations, groups, batchGroups)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", name, err)
	}
	if batchGroups != 1 || is.DType != ks.DType ||
		(is.DType != dtypes.Float32 && is.DType != dtypes.Float64 && is.DType != dtypes.BFloat16) {
		return nil, nil
	}
	n := is.Rank() - 2
	wrap := func(err error) error { return fmt.Errorf("%s (im2col): %w", name, err) }

	// Canonical layouts: input [B, C, S...], kernel [O, I, K...].
	x, err := b.transposeTo(input, append([]int{axes.InputBatch, axes.InputChannels}, axes.InputSpatial...))
	if err != nil {
		return nil, wrap(err)
	}
	k, err := b.transposeTo(kernel, append([]int{axes.KernelOutputChannels, axes.KernelInputChannels}, axes.KernelSpatial...))
	if err != nil {
		return nil, wrap(err)
	}
	batch, chans := is.Dimensions[axes.InputBatch], is.Dimensions[axes.InputChannels]
	outChans, inPerGroup := ks.Dimensions[axes.KernelOutputChannels], ks.Dimensions[axes.KernelInputChannels]
	kdims := make([]int, n)  // kernel spatial dims
	pdims := make([]int, n)  // output spatial dims
	padded := make([]int, n) // padded (and dilated) input spatial dims
	taps, positions := 1, 1
	for i := range n {
		kdims[i] = ks.Dimensions[axes.KernelSpatial[i]]
		pdims[i] = outShape.Dimensions[axes.OutputSpatial[i]]
		d := is.Dimensions[axes.InputSpatial[i]]
		padded[i] = paddings[i][0] + paddings[i][1] + max((d-1)*inputDilations[i]+1, 0)
		taps *= kdims[i]
		positions *= pdims[i]
	}
	depthwise := groups == chans && inPerGroup == 1 && outChans == chans && taps <= positions
	if min(taps, positions) > maxIm2colSlices {
		return nil, nil
	}

	// Padding and input dilation in one Pad.
	needPad := false
	padCfg := make([]backends.PadAxis, n+2)
	for i := range n {
		padCfg[i+2] = backends.PadAxis{Start: paddings[i][0], End: paddings[i][1], Interior: inputDilations[i] - 1}
		needPad = needPad || padCfg[i+2] != backends.PadAxis{}
	}
	if needPad {
		zero, err := b.scalar(0, is.DType)
		if err != nil {
			return nil, wrap(err)
		}
		if x, err = b.Pad(x, zero, padCfg...); err != nil {
			return nil, wrap(err)
		}
	}
	xdims := append([]int{batch, chans}, padded...)

	// tapSlice returns x[:, :, t*kd + p*s] for all output positions p: [B, C, P...].
	tapSlice := func(t []int) (backends.Op, error) {
		starts, limits, steps := fullSlice(xdims)
		for i := range n {
			starts[i+2] = t[i] * kernelDilations[i]
			limits[i+2] = starts[i+2] + (pdims[i]-1)*strides[i] + 1
			steps[i+2] = strides[i]
		}
		if slices.Equal(starts, make([]int, n+2)) && slices.Equal(limits, xdims) {
			return x, nil
		}
		return b.Slice(x, starts, limits, steps)
	}

	var out backends.Op // [B, O, P...]
	if depthwise {
		// Σ_t x[:, :, t·kd + p·s] · k[:, 0, t], elementwise.
		for t := range multiIndex(kdims) {
			xt, err := tapSlice(t)
			if err != nil {
				return nil, wrap(err)
			}
			kStarts, kLimits, kSteps := fullSlice(append([]int{outChans, 1}, kdims...))
			for i := range n {
				kStarts[i+2], kLimits[i+2] = t[i], t[i]+1
			}
			kt, err := b.Slice(k, kStarts, kLimits, kSteps)
			if err != nil {
				return nil, wrap(err)
			}
			bdims := make([]int, n+2)
			for i := range bdims {
				bdims[i] = 1
			}
			bdims[1] = outChans
			if kt, err = b.Reshape(kt, bdims...); err != nil {
				return nil, wrap(err)
			}
			term, err := b.Mul(xt, kt)
			if err != nil {
				return nil, wrap(err)
			}
			if out == nil {
				out = term
			} else if out, err = b.Add(out, term); err != nil {
				return nil, wrap(err)
			}
		}
	} else {
		// im2col: cols[B, C, T, P] = x[:, :, t·kd + p·s], built along the shorter of T and P.
		var parts []backends.Op
		var cols backends.Op
		if taps <= positions {
			for t := range multiIndex(kdims) {
				xt, err := tapSlice(t)
				if err != nil {
					return nil, wrap(err)
				}
				if xt, err = b.Reshape(xt, batch, chans, 1, positions); err != nil {
					return nil, wrap(err)
				}
				parts = append(parts, xt)
			}
			cols, err = b.concat(2, parts)
		} else {
			for p := range multiIndex(pdims) {
				starts, limits, steps := fullSlice(xdims)
				for i := range n {
					starts[i+2] = p[i] * strides[i]
					limits[i+2] = starts[i+2] + (kdims[i]-1)*kernelDilations[i] + 1
					steps[i+2] = kernelDilations[i]
				}
				xp, err := b.Slice(x, starts, limits, steps)
				if err != nil {
					return nil, wrap(err)
				}
				if xp, err = b.Reshape(xp, batch, chans, taps, 1); err != nil {
					return nil, wrap(err)
				}
				parts = append(parts, xp)
			}
			cols, err = b.concat(3, parts)
		}
		if err != nil {
			return nil, wrap(err)
		}
		outPerGroup := outChans / groups
		if groups == 1 {
			// [B, C, T, P] · [O, C, T] -> [B, P, O] -> [B, O, P]
			kt, err := b.Reshape(k, outChans, chans, taps)
			if err != nil {
				return nil, wrap(err)
			}
			if out, err = b.DotGeneral(cols, []int{1, 2}, nil, kt, []int{1, 2}, nil); err != nil {
				return nil, wrap(err)
			}
			if out, err = b.Transpose(out, 0, 2, 1); err != nil {
				return nil, wrap(err)
			}
		} else {
			// [B, G, C/G, T, P] · [G, O/G, C/G, T] -> [G, B, P, O/G] -> [B, G, O/G, P]
			if cols, err = b.Reshape(cols, batch, groups, inPerGroup, taps, positions); err != nil {
				return nil, wrap(err)
			}
			kt, err := b.Reshape(k, groups, outPerGroup, inPerGroup, taps)
			if err != nil {
				return nil, wrap(err)
			}
			if out, err = b.DotGeneral(cols, []int{2, 3}, []int{1}, kt, []int{2, 3}, []int{0}); err != nil {
				return nil, wrap(err)
			}
			if out, err = b.Transpose(out, 1, 0, 3, 2); err != nil {
				return nil, wrap(err)
			}
		}
		if out, err = b.Reshape(out, append([]int{batch, outChans}, pdims...)...); err != nil {
			return nil, wrap(err)
		}
	}

	// Back to the requested output layout.
	perm := make([]int, n+2)
	perm[axes.OutputBatch], perm[axes.OutputChannels] = 0, 1
	for i, a := range axes.OutputSpatial {
		perm[a] = i + 2
	}
	if out, err = b.transposeTo(out, perm); err != nil {
		return nil, wrap(err)
	}
	if s, err := b.shapeOf(name, out); err != nil || !s.Equal(outShape) {
		return nil, fmt.Errorf("%s (im2col): internal error: result shape %s, expected %s (%v)", name, s, outShape, err)
	}
	return out, nil
}

// transposeTo transposes x by perm unless perm is the identity.
func (b *Builder) transposeTo(x backends.Op, perm []int) (backends.Op, error) {
	for i, p := range perm {
		if p != i {
			return b.Transpose(x, perm...)
		}
	}
	return x, nil
}

// concat concatenates parts along axis (a single part is returned as is).
func (b *Builder) concat(axis int, parts []backends.Op) (backends.Op, error) {
	if len(parts) == 1 {
		return parts[0], nil
	}
	return b.Concatenate(axis, parts...)
}

// multiIndex iterates over all multi-indices of dims in row-major order (the yielded slice is
// reused between iterations).
func multiIndex(dims []int) func(yield func([]int) bool) {
	return func(yield func([]int) bool) {
		for _, d := range dims {
			if d <= 0 {
				return
			}
		}
		idx := make([]int, len(dims))
		for {
			if !yield(idx) {
				return
			}
			i := len(dims) - 1
			for ; i >= 0; i-- {
				idx[i]++
				if idx[i] < dims[i] {
					break
				}
				idx[i] = 0
			}
			if i < 0 {
				return
			}
		}
	}
}
