//go:build !unix

package benchmark

// processCPUSeconds is not measured on this system.
func processCPUSeconds() float64 { return 0 }
