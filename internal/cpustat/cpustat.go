//go:build unix

// Package cpustat reads the CPU time the process has used, for benchmarks that report CPU per
// unit of work: on a shared machine, wall time measures the load as much as the code.
package cpustat

import (
	"syscall"
	"time"
)

// Process returns the user + system CPU time used so far by all threads of the process (C
// threads and ONNX Runtime's pools included), or 0 where getrusage fails.
func Process() time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}
