package engine_test

import (
	"fmt"
	"testing"

	"github.com/gomlx/gomlx/pkg/core/dtypes"
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
	dilation       int  // kernel dilation (0 means 1)
	channelsLast   bool // run the convolution in NHWC/HWIO layout (inputs and output stay NCHW)
}

func (cc convCase) dil() int { return max(cc.dilation, 1) }

func (cc convCase) String() string {
	s := fmt.Sprintf("x%dx%dx%dx%d_k%dx%dx%dx%d_s%d_p%d_g%d", cc.n, cc.c, cc.h, cc.w, cc.o, cc.c/cc.groups, cc.k, cc.k, cc.stride, cc.pad, cc.groups)
	if cc.dil() > 1 {
		s += fmt.Sprintf("_d%d", cc.dil())
	}
	if cc.channelsLast {
		s += "_nhwc"
	}
	return s
}

func (cc convCase) inputs() []arr {
	return []arr{randArr(3, cc.n, cc.c, cc.h, cc.w), randArr(4, cc.o, cc.c/cc.groups, cc.k, cc.k)}
}

// conv builds the convolution the way models do: graph.Convolve, channels first.
func (cc convCase) conv(xs []*Node) *Node {
	x, k := xs[0], xs[1]
	layout := images.ChannelsFirst
	if cc.channelsLast {
		layout = images.ChannelsLast
		x = TransposeAllAxes(x, 0, 2, 3, 1) // NCHW -> NHWC
		k = TransposeAllAxes(k, 2, 3, 1, 0) // OIHW -> HWIO
	}
	c := Convolve(x, k).ChannelsAxis(layout).
		PaddingPerDim([][2]int{{cc.pad, cc.pad}, {cc.pad, cc.pad}})
	if cc.dil() > 1 {
		c = c.Dilations(cc.dil())
	}
	if cc.stride != 1 || cc.explicitStride {
		c = c.Strides(cc.stride)
	}
	if cc.groups > 1 {
		c = c.ChannelGroupCount(cc.groups)
	}
	if cc.channelsLast {
		return TransposeAllAxes(c.Done(), 0, 3, 1, 2)
	}
	return c.Done()
}

// reference is a naive NCHW/OIHW grouped convolution.
func (cc convCase) reference(x, k arr) arr {
	d := cc.dil()
	ek := (cc.k-1)*d + 1
	oh := (cc.h+2*cc.pad-ek)/cc.stride + 1
	ow := (cc.w+2*cc.pad-ek)/cc.stride + 1
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
							iy := y*cc.stride - cc.pad + ky*d
							if iy < 0 || iy >= cc.h {
								continue
							}
							for kx := range cc.k {
								ix := xx*cc.stride - cc.pad + kx*d
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
	// Depth multiplier 2 (groups = C, O = 2C).
	{n: 1, c: 3, h: 5, w: 6, o: 6, k: 3, stride: 1, pad: 1, groups: 3},
	// Atrous (kernel dilation 2), asymmetric-size output.
	{n: 2, c: 2, h: 8, w: 7, o: 3, k: 3, stride: 1, pad: 2, groups: 1, dilation: 2},
	// Channels-last layout.
	{n: 2, c: 3, h: 6, w: 7, o: 4, k: 3, stride: 2, pad: 1, groups: 1, channelsLast: true},
	{n: 2, c: 4, h: 6, w: 6, o: 4, k: 3, stride: 1, pad: 1, groups: 4, channelsLast: true},
}

func TestConvForward(t *testing.T) {
	for bname, b := range convBackends(t) {
		for _, cc := range convCases {
			t.Run(bname+"/"+cc.String(), func(t *testing.T) {
				in := cc.inputs()
				got := forwardOn(t, b, in, cc.conv)
				checkClose(t, got, cc.reference(in[0], in[1]), 1e-12)
			})
		}
	}
}

func TestConvGradient(t *testing.T) {
	for bname, b := range convBackends(t) {
		for _, cc := range convCases {
			t.Run(bname+"/"+cc.String(), func(t *testing.T) {
				checkGradWith(t, plainExecOn(t, b), cc.inputs(), cc.conv)
			})
		}
	}
}

// TestConvGeneralNilStrides calls ConvGeneral directly with nil strides, paddings and dilations
// (simplego alone rejects nil strides).
func TestConvGeneralNilStrides(t *testing.T) {
	cc := convCase{n: 1, c: 2, h: 5, w: 5, o: 3, k: 3, stride: 1, pad: 0, groups: 1}
	in := cc.inputs()
	for bname, b := range convBackends(t) {
		got := forwardOn(t, b, in, func(xs []*Node) *Node {
			axes := ConvolveAxesConfig{
				InputBatch: 0, InputChannels: 1, InputSpatial: []int{2, 3},
				KernelOutputChannels: 0, KernelInputChannels: 1, KernelSpatial: []int{2, 3},
				OutputBatch: 0, OutputChannels: 1, OutputSpatial: []int{2, 3},
			}
			return ConvGeneral(xs[0], xs[1], axes, nil, nil, nil, nil, 1, 1)
		})
		t.Log(bname)
		checkClose(t, got, cc.reference(in[0], in[1]), 1e-12)
	}
}

// TestConvForwardFloat32 runs the convolutions in float32, the model's dtype.
func TestConvForwardFloat32(t *testing.T) {
	for _, cc := range convCases {
		t.Run(cc.String(), func(t *testing.T) {
			in := cc.inputs()
			got := forward(t, in, func(xs []*Node) *Node {
				x32, k32 := ConvertDType(xs[0], dtypes.Float32), ConvertDType(xs[1], dtypes.Float32)
				return ConvertDType(cc.conv([]*Node{x32, k32}), dtypes.Float64)
			})
			checkClose(t, got, cc.reference(in[0], in[1]), 1e-5)
		})
	}
}
