package kernels

import (
	"fmt"
	"math"
	"math/rand/v2"
	"testing"
)

// unfused evaluates code one op at a time over whole arrays with the kernels the ops run alone
// (broadcast leaves expanded first, as a BroadcastInDim would).
func unfused(n int, leaves []Leaf, code []Instr) []float32 {
	regs := make([][]float32, 0, len(leaves)+len(code))
	for _, l := range leaves {
		if l.Run <= 0 {
			regs = append(regs, l.Data)
			continue
		}
		x := make([]float32, n)
		for e := range x {
			x[e] = l.Data[(e/l.Run)%l.Period]
		}
		regs = append(regs, x)
	}
	for _, in := range code {
		o := make([]float32, n)
		a := regs[in.A]
		switch {
		case in.Op <= FDiv:
			b := regs[in.B]
			op := BinaryOp(in.Op)
			switch {
			case len(a) == n && len(b) == n:
				vv(op, o, a, b)
			case len(a) == n:
				vs(op, o, a, b[0])
			default:
				sv(op, o, a[0], b)
			}
		case in.Op == FNeg:
			for i, v := range a {
				o[i] = -v
			}
		case in.Op == FSqrt:
			for i, v := range a {
				o[i] = float32(math.Sqrt(float64(v)))
			}
		case in.Op == FLogistic:
			Unary(Logistic, o, a)
		}
		regs = append(regs, o)
	}
	return regs[len(regs)-1]
}

// randExpr returns random leaves (some one-value, some broadcast) and a valid random expression
// over them.
func randExpr(r *rand.Rand, n int) ([]Leaf, []Instr) {
	nl := 1 + r.IntN(5)
	leaves := make([]Leaf, nl)
	full := []int32{}
	for i := range leaves {
		switch {
		case i > 0 && r.IntN(3) == 0:
			leaves[i] = Leaf{Data: []float32{float32(r.NormFloat64())}, Run: -1}
			continue
		case i > 0 && r.IntN(2) == 0:
			run, period := 1+r.IntN(700), 1+r.IntN(9)
			leaves[i] = Leaf{Data: randSlice(r, period), Run: run, Period: period}
		default:
			leaves[i] = Leaf{Data: randSlice(r, n)}
			if i == 0 {
				copy(leaves[i].Data, specials)
			}
		}
		full = append(full, int32(i))
	}
	var code []Instr
	for k := range 1 + r.IntN(12) {
		op := FusedOp(r.IntN(int(FLogistic) + 1))
		pick := func() int32 { // any register holding n values
			if k > 0 && r.IntN(2) == 0 {
				return int32(nl + r.IntN(k))
			}
			return full[r.IntN(len(full))]
		}
		in := Instr{Op: op, A: pick()}
		if op <= FDiv {
			in.B = int32(r.IntN(nl + k)) // may be a one-value leaf
			if r.IntN(2) == 0 {
				in.A, in.B = in.B, in.A
			}
		}
		code = append(code, in)
	}
	return leaves, code
}

// TestFusedMatchesUnfused: random expressions (every op, one-value leaves on either side, NaN
// and ±Inf among the inputs, lengths around the block size) give the bits of the ops run one at
// a time, in C and in Go.
func TestFusedMatchesUnfused(t *testing.T) {
	r := rand.New(rand.NewPCG(31, 32))
	for trial := range 300 {
		n := []int{1, 7, 511, 512, 513, 3000, 40000}[trial%7]
		leaves, code := randExpr(r, n)
		if n == 1 {
			continue // one-value leaves are ambiguous at n = 1; the engine never fuses scalars
		}
		if err := CheckFused(len(leaves), code); err != nil {
			t.Fatal(err)
		}
		want := unfused(n, leaves, code)
		name := fmt.Sprintf("trial %d, n %d, %v", trial, n, code)
		got := make([]float32, n)
		Fused(got, leaves, code)
		sameBits(t, name, got, want)
		withGo(func() { Fused(got, leaves, code) })
		sameBits(t, name+" (Go)", got, want)
	}
}

func TestCheckFused(t *testing.T) {
	for _, c := range []struct {
		leaves int
		code   []Instr
	}{
		{1, nil},
		{1, []Instr{{FAdd, 0, 1}}},
		{2, []Instr{{FNeg, 2, 0}}},
		{1, []Instr{{FusedOp(9), 0, 0}}},
		{1, []Instr{{FMul, -1, 0}}},
	} {
		if CheckFused(c.leaves, c.code) == nil {
			t.Errorf("CheckFused(%d, %v) accepted an invalid expression", c.leaves, c.code)
		}
	}
	if err := CheckFused(2, []Instr{{FMul, 0, 1}, {FLogistic, 2, 0}, {FSub, 3, 1}}); err != nil {
		t.Error(err)
	}
}
