// Package kernels holds artnet's CPU kernels for the pure-Go GoMLX backend: plain functions on
// flat row-major slices, with no GoMLX types, so they can be tested and benchmarked alone.
// graph/ installs them into simplego's executor table (see engine/fastexec.go).
//
// Every kernel keeps the floating-point operation order of the simplego executor it replaces
// (elementwise ops are exact; sums accumulate each output in the operand's row-major order),
// so results are bit-identical to the reference implementation unless documented otherwise.
package kernels

import (
	"runtime"
	"sync"
)

// Float is the element type the kernels are written for.
type Float interface{ ~float32 | ~float64 }

// forceGo makes every kernel run its Go loop even where simd.h's C loop is built in (tests
// compare the two; never set outside tests).
var forceGo bool

// minParallel is the number of elements below which a kernel runs on the calling goroutine only.
const minParallel = 1 << 15

// workers is the number of goroutines a large kernel is split over (both cores here).
func workers() int { return max(1, runtime.GOMAXPROCS(0)) }

// parallelFor calls fn on disjoint [lo, hi) chunks covering [0, n), concurrently when work (the
// number of elements touched in total) is large enough, and returns when all calls are done.
func parallelFor(n, work int, fn func(lo, hi int)) {
	w := workers()
	if n <= 1 || w == 1 || work < minParallel {
		fn(0, n)
		return
	}
	w = min(w, n)
	var wg sync.WaitGroup
	for i := range w {
		lo, hi := n*i/w, n*(i+1)/w
		if i == w-1 {
			fn(lo, hi)
			continue
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			fn(lo, hi)
		}()
	}
	wg.Wait()
}

// rowStrides returns the row-major strides of dims.
func rowStrides(dims []int) []int {
	s := make([]int, len(dims))
	st := 1
	for i := len(dims) - 1; i >= 0; i-- {
		s[i] = st
		st *= dims[i]
	}
	return s
}

// broadcastStrides returns the strides with which an operand of dims (same rank as out, each
// dim equal to out's or 1) is read when broadcast to out: 0 along broadcast axes.
func broadcastStrides(dims, out []int) []int {
	s := rowStrides(dims)
	for i := range dims {
		if dims[i] != out[i] {
			s[i] = 0
		}
	}
	return s
}

// stridedLoop is a row-major iteration over an output of dims, reading up to two operands with
// the given strides, after dropping size-1 axes and merging axes that are contiguous for every
// operand. The innermost (merged) axis has length n and operand increments inc[k] (0 or 1 for
// broadcast operands).
type stridedLoop struct {
	dims    []int   // outer axes (outermost first), innermost excluded
	strides [][]int // per operand: strides of the outer axes
	n       int     // length of the innermost axis
	inc     []int   // per operand: stride of the innermost axis
	rows    int     // product of dims
}

func newStridedLoop(out []int, operandStrides ...[]int) *stridedLoop {
	type axis struct {
		d int
		s []int
	}
	var merged []axis // innermost first
	for i := len(out) - 1; i >= 0; i-- {
		if out[i] == 1 {
			continue
		}
		s := make([]int, len(operandStrides))
		for k := range operandStrides {
			s[k] = operandStrides[k][i]
		}
		if len(merged) > 0 {
			last := &merged[len(merged)-1]
			ok := true
			for k := range s {
				if s[k] != last.s[k]*last.d {
					ok = false
					break
				}
			}
			if ok {
				last.d *= out[i]
				continue
			}
		}
		merged = append(merged, axis{out[i], s})
	}
	l := &stridedLoop{n: 1, inc: make([]int, len(operandStrides)), rows: 1, strides: make([][]int, len(operandStrides))}
	if len(merged) == 0 {
		return l
	}
	l.n, l.inc = merged[0].d, merged[0].s
	for i := len(merged) - 1; i >= 1; i-- {
		l.dims = append(l.dims, merged[i].d)
		l.rows *= merged[i].d
		for k := range operandStrides {
			l.strides[k] = append(l.strides[k], merged[i].s[k])
		}
	}
	return l
}

// run calls fn for every row: the output offset (rows are contiguous in the output) and each
// operand's offset, in parallel chunks of rows when the output is large.
func (l *stridedLoop) run(fn func(outOff int, off []int)) {
	parallelFor(l.rows, l.rows*l.n, func(lo, hi int) {
		nOp := len(l.strides)
		idx := make([]int, len(l.dims))
		off := make([]int, nOp)
		// Position of row lo.
		r := lo
		for i := len(l.dims) - 1; i >= 0; i-- {
			idx[i] = r % l.dims[i]
			r /= l.dims[i]
			for k := range nOp {
				off[k] += idx[i] * l.strides[k][i]
			}
		}
		for row := lo; row < hi; row++ {
			fn(row*l.n, off)
			// Advance the odometer.
			for i := len(l.dims) - 1; i >= 0; i-- {
				idx[i]++
				for k := range nOp {
					off[k] += l.strides[k][i]
				}
				if idx[i] < l.dims[i] {
					break
				}
				for k := range nOp {
					off[k] -= idx[i] * l.strides[k][i]
				}
				idx[i] = 0
			}
		}
	})
}

// BroadcastCopy writes operand (dims, same rank as outDims, each equal or 1) broadcast to
// outDims into out.
func BroadcastCopy[T any](out, operand []T, outDims, dims []int) {
	l := newStridedLoop(outDims, broadcastStrides(dims, outDims))
	n, inc := l.n, l.inc[0]
	l.run(func(o int, off []int) {
		dst := out[o : o+n]
		if inc == 0 {
			fill(dst, operand[off[0]])
			return
		}
		copy(dst, operand[off[0]:off[0]+n])
	})
}

// fill sets every element of dst to v: a few stores, then copies doubling in length (copy is
// the runtime's vectorized memmove; a store loop in Go writes one element per instruction).
func fill[T any](dst []T, v T) {
	k := min(len(dst), 16)
	for i := range k {
		dst[i] = v
	}
	for ; k < len(dst); k *= 2 {
		copy(dst[k:], dst[:k])
	}
}

// Transpose writes operand (dims) with its axes permuted into out: out's axis i is operand's
// axis perm[i] (GoMLX's Transpose). Rows are copied with the operand's stride along out's
// innermost axis.
func Transpose[T any](out, operand []T, dims, perm []int) {
	st := rowStrides(dims)
	outDims := make([]int, len(perm))
	ps := make([]int, len(perm))
	for i, p := range perm {
		outDims[i], ps[i] = dims[p], st[p]
	}
	l := newStridedLoop(outDims, ps)
	n, inc := l.n, l.inc[0]
	l.run(func(o int, off []int) {
		dst := out[o : o+n]
		if inc == 1 {
			copy(dst, operand[off[0]:off[0]+n])
			return
		}
		src := operand[off[0]:]
		for i := range dst {
			dst[i] = src[i*inc]
		}
	})
}
