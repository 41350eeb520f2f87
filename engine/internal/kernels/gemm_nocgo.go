//go:build !cgo || noblas

package kernels

// HasBLAS reports whether Gemm runs OpenBLAS: not in this build (no cgo, or the noblas tag);
// graph/ then leaves DotGeneral to simplego.
const HasBLAS = false

// Gemm is unavailable without OpenBLAS; callers check HasBLAS first.
func Gemm[T Float](transA, transB bool, batch, m, n, k int, a, b, c []T) {
	panic("kernels.Gemm: built without OpenBLAS (cgo off or -tags noblas)")
}
