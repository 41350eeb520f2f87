//go:build cgo && !noblas

package kernels

/*
#cgo LDFLAGS: -lopenblas
#include <cblas.h>
*/
import "C"

import "unsafe"

// HasBLAS reports whether Gemm runs OpenBLAS (built with cgo and without the noblas tag).
const HasBLAS = true

// Gemm computes, for each of batch independent products, c = op(a)·op(b) (overwriting c) with
// row-major matrices: op(a) is m×k (a stored k×m when transA), op(b) is k×n (b stored n×k when
// transB), c is m×n; the batches follow each other in a, b and c (strides m·k, k·n, m·n). It runs
// OpenBLAS's sgemm/dgemm (Debian libopenblas, threads: both cores).
func Gemm[T Float](transA, transB bool, batch, m, n, k int, a, b, c []T) {
	if batch == 0 || m == 0 || n == 0 {
		return
	}
	if k == 0 {
		clear(c[:batch*m*n])
		return
	}
	ta, tb := C.enum_CBLAS_TRANSPOSE(C.CblasNoTrans), C.enum_CBLAS_TRANSPOSE(C.CblasNoTrans)
	lda, ldb := k, n
	if transA {
		ta, lda = C.CblasTrans, m
	}
	if transB {
		tb, ldb = C.CblasTrans, k
	}
	_ = a[batch*m*k-1]
	_ = b[batch*k*n-1]
	_ = c[batch*m*n-1]
	var zero T
	switch any(zero).(type) {
	case float32:
		for i := range batch {
			C.cblas_sgemm(C.CblasRowMajor, ta, tb, C.blasint(m), C.blasint(n), C.blasint(k), 1,
				(*C.float)(unsafe.Pointer(&a[i*m*k])), C.blasint(lda),
				(*C.float)(unsafe.Pointer(&b[i*k*n])), C.blasint(ldb), 0,
				(*C.float)(unsafe.Pointer(&c[i*m*n])), C.blasint(n))
		}
	case float64:
		for i := range batch {
			C.cblas_dgemm(C.CblasRowMajor, ta, tb, C.blasint(m), C.blasint(n), C.blasint(k), 1,
				(*C.double)(unsafe.Pointer(&a[i*m*k])), C.blasint(lda),
				(*C.double)(unsafe.Pointer(&b[i*k*n])), C.blasint(ldb), 0,
				(*C.double)(unsafe.Pointer(&c[i*m*n])), C.blasint(n))
		}
	default:
		panic("kernels.Gemm: unsupported element type")
	}
}
