package engine

import (
	"errors"
	"fmt"
	"reflect"
	"slices"
	"sync/atomic"
	"unsafe"

	"github.com/gomlx/gomlx/backends"
	"github.com/gomlx/gomlx/backends/notimplemented"
	"github.com/gomlx/gomlx/backends/simplego"
	"github.com/gomlx/gomlx/pkg/core/dtypes"
	"github.com/gomlx/gomlx/pkg/core/shapes"

	"github.com/artnet/artnet/engine/internal/kernels"
	"github.com/artnet/artnet/internal/layout"
)

// Elementwise fusion on "go". After artnet's kernels, a third of a training step was chains of
// float32 elementwise ops over the same tensor, each op one pass over memory: GoMLX's Adam update
// is 19 ops per variable, a SiLU's gradient 5, batch norm's a dozen. When a graph is compiled,
// Compile first runs fuseElementwise: every Add, Sub, Mul, Div, Neg, Sqrt or Logistic node whose
// operands include such nodes (same shape) used by it alone becomes one fused node — a
// kernels.Fused expression over the chain's leaves, evaluated block by block in the L1 cache —
// in place (the nodes it absorbed are then used by nothing, and simplego skips them). Only
// single-use operands are absorbed, so nothing is computed twice; each op rounds as it does
// alone, so the results are the same bits (kernels.TestFusedMatchesUnfused,
// TestFusionSameBits).
//
// simplego v0.26.0 has no custom op: a fused node is a simplego node whose type becomes
// fusedOpType (Clamp, which simplego implements for nothing, so no graph of its has one) with
// the expression in its data; execFused, installed in simplego's executor table for that
// type, runs it. The builder's node list is read through a checked mirror of simplego.Builder.

const (
	fusedOpType = backends.OpTypeClamp
	// maxFusedInstrs and maxFusedLeaves bound an expression (its scratch is instructions ×
	// kernels.FusedBlock floats).
	maxFusedInstrs = 32
	maxFusedLeaves = 8
	// minFusedSize is the smallest output fused: below it a chain of ops costs little anyway.
	minFusedSize = 1024
)

// fusedExpr is a fused node's data: the code, and how each leaf (the node's inputs, in order)
// spreads over the output.
type fusedExpr struct {
	code   []kernels.Instr
	leaves []leafShape
}

// fusibleOps are the elementwise op types an expression is made of, with their kernels.FusedOp.
var fusibleOps = map[backends.OpType]kernels.FusedOp{
	backends.OpTypeAdd: kernels.FAdd, backends.OpTypeSub: kernels.FSub, backends.OpTypeMul: kernels.FMul,
	backends.OpTypeDiv: kernels.FDiv, backends.OpTypeNeg: kernels.FNeg, backends.OpTypeSqrt: kernels.FSqrt,
	backends.OpTypeLogistic: kernels.FLogistic,
}

// sgBuilder mirrors simplego.Builder (v0.26.0).
type sgBuilder struct {
	notimplemented.Builder
	name     string
	backend  *simplego.Backend
	compiled bool
	nodes    []*simplego.Node
	inputs   []*simplego.Node
	outputs  []*simplego.Node
}

var sgBuilderFields = []string{
	"Builder notimplemented.Builder", "name string", "backend *simplego.Backend", "compiled bool",
	"nodes []*simplego.Node", "inputs []*simplego.Node", "outputs []*simplego.Node",
}

// Compile fuses the graph's elementwise chains (fuseElementwise), then compiles it in simplego.
func (b *Builder) Compile(outputs []backends.Op, shardings []*backends.ShardingSpec) (backends.Executable, error) {
	if b.fuse && fusedKernelErr == nil {
		if err := b.fuseElementwise(outputs); err != nil {
			return nil, err
		}
	}
	return b.Builder.Compile(outputs, shardings)
}

// fuseElementwise turns the elementwise chains of the graph computing outputs into fused nodes.
func (b *Builder) fuseElementwise(outputs []backends.Op) error {
	nodes := (*sgBuilder)(unsafe.Pointer(b.Builder)).nodes
	// Uses of each node needed by the outputs (an output counts as one more use).
	uses := make([]int, len(nodes))
	needed := make([]bool, len(nodes))
	var stack []*simplego.Node
	for _, o := range outputs {
		n, ok := o.(*simplego.Node)
		if !ok {
			return nil // simplego's Compile reports it
		}
		uses[nodeOf(n).builderIdx]++
		stack = append(stack, n)
	}
	for len(stack) > 0 {
		n := stack[len(stack)-1]
		stack = stack[:len(stack)-1]
		i := nodeOf(n).builderIdx
		if needed[i] {
			continue
		}
		needed[i] = true
		for _, in := range nodeOf(n).inputs {
			uses[nodeOf(in).builderIdx]++
			stack = append(stack, in)
		}
	}
	for i, n := range nodes {
		node := nodeOf(n)
		fop, ok := fusibleOps[node.opType]
		if !needed[i] || !ok || node.shape.DType != dtypes.Float32 || node.shape.Size() < minFusedSize {
			continue
		}
		out := node.shape
		e := fusion{}
		regs := make([]int32, 0, len(node.inputs))
		for _, in := range node.inputs {
			x := nodeOf(in)
			fe, fused := x.data.(*fusedExpr)
			var r int32 = -1
			switch {
			case x.opType == fusedOpType && fused && uses[x.builderIdx] == 1 && x.shape.Equal(out) &&
				len(e.code)+len(fe.code) < maxFusedInstrs:
				// Absorb the operand's expression: its registers [0, len(inputs)) are its leaves.
				r = e.absorb(fe.code, fe.leaves)
			case isFusible(x) && uses[x.builderIdx] == 1 && x.shape.Equal(out) && len(e.code) < maxFusedInstrs:
				// A single-op operand not fused itself (fewer than two ops): absorb it.
				var ls []leafShape
				for _, xi := range x.inputs {
					l, ok := leafOf(xi, out)
					if !ok {
						ls = nil
						break
					}
					ls = append(ls, l)
				}
				if ls != nil {
					code := []kernels.Instr{{Op: fusibleOps[x.opType], A: 0, B: int32(len(x.inputs) - 1)}}
					r = e.absorb(code, ls)
				}
			}
			if r < 0 {
				l, ok := leafOf(in, out)
				if !ok {
					break
				}
				e.bypass = e.bypass || l.node != in
				r = e.leaf(l)
			}
			if r < 0 {
				break
			}
			regs = append(regs, r)
		}
		if len(regs) != len(node.inputs) || (len(e.code) == 0 && !e.bypass) {
			continue // not expressible, or nothing gained: the node stays as it is
		}
		e.code = append(e.code, kernels.Instr{Op: fop, A: regs[0], B: regs[len(regs)-1]})
		for k := range e.code {
			e.code[k].A, e.code[k].B = renumber(e.code[k].A, len(e.leaves)), renumber(e.code[k].B, len(e.leaves))
		}
		if err := kernels.CheckFused(len(e.leaves), e.code); err != nil {
			return fmt.Errorf("engine: fusing %s node #%d: %w", node.opType, i, err)
		}
		inputs := make([]*simplego.Node, len(e.leaves))
		for j, l := range e.leaves {
			inputs[j] = l.node
		}
		node.opType, node.inputs, node.data = fusedOpType, inputs, &fusedExpr{code: e.code, leaves: e.leaves}
	}
	return nil
}

// leafShape is a leaf of a fused expression: a node and how it spreads over the output
// (kernels.Leaf's Run and Period).
type leafShape struct {
	node        *simplego.Node
	run, period int
}

// fusion is an expression being built: leaves and code (registers: leaves, then codeBase+k for
// instruction k, renumbered at the end).
type fusion struct {
	leaves []leafShape
	code   []kernels.Instr
	bypass bool // a leaf is a BroadcastInDim's operand: its full-size copy is not needed
}

// leaf returns the register of l, adding it if new; -1 when there are too many leaves.
func (e *fusion) leaf(l leafShape) int32 {
	for j, x := range e.leaves {
		if x.node == l.node {
			return int32(j)
		}
	}
	if len(e.leaves) == maxFusedLeaves {
		return -1
	}
	e.leaves = append(e.leaves, l)
	return int32(len(e.leaves) - 1)
}

// absorb appends code, whose registers [0, len(ls)) are the leaves ls, and returns the register
// of its result; -1 (e unchanged) when the leaves do not fit.
func (e *fusion) absorb(code []kernels.Instr, ls []leafShape) int32 {
	nLeaves, nCode := len(e.leaves), len(e.code)
	sub := make([]int32, 0, len(ls)+len(code))
	for _, l := range ls {
		r := e.leaf(l)
		if r < 0 {
			e.leaves, e.code = e.leaves[:nLeaves], e.code[:nCode]
			return -1
		}
		sub = append(sub, r)
	}
	for _, c := range code {
		e.code = append(e.code, kernels.Instr{Op: c.Op, A: sub[c.A], B: sub[c.B]})
		sub = append(sub, int32(codeBase+len(e.code)-1))
	}
	return sub[len(sub)-1]
}

// leafOf returns how x enters an expression whose output has shape out: as itself (out's shape,
// or one value), broadcast (same rank, size-1 axes), or — x being a BroadcastInDim — as that
// broadcast's operand, which then need not be expanded to out's size. ok is false when x's
// values do not follow kernels.Leaf's pattern (the axes x varies along are not adjacent).
func leafOf(x *simplego.Node, out shapes.Shape) (l leafShape, ok bool) {
	xs := nodeOf(x).shape
	if xs.DType != out.DType {
		return l, false
	}
	if nodeOf(x).opType == backends.OpTypeBroadcastInDim && xs.Rank() == out.Rank() {
		if l, ok := broadcastLeaf(x, xs.Dimensions, out); ok && l.node != x {
			return l, true // its operand, if it follows the pattern
		}
	}
	switch {
	case xs.Equal(out):
		return leafShape{node: x}, true
	case xs.Size() == 1:
		return leafShape{node: x, run: -1, period: 1}, true
	case xs.Rank() == out.Rank():
		return broadcastLeaf(x, xs.Dimensions, out)
	}
	return l, false
}

// broadcastLeaf describes x, whose dims (out's rank, each 1 or out's) are dims, broadcast to out;
// a BroadcastInDim node is looked through first.
func broadcastLeaf(x *simplego.Node, dims []int, out shapes.Shape) (leafShape, bool) {
	if bn := nodeOf(x); bn.opType == backends.OpTypeBroadcastInDim && len(bn.inputs) == 1 {
		axes, ok := bn.data.([]int)
		in := nodeOf(bn.inputs[0]).shape
		if ok && len(axes) == in.Rank() && slices.IsSorted(axes) {
			aligned := ones(out.Rank())
			good := true
			for i, a := range axes {
				if a < 0 || a >= out.Rank() || (in.Dimensions[i] != out.Dimensions[a] && in.Dimensions[i] != 1) {
					good = false
					break
				}
				aligned[a] = in.Dimensions[i]
			}
			if good {
				if l, ok := broadcastLeaf(bn.inputs[0], aligned, out); ok {
					if in.Size() == 1 {
						l.run, l.period = -1, 1
					}
					return l, true
				}
			}
		}
	}
	if len(dims) != out.Rank() {
		return leafShape{}, false
	}
	first, last := -1, -1 // the axes x varies along must be adjacent (size-1 axes of out aside)
	for k, d := range dims {
		if out.Dimensions[k] == 1 {
			continue
		}
		switch {
		case d == out.Dimensions[k]:
			if first < 0 {
				first = k
			} else if last != k-1 && !allOnes(out.Dimensions[last+1:k]) {
				return leafShape{}, false
			}
			last = k
		case d != 1:
			return leafShape{}, false
		}
	}
	if first < 0 {
		return leafShape{node: x, run: -1, period: 1}, true
	}
	run, period := 1, 1
	for k := last + 1; k < len(dims); k++ {
		run *= out.Dimensions[k]
	}
	for k := first; k <= last; k++ {
		period *= dims[k]
	}
	return leafShape{node: x, run: run, period: period}, true
}

func allOnes(d []int) bool {
	for _, v := range d {
		if v != 1 {
			return false
		}
	}
	return true
}

// codeBase marks the registers of instructions while an expression is built (the number of
// leaves is known only at the end): instruction k is codeBase+k until renumber.
const codeBase = 1 << 24

func renumber(r int32, nLeaves int) int32 {
	if r >= codeBase {
		return int32(nLeaves) + r - codeBase
	}
	return r
}

// isFusible reports whether x is a plain fusible op over operands of its own shape or one value.
func isFusible(x *sgNode) bool {
	if _, ok := fusibleOps[x.opType]; !ok || x.shape.DType != dtypes.Float32 {
		return false
	}
	for _, in := range x.inputs {
		if s := nodeOf(in).shape; !s.Equal(x.shape) && s.Size() != 1 {
			return false
		}
	}
	return true
}

// fusedBroadcastRuns counts the broadcast leaves fused nodes have read (tests check they occur).
var fusedBroadcastRuns atomic.Int64

// fusedKernelErr is why fused nodes are not built (nil when they are): artnet's kernels are not
// installed, or simplego has an executor of its own for fusedOpType.
var fusedKernelErr = errors.New("elementwise fusion disabled: artnet's kernels are not installed")

// installFused puts execFused in simplego's executor table (called by installFastKernels).
func installFused() {
	if fastKernelsErr != nil {
		fusedKernelErr = fastKernelsErr
		return
	}
	if err := layout.Check(reflect.TypeFor[simplego.Builder](), reflect.TypeFor[sgBuilder](), sgBuilderFields); err != nil {
		fusedKernelErr = fmt.Errorf("elementwise fusion disabled: GoMLX simplego layout changed (artnet is pinned to gomlx v0.26.0): %w", err)
		return
	}
	if sgNodeExecutors[fusedOpType] != nil {
		fusedKernelErr = fmt.Errorf("elementwise fusion disabled: simplego implements %s, which artnet's fused nodes use", fusedOpType)
		return
	}
	sgNodeExecutors[fusedOpType] = execFused
	fusedKernelErr = nil
}

// execFused runs a fused node (kernels.Fused), its output in an owned full-size input's buffer
// when there is one.
func execFused(b *simplego.Backend, n *simplego.Node, inputs []*simplego.Buffer, owned []bool) (*simplego.Buffer, error) {
	node := nodeOf(n)
	fe, ok := node.data.(*fusedExpr)
	if !ok || node.shape.DType != dtypes.Float32 {
		return nil, fmt.Errorf("engine: %s node without an artnet fused expression (simplego has no %s)", node.opType, node.opType)
	}
	if len(fe.leaves) != len(inputs) {
		return nil, fmt.Errorf("engine: fused node with %d inputs, %d leaves", len(inputs), len(fe.leaves))
	}
	leaves := make([]kernels.Leaf, len(inputs))
	var full []int
	for i, in := range inputs {
		l := fe.leaves[i]
		leaves[i] = kernels.Leaf{Data: bufferOf(in).flat.([]float32), Run: l.run, Period: l.period}
		if l.run == 0 {
			full = append(full, i)
		}
		if l.run > 0 {
			fusedBroadcastRuns.Add(1)
		}
	}
	out := newOutput(b, node, inputs, owned, full...)
	if out == nil {
		return nil, fmt.Errorf("engine: no buffer for a fused %s", node.shape)
	}
	kernels.Fused(bufferOf(out).flat.([]float32), leaves, fe.code)
	kernelRuns[fusedOpType].Add(1)
	return out, nil
}
