package engine

import (
	"errors"
	"fmt"
	"reflect"
	"slices"
	"unsafe"

	"github.com/gomlx/gomlx/backends"
	"github.com/gomlx/gomlx/backends/notimplemented"
	"github.com/gomlx/gomlx/backends/simplego"
	"github.com/gomlx/gomlx/pkg/core/dtypes"

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

// fusedExpr is a fused node's data.
type fusedExpr struct {
	code []kernels.Instr
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
		var leaves []*simplego.Node
		var code []kernels.Instr // registers: leaves, then codeBase+k for instruction k
		leaf := func(x *simplego.Node) int32 {
			if j := slices.Index(leaves, x); j >= 0 {
				return int32(j)
			}
			leaves = append(leaves, x)
			return int32(len(leaves) - 1)
		}
		var regs []int32
		for _, in := range node.inputs {
			x := nodeOf(in)
			fe, fused := x.data.(*fusedExpr)
			switch {
			case x.opType == fusedOpType && fused && uses[x.builderIdx] == 1 && x.shape.Equal(node.shape) &&
				len(code)+len(fe.code) < maxFusedInstrs && len(leaves)+len(x.inputs) <= maxFusedLeaves:
				// Absorb the operand's expression: its registers [0, len(inputs)) are its leaves.
				sub := make([]int32, 0, len(x.inputs)+len(fe.code))
				for _, l := range x.inputs {
					sub = append(sub, leaf(l))
				}
				for _, c := range fe.code {
					code = append(code, kernels.Instr{Op: c.Op, A: sub[c.A], B: sub[c.B]})
					sub = append(sub, int32(codeBase+len(code)-1))
				}
				regs = append(regs, sub[len(sub)-1])
			case isFusible(x) && uses[x.builderIdx] == 1 &&
				x.shape.Equal(node.shape) && len(code) < maxFusedInstrs && len(leaves)+len(x.inputs) <= maxFusedLeaves:
				// A single-op operand not fused itself (fewer than two ops): absorb it.
				a := leaf(x.inputs[0])
				bb := leaf(x.inputs[len(x.inputs)-1])
				code = append(code, kernels.Instr{Op: fusibleOps[x.opType], A: a, B: bb})
				regs = append(regs, int32(codeBase+len(code)-1))
			default:
				if x.shape.Equal(node.shape) || x.shape.Size() == 1 {
					regs = append(regs, leaf(in))
				} else {
					regs = nil // broadcast operand: not expressible
				}
			}
			if regs == nil || len(leaves) > maxFusedLeaves {
				break
			}
		}
		if regs == nil || len(regs) != len(node.inputs) || len(code) == 0 || len(leaves) > maxFusedLeaves {
			continue // nothing absorbed: the node stays as it is
		}
		code = append(code, kernels.Instr{Op: fop, A: regs[0], B: regs[len(regs)-1]})
		for k := range code {
			code[k].A, code[k].B = renumber(code[k].A, len(leaves)), renumber(code[k].B, len(leaves))
		}
		if err := kernels.CheckFused(len(leaves), code); err != nil {
			return fmt.Errorf("engine: fusing %s node #%d: %w", node.opType, i, err)
		}
		node.opType, node.inputs, node.data = fusedOpType, leaves, &fusedExpr{code: code}
	}
	return nil
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
	leaves := make([][]float32, len(inputs))
	var full []int
	for i, in := range inputs {
		leaves[i] = bufferOf(in).flat.([]float32)
		if bufferOf(in).shape.Equal(node.shape) {
			full = append(full, i)
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
