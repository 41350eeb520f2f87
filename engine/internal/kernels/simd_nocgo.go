//go:build !cgo

package kernels

// HasSIMD reports whether the float32 kernels of simd.h (C, vectorized by GCC) are built in: not
// without cgo; the Go loops, which compute the same bits, run instead.
const HasSIMD = false

// simdMin is simd_cgo.go's threshold (unused here: nothing runs in C).
const simdMin = 64

func cBinary[T Float](op BinaryOp, o, x, y []T, cx, cy T) bool { return false }

func cLogistic[T Float](o, x []T) bool { return false }

func cDepthwiseForward[T Float](out, x, w []T, p Conv2DParams, cols []colRange, lo, hi int) bool {
	return false
}

func cDepthwiseFilterGrad[T Float](dw, x, g []T, p Conv2DParams, lo, hi int) bool { return false }

func cSum[T Float](x []T) (T, bool) { return 0, false }

func cFused(out []float32, leaves []Leaf, code []Instr, lo, hi int) bool { return false }
