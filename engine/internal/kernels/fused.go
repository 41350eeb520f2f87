package kernels

import (
	"fmt"
	"math"
	"unsafe"
)

// FusedOp is one float32 operation of a fused elementwise expression.
type FusedOp int32

// The operations a fused expression is made of (simd.h's ARTNET_F_*; the binary ones share
// BinaryOp's numbering).
const (
	FAdd FusedOp = iota
	FSub
	FMul
	FDiv
	FNeg
	FSqrt
	FLogistic
)

func (op FusedOp) String() string {
	switch op {
	case FNeg:
		return "Neg"
	case FSqrt:
		return "Sqrt"
	case FLogistic:
		return "Logistic"
	}
	return BinaryOp(op).String()
}

// Instr is one instruction of a fused expression: Op applied to registers A (and B for binary
// ops). Registers [0, number of leaves) are the leaves, register leaves+k the result of
// instruction k; the last instruction's result is the output.
type Instr struct {
	Op   FusedOp
	A, B int32
}

// FusedBlock is the number of elements a fused expression is evaluated on at a time (its
// intermediate results stay in the CPU's L1 cache).
const FusedBlock = 512

// CheckFused returns an error unless code is a valid expression over nLeaves leaves: registers in
// range and defined before use, binary and unary ops with the right operands.
func CheckFused(nLeaves int, code []Instr) error {
	if len(code) == 0 {
		return fmt.Errorf("kernels.Fused: empty expression")
	}
	for k, in := range code {
		limit := int32(nLeaves + k)
		if in.A < 0 || in.A >= limit || (in.Op <= FDiv && (in.B < 0 || in.B >= limit)) || in.Op > FLogistic {
			return fmt.Errorf("kernels.Fused: instruction %d (%s %d %d) invalid with %d leaves", k, in.Op, in.A, in.B, nLeaves)
		}
	}
	return nil
}

// Leaf is an input of a fused expression: Data is either as long as the output (Run 0), one value
// (Run < 0), or broadcast (Run > 0): output element e takes Data[(e/Run) % Period], as a
// [1,C,1,1] vector does against a [B,C,H,W] output (Run H·W, Period C) or a [B,C,1,1] one (Run
// H·W, Period B·C).
type Leaf struct {
	Data        []float32
	Run, Period int
}

// FusedCArgs returns leaves as simd.h's artnet_fused takes them: their addresses (integers: cgo
// lets Go pass memory holding no Go pointers; the caller keeps leaves alive through the call),
// runs and periods. The code goes as it is: an Instr has artnet_instr's layout (three int32s).
func FusedCArgs(leaves []Leaf) (addrs []uintptr, run, period []int64) {
	addrs, run, period = make([]uintptr, len(leaves)), make([]int64, len(leaves)), make([]int64, len(leaves))
	for i, l := range leaves {
		addrs[i] = uintptr(unsafe.Pointer(unsafe.SliceData(l.Data)))
		run[i], period[i] = int64(l.Run), int64(max(l.Period, 1))
	}
	return
}

// Fused evaluates code (checked by CheckFused) into out (a unary op never takes a one-value leaf,
// and a binary op never two). Each op rounds to float32 exactly as the op alone does (kernels'
// vv/vs/sv, Logistic's float32 formula, a correctly rounded Sqrt like simplego's float64
// math.Sqrt), so the output has the bits of the unfused ops', after one pass over memory instead
// of one per op. Blocks of FusedBlock elements are split over the cores. out may be the Data of
// a full-length leaf.
func Fused(out []float32, leaves []Leaf, code []Instr) {
	n := len(out)
	blocks := (n + FusedBlock - 1) / FusedBlock
	parallelFor(blocks, n*len(code), func(lo, hi int) {
		lo, hi = lo*FusedBlock, min(hi*FusedBlock, n)
		if cFused(out, leaves, code, lo, hi) {
			return
		}
		fusedGo(out, leaves, code, lo, hi)
	})
}

// fusedGo is simd.h's artnet_fused in Go.
func fusedGo(out []float32, leaves []Leaf, code []Instr, lo, hi int) {
	tmp := make([]float32, (len(code)+len(leaves))*FusedBlock)
	expanded := tmp[len(code)*FusedBlock:]
	nl := int32(len(leaves))
	for s := lo; s < hi; s += FusedBlock {
		m := min(FusedBlock, hi-s)
		for l, leaf := range leaves {
			if leaf.Run <= 0 {
				continue
			}
			x := expanded[l*FusedBlock:]
			for e := s; e < s+m; {
				q := e / leaf.Run
				end := min((q+1)*leaf.Run, s+m)
				fill(x[e-s:end-s], leaf.Data[q%leaf.Period])
				e = end
			}
		}
		reg := func(r int32) (v []float32, c float32) {
			switch {
			case r >= nl:
				k := int(r - nl)
				return tmp[k*FusedBlock : k*FusedBlock+m], 0
			case leaves[r].Run < 0:
				return nil, leaves[r].Data[0]
			case leaves[r].Run > 0:
				return expanded[int(r)*FusedBlock : int(r)*FusedBlock+m], 0
			}
			return leaves[r].Data[s : s+m], 0
		}
		for k, in := range code {
			o := tmp[k*FusedBlock : k*FusedBlock+m]
			if k == len(code)-1 {
				o = out[s : s+m]
			}
			a, va := reg(in.A)
			if in.Op <= FDiv {
				b, vb := reg(in.B)
				op := BinaryOp(in.Op)
				switch {
				case a != nil && b != nil:
					vvGo(op, o, a, b)
				case a != nil:
					vsGo(op, o, a, vb)
				default:
					svGo(op, o, va, b)
				}
				continue
			}
			switch in.Op {
			case FNeg:
				for i, v := range a {
					o[i] = -v
				}
			case FSqrt:
				for i, v := range a {
					o[i] = float32(math.Sqrt(float64(v)))
				}
			case FLogistic:
				logistic32(o, a)
			}
		}
	}
}
