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
	l.run(func(o int, off []int) {
		dst := out[o : o+n]
		switch {
		case ia == 1 && ib == 1:
			vv(op, dst, a[off[0]:off[0]+n], b[off[1]:off[1]+n])
		case ia == 1:
			vs(op, dst, a[off[0]:off[0]+n], b[off[1]])
		case ib == 1:
			sv(op, dst, a[off[0]], b[off[1]:off[1]+n])
		default:
			v := scalarOp(op, a[off[0]], b[off[1]])
			for i := range dst {
				dst[i] = v
			}
		}
	})
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

// Unary computes out = op(x) elementwise in float64 (as simplego does, so results are
// bit-identical), in parallel chunks; out may alias x.
func Unary[T Float](op UnaryOp, out, x []T) {
	x = x[:len(out)]
	parallelFor(len(out), 8*len(out), func(lo, hi int) {
		o, in := out[lo:hi], x[lo:hi]
		switch op {
		case Logistic:
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
