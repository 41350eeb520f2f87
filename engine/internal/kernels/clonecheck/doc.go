// Package clonecheck compiles artnet's C kernels (kernels/simd.h) for one x86-64 level only —
// AVX2, or the baseline (SSE2) — so that a test on a machine whose CPU picks another clone (this
// project's AVX-512 VM picks the AVX-512 one) still runs the code an AVX2-only or an older CPU
// would, and compares its bits with the kernels package's. Nothing but its test uses it; without
// cgo or off amd64 the package is empty.
package clonecheck
