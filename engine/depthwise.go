package engine

import (
	"fmt"
	"reflect"
	"slices"
	"sync"
	"unsafe"

	"github.com/gomlx/gomlx/backends"
	"github.com/gomlx/gomlx/backends/simplego"
	"github.com/gomlx/gomlx/pkg/core/dtypes"
	. "github.com/gomlx/gomlx/pkg/core/graph" //nolint:revive // GoMLX's graph-building API reads best unqualified
	"github.com/gomlx/gomlx/pkg/core/shapes"

	"github.com/artnet/artnet/engine/internal/kernels"
	"github.com/artnet/artnet/internal/layout"
)

// Depthwise convolutions on the fast "go" backend run as one ConvGeneral node each way:
//
//   - forward: ConvGeneral with channel groups = C and a [C,1,k,k] kernel (NCHW/OIHW), computed
//     by kernels.DepthwiseConv2D (direct loop over planes and taps, both cores);
//   - input gradient: the same kind of node (reversed kernel, input dilation = stride), the
//     same kernel;
//   - kernel gradient: a batch-grouped ConvGeneral (XLA's form of a depthwise filter gradient:
//     batch and channel axes swapped, batch groups = C), computed by kernels.DepthwiseFilterGrad.
//
// GoMLX v0.26's own gradient of a grouped convolution splits it into C single-channel
// convolutions (C Slices, 2C convolutions and two Concatenates per layer), which is why the
// model used to build depthwise convolutions as k² shifted slices on the pure-Go backend
// (models.DepthwiseShifted); with the VJP below (installed for graphs on this backend only) the
// grouped convolution is one node per direction. Other backends keep GoMLX's VJP.

// convKind classifies a ConvGeneral for artnet's kernels.
type convKind int

const (
	convOther      convKind = iota
	convDepthwise           // NCHW input, [C,1,KH,KW] kernel, channel groups C
	convFilterGrad          // the kernel gradient of a convDepthwise, as a batch-grouped convolution
)

var (
	canonicalConvAxes = backends.ConvolveAxesConfig{
		InputBatch: 0, InputChannels: 1, InputSpatial: []int{2, 3},
		KernelOutputChannels: 0, KernelInputChannels: 1, KernelSpatial: []int{2, 3},
		OutputBatch: 0, OutputChannels: 1, OutputSpatial: []int{2, 3},
	}
	filterGradAxes = backends.ConvolveAxesConfig{
		InputBatch: 1, InputChannels: 0, InputSpatial: []int{2, 3},
		KernelOutputChannels: 1, KernelInputChannels: 0, KernelSpatial: []int{2, 3},
		OutputBatch: 1, OutputChannels: 0, OutputSpatial: []int{2, 3},
	}
)

func axesEqual(a, b backends.ConvolveAxesConfig) bool {
	return a.InputBatch == b.InputBatch && a.InputChannels == b.InputChannels && slices.Equal(a.InputSpatial, b.InputSpatial) &&
		a.KernelOutputChannels == b.KernelOutputChannels && a.KernelInputChannels == b.KernelInputChannels &&
		slices.Equal(a.KernelSpatial, b.KernelSpatial) &&
		a.OutputBatch == b.OutputBatch && a.OutputChannels == b.OutputChannels && slices.Equal(a.OutputSpatial, b.OutputSpatial)
}

// convArgs are a ConvGeneral's arguments (defaults filled in).
type convArgs struct {
	axes                            backends.ConvolveAxesConfig
	strides                         []int
	paddings                        [][2]int
	inputDilations, kernelDilations []int
	groups, batchGroups             int
}

// classifyConv says whether a 2-D float32/float64 ConvGeneral is one of artnet's kernels, and
// returns the kernel's geometry (out: the output shape).
func classifyConv(in, k, out shapes.Shape, a convArgs) (convKind, kernels.Conv2DParams) {
	var p kernels.Conv2DParams
	if in.Rank() != 4 || k.Rank() != 4 || out.Rank() != 4 || in.DType != k.DType ||
		(in.DType != dtypes.Float32 && in.DType != dtypes.Float64) ||
		len(a.strides) != 2 || len(a.paddings) != 2 || len(a.inputDilations) != 2 || len(a.kernelDilations) != 2 {
		return convOther, p
	}
	d, kd, od := in.Dimensions, k.Dimensions, out.Dimensions
	switch {
	case axesEqual(a.axes, canonicalConvAxes) && a.batchGroups == 1 && a.groups == d[1] && kd[0] == d[1] && kd[1] == 1:
		return convDepthwise, kernels.Conv2DParams{
			B: d[0], C: d[1], H: d[2], W: d[3], KH: kd[2], KW: kd[3], OH: od[2], OW: od[3],
			SY: a.strides[0], SX: a.strides[1], PY: a.paddings[0][0], PX: a.paddings[1][0],
			DY: a.kernelDilations[0], DX: a.kernelDilations[1], IDY: a.inputDilations[0], IDX: a.inputDilations[1],
		}
	case axesEqual(a.axes, filterGradAxes) && a.groups == 1 && a.batchGroups == d[1] && kd[1] == d[1] && kd[0] == d[0] &&
		od[0] == d[1] && od[1] == 1 && a.inputDilations[0] == 1 && a.inputDilations[1] == 1:
		// input x [B, C, H, W] read with batch and channels swapped, "kernel" g [B, C, OH, OW] (the
		// forward output gradient), output dw [C, 1, KH, KW]: forward strides are this
		// convolution's kernel dilations and the forward kernel dilations its strides.
		return convFilterGrad, kernels.Conv2DParams{
			B: d[0], C: d[1], H: d[2], W: d[3], KH: od[2], KW: od[3], OH: kd[2], OW: kd[3],
			SY: a.kernelDilations[0], SX: a.kernelDilations[1], PY: a.paddings[0][0], PX: a.paddings[1][0],
			DY: a.strides[0], DX: a.strides[1], IDY: 1, IDX: 1,
		}
	}
	return convOther, p
}

// sgConvData mirrors the first fields of simplego's convNode (v0.26.0), a ConvGeneral node's data.
type sgConvData struct {
	axes              backends.ConvolveAxesConfig
	strides           []int
	paddings          [][2]int
	inputDilations    []int
	kernelDilations   []int
	channelGroupCount int
	batchGroupCount   int
}

var sgConvDataFields = []string{
	"axes backends.ConvolveAxesConfig", "strides []int", "paddings [][2]int", "inputDilations []int",
	"kernelDilations []int", "channelGroupCount int", "batchGroupCount int",
}

// convDataType caches the checked type of simplego's ConvGeneral node data.
var convDataType struct {
	sync.Mutex
	ok  reflect.Type
	err error
}

// convDataOf returns node's ConvGeneral arguments, or nil if its data isn't laid out as expected.
func convDataOf(node *sgNode) *sgConvData {
	t := reflect.TypeOf(node.data)
	convDataType.Lock()
	defer convDataType.Unlock()
	if t != convDataType.ok {
		if convDataType.ok != nil || convDataType.err != nil || t == nil || t.Kind() != reflect.Pointer {
			return nil
		}
		if convDataType.err = layout.CheckPrefix(t.Elem(), reflect.TypeFor[sgConvData](), sgConvDataFields); convDataType.err != nil {
			convDataType.err = fmt.Errorf("artnet depthwise kernels disabled: %w", convDataType.err)
			return nil
		}
		convDataType.ok = t
	}
	return (*sgConvData)(reflect.ValueOf(node.data).UnsafePointer())
}

// convGeneralKernel runs depthwise convolutions and their kernel gradients (see convKind).
func convGeneralKernel(b *simplego.Backend, n *simplego.Node, inputs []*simplego.Buffer, owned []bool) *simplego.Buffer {
	node := nodeOf(n)
	cd := convDataOf(node)
	if cd == nil {
		return nil
	}
	x, k := bufferOf(inputs[0]), bufferOf(inputs[1])
	kind, p := classifyConv(x.shape, k.shape, node.shape, convArgs{cd.axes, cd.strides, cd.paddings,
		cd.inputDilations, cd.kernelDilations, cd.channelGroupCount, cd.batchGroupCount})
	if kind == convOther {
		return nil
	}
	out := newOutput(b, node, inputs, owned)
	if out == nil {
		return nil
	}
	switch node.shape.DType {
	case dtypes.Float32:
		runConvKernel(kind, bufferOf(out).flat.([]float32), x.flat.([]float32), k.flat.([]float32), p)
	case dtypes.Float64:
		runConvKernel(kind, bufferOf(out).flat.([]float64), x.flat.([]float64), k.flat.([]float64), p)
	}
	return out
}

func runConvKernel[T kernels.Float](kind convKind, out, x, k []T, p kernels.Conv2DParams) {
	if kind == convDepthwise {
		kernels.DepthwiseConv2D(out, x, k, p)
	} else {
		kernels.DepthwiseFilterGrad(out, x, k, p)
	}
}

// ConvolutionKernelError returns nil while artnet's depthwise convolution kernels are usable
// (or not tried yet), or why they were disabled.
func ConvolutionKernelError() error {
	convDataType.Lock()
	defer convDataType.Unlock()
	return convDataType.err
}

// FastDepthwise reports whether depthwise convolutions built as one grouped ConvGeneral run
// artnet's kernels on this backend (forward and both gradients); models then build them so.
func (b *Backend) FastDepthwise() bool { return !b.reference && fastKernelsErr == nil }

// convGeneralArgsOf reads a ConvGeneral graph node's arguments from GoMLX's unexported node
// inputs (nodeInputsConvGeneral in v0.26.0), by reflection; an error if that layout changed.
func convGeneralArgsOf(node *Node) (convArgs, error) {
	var a convArgs
	v := reflect.ValueOf(node).Elem().FieldByName("inputs")
	if !v.IsValid() || v.Kind() != reflect.Interface || v.IsNil() || v.Elem().Kind() != reflect.Pointer {
		return a, fmt.Errorf("graph.Node has no \"inputs\" pointer in an interface field")
	}
	in := v.Elem().Elem() // addressable: reached through a pointer
	field := func(name string, t reflect.Type) (any, error) {
		f := in.FieldByName(name)
		if !f.IsValid() || f.Type() != t {
			return nil, fmt.Errorf("%s has no %s field %q", in.Type(), t, name)
		}
		return reflect.NewAt(t, unsafe.Pointer(f.UnsafeAddr())).Elem().Interface(), nil
	}
	intsT, padsT, intT := reflect.TypeFor[[]int](), reflect.TypeFor[[][2]int](), reflect.TypeFor[int]()
	var err error
	var x any
	if x, err = field("axes", reflect.TypeFor[backends.ConvolveAxesConfig]()); err != nil {
		return a, err
	}
	a.axes = x.(backends.ConvolveAxesConfig)
	for _, f := range []struct {
		name string
		dst  *[]int
	}{{"strides", &a.strides}, {"inputDilations", &a.inputDilations}, {"kernelDilations", &a.kernelDilations}} {
		if x, err = field(f.name, intsT); err != nil {
			return a, err
		}
		*f.dst = slices.Clone(x.([]int))
	}
	if x, err = field("paddings", padsT); err != nil {
		return a, err
	}
	a.paddings = slices.Clone(x.([][2]int))
	if x, err = field("channelGroupCount", intT); err != nil {
		return a, err
	}
	a.groups = x.(int)
	if x, err = field("batchGroupCount", intT); err != nil {
		return a, err
	}
	a.batchGroups = x.(int)
	return a, nil
}

// withDefaults fills in nil/empty strides, paddings and dilations of an n-D convolution.
func (a convArgs) withDefaults(n int) convArgs {
	ones := func(v []int) []int {
		if len(v) == 0 {
			v = make([]int, n)
			for i := range v {
				v[i] = 1
			}
		}
		return v
	}
	a.strides, a.inputDilations, a.kernelDilations = ones(a.strides), ones(a.inputDilations), ones(a.kernelDilations)
	if len(a.paddings) == 0 {
		a.paddings = make([][2]int, n)
	}
	a.groups, a.batchGroups = max(a.groups, 1), max(a.batchGroups, 1)
	return a
}

// convVJPInstallErr is why the ConvGeneral VJP could not be installed (nil when it is).
var convVJPInstallErr error

func init() {
	orig, ok := VJPRegistration[NodeTypeConvGeneral]
	if !ok {
		convVJPInstallErr = fmt.Errorf("GoMLX has no registered ConvGeneral VJP")
		return
	}
	VJPRegistration[NodeTypeConvGeneral] = func(node *Node, vjpOutputs []*Node, outputShape shapes.Shape) []*Node {
		if b, ok := node.Graph().Backend().(*Backend); ok && b.FastDepthwise() && len(vjpOutputs) == 1 {
			if a, err := convGeneralArgsOf(node); err == nil {
				x, k := node.Inputs()[0], node.Inputs()[1]
				a = a.withDefaults(x.Rank() - 2)
				if kind, p := classifyConv(x.Shape(), k.Shape(), node.Shape(), a); kind == convDepthwise && p.IDY == 1 && p.IDX == 1 {
					return depthwiseVJP(x, k, vjpOutputs[0], a, p)
				}
			}
		}
		return orig(node, vjpOutputs, outputShape)
	}
}

// depthwiseVJP returns the gradients of a depthwise convolution (geometry p) of x by kernel k
// with respect to x and k, given its output gradient g — each as one ConvGeneral node.
func depthwiseVJP(x, k, g *Node, a convArgs, p kernels.Conv2DParams) []*Node {
	// Input gradient: the transposed convolution = convolution of g dilated by the strides with
	// the spatially reversed kernel, padded so the output regains the input's size.
	gxPad := make([][2]int, 2)
	hw, khw, ohw := []int{p.H, p.W}, []int{p.KH, p.KW}, []int{p.OH, p.OW}
	for i := range 2 {
		eff := (khw[i]-1)*a.kernelDilations[i] + 1
		extra := (hw[i] + a.paddings[i][0] + a.paddings[i][1] - eff) % a.strides[i]
		gxPad[i] = [2]int{eff - 1 - a.paddings[i][0], eff - 1 - a.paddings[i][1] + extra}
	}
	gx := ConvGeneral(g, Reverse(k, 2, 3), canonicalConvAxes, []int{1, 1}, gxPad,
		slices.Clone(a.strides), slices.Clone(a.kernelDilations), p.C, 1)
	// Kernel gradient: batch-grouped convolution of x (batch and channels swapped) with g.
	gkPad := make([][2]int, 2)
	for i := range 2 {
		end := (khw[i]-1)*a.kernelDilations[i] + (ohw[i]-1)*a.strides[i] + 1 - hw[i] - a.paddings[i][0]
		gkPad[i] = [2]int{a.paddings[i][0], end}
	}
	gk := ConvGeneral(x, g, filterGradAxes, slices.Clone(a.kernelDilations), gkPad, []int{1, 1},
		slices.Clone(a.strides), 1, p.C)
	return []*Node{gx, gk}
}
