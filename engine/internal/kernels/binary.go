package kernels

import (
	"fmt"
	"math"
)

// BinaryOp is an elementwise binary operation.
type BinaryOp int

// The binary operations BinaryBroadcast implements.
const (
	Add BinaryOp = iota
	Sub
	Mul
	Div
	Max
	Min
)

func (op BinaryOp) String() string {
	switch op {
	case Add:
		return "Add"
	case Sub:
		return "Sub"
	case Mul:
		return "Mul"
	case Div:
		return "Div"
	case Max:
		return "Max"
	case Min:
		return "Min"
	}
	return fmt.Sprintf("BinaryOp(%d)", int(op))
}

// BinaryBroadcast computes out = a op b elementwise, a (aDims) and b (bDims) broadcast to outDims
// (same rank; each dim equal to outDims' or 1). out may alias a or b when that operand has
// outDims. Max and Min follow Go's max/min (as simplego does, NaN propagates).
func BinaryBroadcast[T Float](op BinaryOp, out, a, b []T, outDims, aDims, bDims []int) {
	l := newStridedLoop(outDims, broadcastStrides(aDims, outDims), broadcastStrides(bDims, outDims))
	n, ia, ib := l.n, l.inc[0], l.inc[1]
	row := func(dst []T, aOff, bOff int) {
		n := len(dst)
		switch {
		case ia == 1 && ib == 1:
			vv(op, dst, a[aOff:aOff+n], b[bOff:bOff+n])
		case ia == 1:
			vs(op, dst, a[aOff:aOff+n], b[bOff])
		case ib == 1:
			sv(op, dst, a[aOff], b[bOff:bOff+n])
		default:
			fill(dst, scalarOp(op, a[aOff], b[bOff]))
		}
	}
	if l.rows == 1 {
		// One long row (same shapes, or a scalar operand): split it.
		parallelFor(n, n, func(lo, hi int) { row(out[lo:hi], lo*ia, lo*ib) })
		return
	}
	l.run(func(o int, off []int) { row(out[o:o+n], off[0], off[1]) })
}

func scalarOp[T Float](op BinaryOp, x, y T) T {
	switch op {
	case Add:
		return x + y
	case Sub:
		return x - y
	case Mul:
		return x * y
	case Div:
		return x / y
	case Max:
		return max(x, y)
	case Min:
		return min(x, y)
	}
	panic("kernels: unknown binary op " + op.String())
}

func vv[T Float](op BinaryOp, o, x, y []T) {
	if !cBinary(op, o, x[:len(o)], y[:len(o)], 0, 0) {
		vvGo(op, o, x, y)
	}
}

// vvGo, vsGo and svGo are vv, vs and sv in Go (simd.h's artnet_vv, _vs, _sv compute the same).
func vvGo[T Float](op BinaryOp, o, x, y []T) {
	x, y = x[:len(o)], y[:len(o)]
	switch op {
	case Add:
		for i := range o {
			o[i] = x[i] + y[i]
		}
	case Sub:
		for i := range o {
			o[i] = x[i] - y[i]
		}
	case Mul:
		for i := range o {
			o[i] = x[i] * y[i]
		}
	case Div:
		for i := range o {
			o[i] = x[i] / y[i]
		}
	case Max:
		for i := range o {
			o[i] = max(x[i], y[i])
		}
	case Min:
		for i := range o {
			o[i] = min(x[i], y[i])
		}
	default:
		panic("kernels: unknown binary op " + op.String())
	}
}

func vs[T Float](op BinaryOp, o, x []T, c T) {
	if !cBinary(op, o, x[:len(o)], nil, 0, c) {
		vsGo(op, o, x, c)
	}
}

func vsGo[T Float](op BinaryOp, o, x []T, c T) {
	x = x[:len(o)]
	switch op {
	case Add:
		for i := range o {
			o[i] = x[i] + c
		}
	case Sub:
		for i := range o {
			o[i] = x[i] - c
		}
	case Mul:
		for i := range o {
			o[i] = x[i] * c
		}
	case Div:
		for i := range o {
			o[i] = x[i] / c
		}
	case Max:
		for i := range o {
			o[i] = max(x[i], c)
		}
	case Min:
		for i := range o {
			o[i] = min(x[i], c)
		}
	default:
		panic("kernels: unknown binary op " + op.String())
	}
}

func sv[T Float](op BinaryOp, o []T, c T, y []T) {
	if !cBinary(op, o, nil, y[:len(o)], c, 0) {
		svGo(op, o, c, y)
	}
}

func svGo[T Float](op BinaryOp, o []T, c T, y []T) {
	y = y[:len(o)]
	switch op {
	case Add:
		for i := range o {
			o[i] = c + y[i]
		}
	case Sub:
		for i := range o {
			o[i] = c - y[i]
		}
	case Mul:
		for i := range o {
			o[i] = c * y[i]
		}
	case Div:
		for i := range o {
			o[i] = c / y[i]
		}
	case Max:
		for i := range o {
			o[i] = max(c, y[i])
		}
	case Min:
		for i := range o {
			o[i] = min(c, y[i])
		}
	default:
		panic("kernels: unknown binary op " + op.String())
	}
}

// UnaryOp is an elementwise unary operation.
type UnaryOp int

// The unary operations Unary implements.
const (
	Logistic UnaryOp = iota
	Tanh
)

// Unary computes out = op(x) elementwise, in parallel chunks; out may alias x. Tanh, and Logistic
// on float64, compute in float64 as simplego does (bit-identical); Logistic on float32 computes
// in float32 from a polynomial e^x (logistic32: the C kernel's formula, ≤ 2 ulp from the float64
// result; simplego's float64 math.Exp per element was 17 % of a b0 training step).
func Unary[T Float](op UnaryOp, out, x []T) {
	x = x[:len(out)]
	parallelFor(len(out), 8*len(out), func(lo, hi int) {
		o, in := out[lo:hi], x[lo:hi]
		switch op {
		case Logistic:
			if cLogistic(o, in) {
				return
			}
			if o32, ok := any(o).([]float32); ok {
				logistic32(o32, any(in).([]float32))
				return
			}
			for i, v := range in {
				if v >= 0 {
					o[i] = T(1.0 / (1.0 + math.Exp(-float64(v))))
				} else {
					e := math.Exp(float64(v))
					o[i] = T(e / (1.0 + e))
				}
			}
		case Tanh:
			for i, v := range in {
				o[i] = T(math.Tanh(float64(v)))
			}
		default:
			panic("kernels: unknown unary op")
		}
	})
}

// expNeg32 is simd.h's artnet_exp_neg in Go, operation for operation (the float32 conversions
// keep Go from fusing a product and a sum into one FMA, which C's fp-contract=off forbids too).
func expNeg32(a float32) float32 {
	if a < -87.3 {
		a = -87.3
	}
	fn := float32(float32(a*1.44269504088896341)+12582912.0) - 12582912.0 // round(a/ln2)
	r := a - float32(fn*0.693359375)
	r = r - float32(fn*-2.12194440e-4)
	p := float32(1.9875691500e-4)
	p = float32(p*r) + 1.3981999507e-3
	p = float32(p*r) + 8.3334519073e-3
	p = float32(p*r) + 4.1665795894e-2
	p = float32(p*r) + 1.6666665459e-1
	p = float32(p*r) + 5.0000001201e-1
	y := float32(p*float32(r*r)) + r + 1.0
	return y * math.Float32frombits(uint32((int32(fn)+127)<<23))
}

// logistic32 is simd.h's artnet_logistic in Go.
func logistic32(o, x []float32) {
	x = x[:len(o)]
	for i, v := range x {
		a := -v
		if v < 0 {
			a = v
		}
		e := expNeg32(a)
		d := 1 + e
		if v >= 0 {
			o[i] = 1 / d
		} else {
			o[i] = e / d
		}
	}
}
