package engine

import (
	"fmt"
	"reflect"
	"sync"
	"sync/atomic"
	"unsafe"

	"github.com/gomlx/gomlx/backends"
	"github.com/gomlx/gomlx/backends/simplego"
	"github.com/gomlx/gomlx/pkg/core/dtypes"
	"github.com/gomlx/gomlx/pkg/core/shapes"

	"github.com/artnet/artnet/engine/internal/kernels"
	"github.com/artnet/artnet/internal/layout"
)

// This file installs artnet's kernels (package engine/internal/kernels) into simplego's op
// executor table. simplego v0.26.0 keeps that table unexported (nodeExecutors, indexed by op
// type), as well as the fields of its Node and Buffer: the table and the buffer pool are reached
// with //go:linkname, the fields through mirror structs whose layout is checked against
// simplego's with reflect when the package initializes (checkSimplegoLayout). If the check
// fails (a GoMLX upgrade changed them), no kernel is installed, every backend runs simplego's
// own executors, and FastKernelsError says why (TestFastKernelsInstalled fails loudly).
//
// The table is global, so every executor installed here first asks whether the backend running
// the node is one created by NewBackend("go") without "reference" (fastBackends); for all
// others, and for the cases a kernel doesn't cover (other dtypes, ...), it calls the executor
// simplego had registered (saved in sgOriginal).

// simplegoExecutor is simplego's nodeExecutor type.
type simplegoExecutor func(backend *simplego.Backend, node *simplego.Node, inputs []*simplego.Buffer, inputsOwned []bool) (*simplego.Buffer, error)

// kernelExecutor is an artnet kernel: it returns nil (having changed nothing) for the cases it
// doesn't cover, which simplego's own executor then runs.
type kernelExecutor func(backend *simplego.Backend, node *simplego.Node, inputs []*simplego.Buffer, inputsOwned []bool) *simplego.Buffer

//go:linkname sgNodeExecutors github.com/gomlx/gomlx/backends/simplego.nodeExecutors
var sgNodeExecutors [backends.OpTypeLast]simplegoExecutor

//go:linkname sgGetBuffer github.com/gomlx/gomlx/backends/simplego.(*Backend).getBuffer
func sgGetBuffer(b *simplego.Backend, dtype dtypes.DType, length int) *simplego.Buffer

// sgNode mirrors simplego.Node (v0.26.0).
type sgNode struct {
	builderIdx         int
	inputs             []*simplego.Node
	opType             backends.OpType
	shape              shapes.Shape
	builder            unsafe.Pointer // *simplego.Builder
	multiOutputsShapes []shapes.Shape
	multiOutputsNodes  []*simplego.Node
	isNodeSelectOutput bool
	selectOutputIdx    int
	data               any
}

// sgBuffer mirrors simplego.Buffer (v0.26.0).
type sgBuffer struct {
	shape shapes.Shape
	valid bool
	flat  any
}

// sgNodeFields and sgBufferFields are simplego's field names and types the mirrors assume.
var (
	sgNodeFields = []string{
		"builderIdx int", "inputs []*simplego.Node", "opType backends.OpType", "shape shapes.Shape",
		"builder *simplego.Builder", "multiOutputsShapes []shapes.Shape", "multiOutputsNodes []*simplego.Node",
		"isNodeSelectOutput bool", "selectOutputIdx int", "data interface {}",
	}
	sgBufferFields = []string{"shape shapes.Shape", "valid bool", "flat interface {}"}
)

func checkSimplegoLayout() error {
	if err := layout.Check(reflect.TypeFor[simplego.Node](), reflect.TypeFor[sgNode](), sgNodeFields); err != nil {
		return err
	}
	return layout.Check(reflect.TypeFor[simplego.Buffer](), reflect.TypeFor[sgBuffer](), sgBufferFields)
}

var (
	// fastKernelsErr is why the kernels could not be installed (nil when they are).
	fastKernelsErr error
	// sgOriginal holds simplego's executors, replaced in sgNodeExecutors by artnet's.
	sgOriginal [backends.OpTypeLast]simplegoExecutor
	// fastBackends holds the *simplego.Backend values that run artnet's kernels.
	fastBackends sync.Map
	// kernelRuns counts the nodes artnet's kernels executed, per op type (tests check the
	// kernels ran).
	kernelRuns [backends.OpTypeLast]atomic.Int64
)

// FastKernelsError returns nil when artnet's kernels are installed in the pure-Go backend, or
// why they are not (then "go" runs GoMLX's own executors, as "go:reference" does).
func FastKernelsError() error { return fastKernelsErr }

// kernelTable holds artnet's kernel for each op type it covers (nil elsewhere).
var kernelTable [backends.OpTypeLast]kernelExecutor

// runKernel runs node with artnet's kernel for op when b is a fast backend and the kernel covers
// the case, else with simplego's executor.
func runKernel(op backends.OpType, b *simplego.Backend, node *simplego.Node, inputs []*simplego.Buffer, owned []bool) (*simplego.Buffer, error) {
	if _, ok := fastBackends.Load(b); ok {
		if out := kernelTable[op](b, node, inputs, owned); out != nil {
			kernelRuns[op].Add(1)
			return out, nil
		}
	}
	return sgOriginal[op](b, node, inputs, owned)
}

// The executors installed in simplego's table, one named function per op type (so that CPU
// profiles split by op type, as artnet bench --ops does, name them "<Op> (artnet)").
func execAdd(b *simplego.Backend, n *simplego.Node, in []*simplego.Buffer, o []bool) (*simplego.Buffer, error) {
	return runKernel(backends.OpTypeAdd, b, n, in, o)
}
func execSub(b *simplego.Backend, n *simplego.Node, in []*simplego.Buffer, o []bool) (*simplego.Buffer, error) {
	return runKernel(backends.OpTypeSub, b, n, in, o)
}
func execMul(b *simplego.Backend, n *simplego.Node, in []*simplego.Buffer, o []bool) (*simplego.Buffer, error) {
	return runKernel(backends.OpTypeMul, b, n, in, o)
}
func execDiv(b *simplego.Backend, n *simplego.Node, in []*simplego.Buffer, o []bool) (*simplego.Buffer, error) {
	return runKernel(backends.OpTypeDiv, b, n, in, o)
}
func execMax(b *simplego.Backend, n *simplego.Node, in []*simplego.Buffer, o []bool) (*simplego.Buffer, error) {
	return runKernel(backends.OpTypeMax, b, n, in, o)
}
func execMin(b *simplego.Backend, n *simplego.Node, in []*simplego.Buffer, o []bool) (*simplego.Buffer, error) {
	return runKernel(backends.OpTypeMin, b, n, in, o)
}
func execReduceSum(b *simplego.Backend, n *simplego.Node, in []*simplego.Buffer, o []bool) (*simplego.Buffer, error) {
	return runKernel(backends.OpTypeReduceSum, b, n, in, o)
}
func execReduceMax(b *simplego.Backend, n *simplego.Node, in []*simplego.Buffer, o []bool) (*simplego.Buffer, error) {
	return runKernel(backends.OpTypeReduceMax, b, n, in, o)
}
func execBroadcastInDim(b *simplego.Backend, n *simplego.Node, in []*simplego.Buffer, o []bool) (*simplego.Buffer, error) {
	return runKernel(backends.OpTypeBroadcastInDim, b, n, in, o)
}
func execDotGeneral(b *simplego.Backend, n *simplego.Node, in []*simplego.Buffer, o []bool) (*simplego.Buffer, error) {
	return runKernel(backends.OpTypeDotGeneral, b, n, in, o)
}
func execConvGeneral(b *simplego.Backend, n *simplego.Node, in []*simplego.Buffer, o []bool) (*simplego.Buffer, error) {
	return runKernel(backends.OpTypeConvGeneral, b, n, in, o)
}
func execLogistic(b *simplego.Backend, n *simplego.Node, in []*simplego.Buffer, o []bool) (*simplego.Buffer, error) {
	return runKernel(backends.OpTypeLogistic, b, n, in, o)
}
func execTanh(b *simplego.Backend, n *simplego.Node, in []*simplego.Buffer, o []bool) (*simplego.Buffer, error) {
	return runKernel(backends.OpTypeTanh, b, n, in, o)
}
func execTranspose(b *simplego.Backend, n *simplego.Node, in []*simplego.Buffer, o []bool) (*simplego.Buffer, error) {
	return runKernel(backends.OpTypeTranspose, b, n, in, o)
}

func init() {
	if fastKernelsErr = checkSimplegoLayout(); fastKernelsErr != nil {
		fastKernelsErr = fmt.Errorf("artnet kernels disabled: GoMLX simplego layout changed (artnet is pinned to gomlx v0.26.0): %w", fastKernelsErr)
		return
	}
	var execs [backends.OpTypeLast]simplegoExecutor
	install := func(op backends.OpType, exec simplegoExecutor, kernel kernelExecutor) {
		if sgNodeExecutors[op] == nil {
			fastKernelsErr = fmt.Errorf("artnet kernels disabled: simplego has no executor for %s", op)
			return
		}
		sgOriginal[op], kernelTable[op], execs[op] = sgNodeExecutors[op], kernel, exec
	}
	install(backends.OpTypeAdd, execAdd, binaryKernel(kernels.Add))
	install(backends.OpTypeSub, execSub, binaryKernel(kernels.Sub))
	install(backends.OpTypeMul, execMul, binaryKernel(kernels.Mul))
	install(backends.OpTypeDiv, execDiv, binaryKernel(kernels.Div))
	install(backends.OpTypeMax, execMax, binaryKernel(kernels.Max))
	install(backends.OpTypeMin, execMin, binaryKernel(kernels.Min))
	install(backends.OpTypeReduceSum, execReduceSum, reduceKernel(kernels.ReduceSum))
	install(backends.OpTypeReduceMax, execReduceMax, reduceKernel(kernels.ReduceMax))
	install(backends.OpTypeBroadcastInDim, execBroadcastInDim, broadcastInDimKernel)
	install(backends.OpTypeDotGeneral, execDotGeneral, dotGeneralKernel)
	install(backends.OpTypeConvGeneral, execConvGeneral, convGeneralKernel)
	install(backends.OpTypeLogistic, execLogistic, unaryKernel(kernels.Logistic))
	install(backends.OpTypeTanh, execTanh, unaryKernel(kernels.Tanh))
	install(backends.OpTypeTranspose, execTranspose, transposeKernel)
	if fastKernelsErr != nil {
		return // nothing replaced in simplego's table
	}
	for op, exec := range execs {
		if exec != nil {
			sgNodeExecutors[op] = exec
		}
	}
	installFused()
}

// enableFastKernels makes b run artnet's kernels (when they are installed).
func enableFastKernels(b *simplego.Backend) {
	if fastKernelsErr == nil {
		fastBackends.Store(b, true)
	}
}

func nodeOf(n *simplego.Node) *sgNode       { return (*sgNode)(unsafe.Pointer(n)) }
func bufferOf(b *simplego.Buffer) *sgBuffer { return (*sgBuffer)(unsafe.Pointer(b)) }

// newOutput returns a pool buffer for node's output, or the input #i when it is owned (its last
// use) and has the output's shape and dtype; inputs[i] is then set to nil, as simplego expects
// for reused inputs.
func newOutput(b *simplego.Backend, node *sgNode, inputs []*simplego.Buffer, owned []bool, reusable ...int) *simplego.Buffer {
	for _, i := range reusable {
		if owned[i] && bufferOf(inputs[i]).shape.Equal(node.shape) {
			out := inputs[i]
			inputs[i] = nil
			return out
		}
	}
	out := sgGetBuffer(b, node.shape.DType, node.shape.Size())
	if out != nil {
		bufferOf(out).shape = node.shape
	}
	return out
}

// binaryKernel runs op on float32/float64 operands, with implicit broadcasting (simplego's
// generic path walks a broadcast iterator element by element), in parallel chunks.
func binaryKernel(op kernels.BinaryOp) kernelExecutor {
	return func(b *simplego.Backend, n *simplego.Node, inputs []*simplego.Buffer, owned []bool) *simplego.Buffer {
		node := nodeOf(n)
		lhs, rhs := bufferOf(inputs[0]), bufferOf(inputs[1])
		ldims, rdims, odims := lhs.shape.Dimensions, rhs.shape.Dimensions, node.shape.Dimensions
		// Scalars of any rank broadcast as all-1 dims.
		if lhs.shape.Size() == 1 && len(ldims) != len(odims) {
			ldims = ones(len(odims))
		}
		if rhs.shape.Size() == 1 && len(rdims) != len(odims) {
			rdims = ones(len(odims))
		}
		if len(ldims) != len(odims) || len(rdims) != len(odims) {
			return nil
		}
		switch node.shape.DType {
		case dtypes.Float32:
			a, c := lhs.flat.([]float32), rhs.flat.([]float32)
			out := newOutput(b, node, inputs, owned, 0, 1)
			if out == nil {
				return nil
			}
			kernels.BinaryBroadcast(op, bufferOf(out).flat.([]float32), a, c, odims, ldims, rdims)
			return out
		case dtypes.Float64:
			a, c := lhs.flat.([]float64), rhs.flat.([]float64)
			out := newOutput(b, node, inputs, owned, 0, 1)
			if out == nil {
				return nil
			}
			kernels.BinaryBroadcast(op, bufferOf(out).flat.([]float64), a, c, odims, ldims, rdims)
			return out
		}
		return nil
	}
}

// reduceExecutor runs a float32/float64 reduction with contiguous inner loops, parallel over
// outputs (simplego's generic path walks an output iterator element by element).
func reduceKernel(op kernels.ReduceOp) kernelExecutor {
	return func(b *simplego.Backend, n *simplego.Node, inputs []*simplego.Buffer, owned []bool) *simplego.Buffer {
		node := nodeOf(n)
		axes, ok := node.data.([]int)
		operand := bufferOf(inputs[0])
		if !ok || len(axes) == 0 {
			return nil
		}
		dims := operand.shape.Dimensions
		switch node.shape.DType {
		case dtypes.Float32:
			x := operand.flat.([]float32)
			init := float32(0)
			if op == kernels.ReduceMax {
				init = node.shape.DType.LowestValue().(float32)
			}
			out := newOutput(b, node, inputs, owned)
			if out == nil {
				return nil
			}
			kernels.Reduce(op, bufferOf(out).flat.([]float32), x, dims, axes, init)
			return out
		case dtypes.Float64:
			x := operand.flat.([]float64)
			init := float64(0)
			if op == kernels.ReduceMax {
				init = node.shape.DType.LowestValue().(float64)
			}
			out := newOutput(b, node, inputs, owned)
			if out == nil {
				return nil
			}
			kernels.Reduce(op, bufferOf(out).flat.([]float64), x, dims, axes, init)
			return out
		}
		return nil
	}
}

// execBroadcastInDim copies the operand along the broadcast axes with contiguous row copies.
func broadcastInDimKernel(b *simplego.Backend, n *simplego.Node, inputs []*simplego.Buffer, owned []bool) *simplego.Buffer {
	node := nodeOf(n)
	operand := bufferOf(inputs[0])
	axes, ok := node.data.([]int)
	if !ok || operand.shape.Size() == 1 || len(axes) != operand.shape.Rank() {
		return nil
	}
	dims := make([]int, node.shape.Rank())
	for i := range dims {
		dims[i] = 1
	}
	prev := -1
	for i, a := range axes {
		if a <= prev || a >= len(dims) {
			return nil // simplego assumes increasing axes too; leave odd cases to it
		}
		prev = a
		dims[a] = operand.shape.Dimensions[i]
	}
	switch node.shape.DType {
	case dtypes.Float32:
		out := newOutput(b, node, inputs, owned)
		if out == nil {
			return nil
		}
		kernels.BroadcastCopy(bufferOf(out).flat.([]float32), operand.flat.([]float32), node.shape.Dimensions, dims)
		return out
	case dtypes.Float64:
		out := newOutput(b, node, inputs, owned)
		if out == nil {
			return nil
		}
		kernels.BroadcastCopy(bufferOf(out).flat.([]float64), operand.flat.([]float64), node.shape.Dimensions, dims)
		return out
	}
	return nil
}

// unaryKernel runs a float32/float64 unary op in parallel chunks (same formulas as simplego).
func unaryKernel(op kernels.UnaryOp) kernelExecutor {
	return func(b *simplego.Backend, n *simplego.Node, inputs []*simplego.Buffer, owned []bool) *simplego.Buffer {
		node := nodeOf(n)
		x := bufferOf(inputs[0])
		if !x.shape.Equal(node.shape) {
			return nil
		}
		switch node.shape.DType {
		case dtypes.Float32:
			in := x.flat.([]float32)
			out := newOutput(b, node, inputs, owned, 0)
			if out == nil {
				return nil
			}
			kernels.Unary(op, bufferOf(out).flat.([]float32), in)
			return out
		case dtypes.Float64:
			in := x.flat.([]float64)
			out := newOutput(b, node, inputs, owned, 0)
			if out == nil {
				return nil
			}
			kernels.Unary(op, bufferOf(out).flat.([]float64), in)
			return out
		}
		return nil
	}
}

// transposeKernel copies rows with the operand's stride along the output's innermost axis.
func transposeKernel(b *simplego.Backend, n *simplego.Node, inputs []*simplego.Buffer, owned []bool) *simplego.Buffer {
	node := nodeOf(n)
	x := bufferOf(inputs[0])
	perm, ok := node.data.([]int)
	if !ok || len(perm) != x.shape.Rank() {
		return nil
	}
	switch node.shape.DType {
	case dtypes.Float32:
		out := newOutput(b, node, inputs, owned)
		if out == nil {
			return nil
		}
		kernels.Transpose(bufferOf(out).flat.([]float32), x.flat.([]float32), x.shape.Dimensions, perm)
		return out
	case dtypes.Float64:
		out := newOutput(b, node, inputs, owned)
		if out == nil {
			return nil
		}
		kernels.Transpose(bufferOf(out).flat.([]float64), x.flat.([]float64), x.shape.Dimensions, perm)
		return out
	}
	return nil
}

// ones returns n ones.
func ones(n int) []int {
	v := make([]int, n)
	for i := range v {
		v[i] = 1
	}
	return v
}
