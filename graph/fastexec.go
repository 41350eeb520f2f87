package graph

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

	"github.com/artnet/artnet/graph/internal/kernels"
)

// This file installs artnet's kernels (package graph/internal/kernels) into simplego's op
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

// checkLayout returns an error unless real has exactly the fields want (name and type) at the
// offsets of mirror's fields.
func checkLayout(real, mirror reflect.Type, want []string) error {
	if real.NumField() != len(want) || mirror.NumField() != len(want) || real.Size() != mirror.Size() {
		return fmt.Errorf("%s has %d fields (size %d), artnet's mirror expects %d (size %d)",
			real, real.NumField(), real.Size(), len(want), mirror.Size())
	}
	for i, w := range want {
		f, m := real.Field(i), mirror.Field(i)
		if got := f.Name + " " + f.Type.String(); got != w || f.Offset != m.Offset || f.Name != m.Name {
			return fmt.Errorf("%s field #%d is %q at offset %d, artnet's mirror expects %q at offset %d", real, i, got, f.Offset, w, m.Offset)
		}
	}
	return nil
}

func checkSimplegoLayout() error {
	if err := checkLayout(reflect.TypeFor[simplego.Node](), reflect.TypeFor[sgNode](), sgNodeFields); err != nil {
		return err
	}
	return checkLayout(reflect.TypeFor[simplego.Buffer](), reflect.TypeFor[sgBuffer](), sgBufferFields)
}

var (
	// fastKernelsErr is why the kernels could not be installed (nil when they are).
	fastKernelsErr error
	// sgOriginal holds simplego's executors, replaced in sgNodeExecutors by artnet's.
	sgOriginal [backends.OpTypeLast]simplegoExecutor
	// fastBackends holds the *simplego.Backend values that run artnet's kernels.
	fastBackends sync.Map
	// kernelRuns counts the nodes artnet's kernels executed (tests check the kernels ran).
	kernelRuns atomic.Int64
)

// FastKernelsError returns nil when artnet's kernels are installed in the pure-Go backend, or
// why they are not (then "go" runs GoMLX's own executors, as "go:reference" does).
func FastKernelsError() error { return fastKernelsErr }

func init() {
	if fastKernelsErr = checkSimplegoLayout(); fastKernelsErr != nil {
		fastKernelsErr = fmt.Errorf("artnet kernels disabled: GoMLX simplego layout changed (artnet is pinned to gomlx v0.26.0): %w", fastKernelsErr)
		return
	}
	install := func(op backends.OpType, fn kernelExecutor) {
		orig := sgNodeExecutors[op]
		if orig == nil {
			fastKernelsErr = fmt.Errorf("artnet kernels disabled: simplego has no executor for %s", op)
			return
		}
		sgOriginal[op] = orig
		sgNodeExecutors[op] = func(b *simplego.Backend, node *simplego.Node, inputs []*simplego.Buffer, owned []bool) (*simplego.Buffer, error) {
			if _, ok := fastBackends.Load(b); ok {
				if out := fn(b, node, inputs, owned); out != nil {
					kernelRuns.Add(1)
					return out, nil
				}
			}
			return orig(b, node, inputs, owned)
		}
	}
	for op, bop := range map[backends.OpType]kernels.BinaryOp{
		backends.OpTypeAdd: kernels.Add, backends.OpTypeSub: kernels.Sub, backends.OpTypeMul: kernels.Mul,
		backends.OpTypeDiv: kernels.Div, backends.OpTypeMax: kernels.Max, backends.OpTypeMin: kernels.Min,
	} {
		install(op, binaryExecutor(bop))
	}
	install(backends.OpTypeReduceSum, reduceExecutor(kernels.ReduceSum))
	install(backends.OpTypeReduceMax, reduceExecutor(kernels.ReduceMax))
	install(backends.OpTypeBroadcastInDim, execBroadcastInDim)
	install(backends.OpTypeDotGeneral, execDotGeneral)
	if fastKernelsErr != nil {
		// Undo a partial installation.
		for op, orig := range sgOriginal {
			if orig != nil {
				sgNodeExecutors[op] = orig
			}
		}
	}
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

// binaryExecutor runs op on float32/float64 operands with implicit broadcasting (simplego's
// generic path walks a broadcast iterator element by element). Same-shape and scalar operands
// are left to simplego, whose loops for them are as fast.
func binaryExecutor(op kernels.BinaryOp) kernelExecutor {
	return func(b *simplego.Backend, n *simplego.Node, inputs []*simplego.Buffer, owned []bool) *simplego.Buffer {
		node := nodeOf(n)
		lhs, rhs := bufferOf(inputs[0]), bufferOf(inputs[1])
		if lhs.shape.Equal(rhs.shape) || lhs.shape.Size() == 1 || rhs.shape.Size() == 1 ||
			lhs.shape.Rank() != node.shape.Rank() || rhs.shape.Rank() != node.shape.Rank() {
			return nil
		}
		ldims, rdims, odims := lhs.shape.Dimensions, rhs.shape.Dimensions, node.shape.Dimensions
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
func reduceExecutor(op kernels.ReduceOp) kernelExecutor {
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
func execBroadcastInDim(b *simplego.Backend, n *simplego.Node, inputs []*simplego.Buffer, owned []bool) *simplego.Buffer {
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
