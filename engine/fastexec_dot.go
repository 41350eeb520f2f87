package engine

import (
	"errors"
	"fmt"
	"reflect"
	"slices"
	"sync"
	_ "unsafe" // go:linkname

	"github.com/gomlx/gomlx/backends/simplego"
	"github.com/gomlx/gomlx/pkg/core/dtypes"
	"github.com/gomlx/gomlx/pkg/core/shapes"

	"github.com/artnet/artnet/engine/internal/kernels"
	"github.com/artnet/artnet/internal/layout"
)

// DotGeneral as batched GEMM (OpenBLAS through engine/internal/kernels when built with cgo):
// simplego's own DotGeneral, a blocked pure-Go loop, measured ≈1.4 G multiply-adds/s here, and
// after the gradient rewrite (vjp.go) the matrix products were most of a training step.

//go:linkname sgPutBuffer github.com/gomlx/gomlx/backends/simplego.(*Backend).putBuffer
func sgPutBuffer(b *simplego.Backend, buffer *simplego.Buffer)

// sgDotData mirrors simplego's dotGeneralNodeData (v0.26.0), a DotGeneral node's data.
type sgDotData struct {
	lhsContractingAxes, lhsBatchAxes                       []int
	rhsContractingAxes, rhsBatchAxes                       []int
	batchSize, lhsCrossSize, rhsCrossSize, contractingSize int
	lhsBlockedShape, rhsBlockedShape, outputBlockedShape   shapes.Shape
}

var sgDotDataFields = []string{
	"lhsContractingAxes []int", "lhsBatchAxes []int", "rhsContractingAxes []int", "rhsBatchAxes []int",
	"batchSize int", "lhsCrossSize int", "rhsCrossSize int", "contractingSize int",
	"lhsBlockedShape shapes.Shape", "rhsBlockedShape shapes.Shape", "outputBlockedShape shapes.Shape",
}

// dotDataType caches the checked type of simplego's DotGeneral node data (checked on first use:
// the type is unexported, only reachable from a node).
var dotDataType struct {
	sync.Mutex
	ok  reflect.Type // the type that passed the layout check
	err error
}

// dotDataOf returns node's DotGeneral axes, or nil if its data isn't laid out as sgDotData.
func dotDataOf(node *sgNode) *sgDotData {
	t := reflect.TypeOf(node.data)
	dotDataType.Lock()
	defer dotDataType.Unlock()
	if t != dotDataType.ok {
		if dotDataType.ok != nil || dotDataType.err != nil || t == nil || t.Kind() != reflect.Pointer {
			return nil
		}
		if dotDataType.err = layout.Check(t.Elem(), reflect.TypeFor[sgDotData](), sgDotDataFields); dotDataType.err != nil {
			dotDataType.err = fmt.Errorf("artnet DotGeneral kernel disabled: %w", dotDataType.err)
			return nil
		}
		dotDataType.ok = t
	}
	return (*sgDotData)(reflect.ValueOf(node.data).UnsafePointer())
}

// ErrNoBLAS is DotGeneralKernelError's answer in a build without OpenBLAS.
var ErrNoBLAS = errors.New("artnet DotGeneral kernel not built: needs cgo and OpenBLAS (built with CGO_ENABLED=0 or -tags noblas); DotGeneral runs simplego's loop")

// DotGeneralKernelError returns nil while artnet's DotGeneral kernel is in use (or not tried
// yet), or why it was disabled.
func DotGeneralKernelError() error {
	if !kernels.HasBLAS {
		return ErrNoBLAS
	}
	dotDataType.Lock()
	defer dotDataType.Unlock()
	return dotDataType.err
}

// gemmOperand describes how one DotGeneral operand is read as a stack of row-major matrices:
// as is (trans false: [batch, rows, cols] axis order), transposed ([batch, cols, rows]), or
// after a copy with its axes permuted to perm (then trans is false).
type gemmOperand struct {
	trans bool
	perm  []int // non-nil: copy with this permutation first
}

// planOperand returns the reading of an operand of rank whose axes are, in the matrix's order,
// batch, then "rows" then "cols" (for lhs: cross, contracting; for rhs: contracting, cross).
func planOperand(rank int, batch, rows, cols []int) gemmOperand {
	direct := slices.Concat(batch, rows, cols)
	if isIdentity(direct) {
		return gemmOperand{}
	}
	if isIdentity(slices.Concat(batch, cols, rows)) {
		return gemmOperand{trans: true}
	}
	return gemmOperand{perm: direct}
}

func isIdentity(perm []int) bool {
	for i, p := range perm {
		if i != p {
			return false
		}
	}
	return true
}

// dotGeneralKernel runs a float32/float64 DotGeneral as batched GEMM.
func dotGeneralKernel(b *simplego.Backend, n *simplego.Node, inputs []*simplego.Buffer, _ []bool) *simplego.Buffer {
	if !kernels.HasBLAS {
		return nil
	}
	node := nodeOf(n)
	p := dotDataOf(node)
	if p == nil {
		return nil
	}
	lhs, rhs := bufferOf(inputs[0]), bufferOf(inputs[1])
	lCross := crossAxes(lhs.shape.Rank(), p.lhsContractingAxes, p.lhsBatchAxes)
	rCross := crossAxes(rhs.shape.Rank(), p.rhsContractingAxes, p.rhsBatchAxes)
	pl := planOperand(lhs.shape.Rank(), p.lhsBatchAxes, lCross, p.lhsContractingAxes)
	pr := planOperand(rhs.shape.Rank(), p.rhsBatchAxes, p.rhsContractingAxes, rCross)
	batch, m, nn, k := p.batchSize, p.lhsCrossSize, p.rhsCrossSize, p.contractingSize
	switch node.shape.DType {
	case dtypes.Float32:
		return runGemm[float32](b, node, lhs, rhs, pl, pr, batch, m, nn, k)
	case dtypes.Float64:
		return runGemm[float64](b, node, lhs, rhs, pl, pr, batch, m, nn, k)
	}
	return nil
}

func runGemm[T kernels.Float](b *simplego.Backend, node *sgNode, lhs, rhs *sgBuffer, pl, pr gemmOperand, batch, m, n, k int) *simplego.Buffer {
	var temps []*simplego.Buffer
	defer func() {
		for _, t := range temps {
			sgPutBuffer(b, t)
		}
	}()
	// operand returns the flat data of x, permuted into a temporary buffer when the plan says so.
	operand := func(x *sgBuffer, plan gemmOperand) []T {
		flat := x.flat.([]T)
		if plan.perm == nil {
			return flat
		}
		t := sgGetBuffer(b, x.shape.DType, x.shape.Size())
		if t == nil {
			return nil
		}
		temps = append(temps, t)
		dst := bufferOf(t).flat.([]T)
		kernels.Transpose(dst, flat, x.shape.Dimensions, plan.perm)
		return dst
	}
	a, c := operand(lhs, pl), operand(rhs, pr)
	if a == nil || c == nil {
		return nil
	}
	out := newOutput(b, node, nil, nil)
	if out == nil {
		return nil
	}
	kernels.Gemm(pl.trans, pr.trans, batch, m, n, k, a, c, bufferOf(out).flat.([]T))
	return out
}
