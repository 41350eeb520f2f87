package graph_test

import (
	"fmt"
	"testing"

	. "github.com/gomlx/gomlx/pkg/core/graph"
	"github.com/gomlx/gomlx/pkg/core/tensors/images"
)

// convCase is a 2-D NCHW convolution with an OIHW kernel, symmetric padding and channel groups.
type convCase struct {
	n, c, h, w     int
	o, k           int
	stride, pad    int
	groups         int
	explicitStride bool // call Strides() even when stride is 1
}

func (cc convCase) String() string {
	return fmt.Sprintf("x%dx%dx%dx%d_k%dx%dx%dx%d_s%d_p%d_g%d", cc.n, cc.c, cc.h, cc.w, cc.o, cc.c/cc.groups, cc.k, cc.k, cc.stride, cc.pad, cc.groups)
}

func (cc convCase) inputs() []arr {
	return []arr{randArr(3, cc.n, cc.c, cc.h, cc.w), randArr(4, cc.o, cc.c/cc.groups, cc.k, cc.k)}
}

// conv builds the convolution the way models do: graph.Convolve, channels first.
func (cc convCase) conv(xs []*Node) *Node {
	c := Convolve(xs[0], xs[1]).ChannelsAxis(images.ChannelsFirst).
		PaddingPerDim([][2]int{{cc.pad, cc.pad}, {cc.pad, cc.pad}})
	if cc.stride != 1 || cc.explicitStride {
		c = c.Strides(cc.stride)
	}
	if cc.groups > 1 {
		c = c.ChannelGroupCount(cc.groups)
	}
	return c.Done()
}

// reference is a naive NCHW/OIHW grouped convolution.
func (cc convCase) reference(x, k arr) arr {
	oh := (cc.h+2*cc.pad-cc.k)/cc.stride + 1
	ow := (cc.w+2*cc.pad-cc.k)/cc.stride + 1
	cg, og := cc.c/cc.groups, cc.o/cc.groups
	out := make([]float64, cc.n*cc.o*oh*ow)
	for n := range cc.n {
		for o := range cc.o {
			g := o / og
			for y := range oh {
				for xx := range ow {
					var sum float64
					for ci := range cg {
						c := g*cg + ci
						for ky := range cc.k {
							iy := y*cc.stride - cc.pad + ky
							if iy < 0 || iy >= cc.h {
								continue
							}
							for kx := range cc.k {
								ix := xx*cc.stride - cc.pad + kx
								if ix < 0 || ix >= cc.w {
									continue
								}
								sum += x.v[((n*cc.c+c)*cc.h+iy)*cc.w+ix] * k.v[((o*cg+ci)*cc.k+ky)*cc.k+kx]
							}
						}
					}
					out[((n*cc.o+o)*oh+y)*ow+xx] = sum
				}
			}
		}
	}
	return arr{out, []int{cc.n, cc.o, oh, ow}}
}

var convCases = []convCase{
	{n: 2, c: 3, h: 7, w: 6, o: 4, k: 3, stride: 1, pad: 1, groups: 1},
	{n: 2, c: 3, h: 7, w: 6, o: 4, k: 3, stride: 2, pad: 1, groups: 1},
	{n: 2, c: 3, h: 5, w: 5, o: 4, k: 1, stride: 1, pad: 0, groups: 1, explicitStride: true},
	{n: 2, c: 3, h: 5, w: 6, o: 4, k: 1, stride: 2, pad: 0, groups: 1},
	{n: 1, c: 2, h: 7, w: 7, o: 3, k: 5, stride: 1, pad: 2, groups: 1},
	{n: 1, c: 2, h: 8, w: 7, o: 3, k: 5, stride: 2, pad: 2, groups: 1},
	// Depthwise (ChannelGroupCount = C, kernel [C,1,k,k]).
	{n: 2, c: 4, h: 6, w: 6, o: 4, k: 3, stride: 1, pad: 1, groups: 4},
	{n: 2, c: 4, h: 7, w: 6, o: 4, k: 3, stride: 2, pad: 1, groups: 4},
	{n: 1, c: 3, h: 7, w: 7, o: 3, k: 5, stride: 2, pad: 2, groups: 3},
	// Grouped.
	{n: 2, c: 4, h: 6, w: 5, o: 6, k: 3, stride: 1, pad: 1, groups: 2},
	{n: 2, c: 4, h: 7, w: 7, o: 6, k: 3, stride: 2, pad: 1, groups: 2},
}

func TestConvForward(t *testing.T) {
	for _, cc := range convCases {
		t.Run(cc.String(), func(t *testing.T) {
			in := cc.inputs()
			got := forward(t, in, cc.conv)
			checkClose(t, got, cc.reference(in[0], in[1]), 1e-12)
		})
	}
}

func TestConvGradient(t *testing.T) {
	for _, cc := range convCases {
		t.Run(cc.String(), func(t *testing.T) {
			checkGrad(t, cc.inputs(), cc.conv)
		})
	}
}

// TestConvGeneralNilStrides calls ConvGeneral directly with nil strides, paddings and dilations
// (simplego alone rejects nil strides).
func TestConvGeneralNilStrides(t *testing.T) {
	cc := convCase{n: 1, c: 2, h: 5, w: 5, o: 3, k: 3, stride: 1, pad: 0, groups: 1}
	in := cc.inputs()
	got := forward(t, in, func(xs []*Node) *Node {
		axes := ConvolveAxesConfig{
			InputBatch: 0, InputChannels: 1, InputSpatial: []int{2, 3},
			KernelOutputChannels: 0, KernelInputChannels: 1, KernelSpatial: []int{2, 3},
			OutputBatch: 0, OutputChannels: 1, OutputSpatial: []int{2, 3},
		}
		return ConvGeneral(xs[0], xs[1], axes, nil, nil, nil, nil, 1, 1)
	})
	checkClose(t, got, cc.reference(in[0], in[1]), 1e-12)
}
