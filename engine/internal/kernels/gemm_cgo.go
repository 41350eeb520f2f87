//go:build cgo && !noblas

package kernels

/*
#cgo LDFLAGS: -lopenblas
#include <cblas.h>
*/
import "C"

import (
	"sync"
	"unsafe"
)

// HasBLAS reports whether Gemm runs OpenBLAS (built with cgo and without the noblas tag).
const HasBLAS = true

// OpenBLAS runs single-threaded; Gemm splits the work over goroutines itself. OpenBLAS's own
// threading gave results that differed in the last bits between runs of the same product
// (a resumed training run then drifted from an uninterrupted one); the split here depends only
// on the shapes, so every product is reproducible.
var blasInit = sync.OnceFunc(func() { C.openblas_set_num_threads(1) })

// minParallelMACs is the size (multiply-adds) below which a product isn't split.
const minParallelMACs = 1 << 17

// Gemm computes, for each of batch independent products, c = op(a)·op(b) (overwriting c) with
// row-major matrices: op(a) is m×k (a stored k×m when transA), op(b) is k×n (b stored n×k when
// transB), c is m×n; the batches follow each other in a, b and c (strides m·k, k·n, m·n). It runs
// OpenBLAS's sgemm/dgemm (Debian libopenblas), over both cores.
func Gemm[T Float](transA, transB bool, batch, m, n, k int, a, b, c []T) {
	if batch == 0 || m == 0 || n == 0 {
		return
	}
	if k == 0 {
		clear(c[:batch*m*n])
		return
	}
	blasInit()
	_ = a[batch*m*k-1]
	_ = b[batch*k*n-1]
	_ = c[batch*m*n-1]
	lda, ldb := k, n
	if transA {
		lda = m
	}
	if transB {
		ldb = k
	}
	// block multiplies rows [i0, i1) by columns [j0, j1) of batch element bi.
	block := func(bi, i0, i1, j0, j1 int) {
		ao, bo, co := bi*m*k, bi*k*n, bi*m*n+i0*n+j0
		if transA {
			ao += i0
		} else {
			ao += i0 * k
		}
		if transB {
			bo += j0 * k
		} else {
			bo += j0
		}
		gemmCall(transA, transB, i1-i0, j1-j0, k, &a[ao], lda, &b[bo], ldb, &c[co], n)
	}
	w := workers()
	macs := batch * m * n * k
	switch {
	case w == 1 || macs < minParallelMACs:
		for bi := range batch {
			block(bi, 0, m, 0, n)
		}
	case batch >= w:
		parallelFor(batch, minParallel, func(lo, hi int) {
			for bi := lo; bi < hi; bi++ {
				block(bi, 0, m, 0, n)
			}
		})
	case m >= n:
		for bi := range batch {
			parallelFor(m, minParallel, func(lo, hi int) { block(bi, lo, hi, 0, n) })
		}
	default:
		for bi := range batch {
			parallelFor(n, minParallel, func(lo, hi int) { block(bi, 0, m, lo, hi) })
		}
	}
}

func gemmCall[T Float](transA, transB bool, m, n, k int, a *T, lda int, b *T, ldb int, c *T, ldc int) {
	ta, tb := C.enum_CBLAS_TRANSPOSE(C.CblasNoTrans), C.enum_CBLAS_TRANSPOSE(C.CblasNoTrans)
	if transA {
		ta = C.CblasTrans
	}
	if transB {
		tb = C.CblasTrans
	}
	switch any(*a).(type) {
	case float32:
		C.cblas_sgemm(C.CblasRowMajor, ta, tb, C.blasint(m), C.blasint(n), C.blasint(k), 1,
			(*C.float)(unsafe.Pointer(a)), C.blasint(lda), (*C.float)(unsafe.Pointer(b)), C.blasint(ldb), 0,
			(*C.float)(unsafe.Pointer(c)), C.blasint(ldc))
	case float64:
		C.cblas_dgemm(C.CblasRowMajor, ta, tb, C.blasint(m), C.blasint(n), C.blasint(k), 1,
			(*C.double)(unsafe.Pointer(a)), C.blasint(lda), (*C.double)(unsafe.Pointer(b)), C.blasint(ldb), 0,
			(*C.double)(unsafe.Pointer(c)), C.blasint(ldc))
	default:
		panic("kernels.Gemm: unsupported element type")
	}
}
