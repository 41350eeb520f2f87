package cpustat

import "time"

// MillisPer returns the process CPU time used since since (an earlier Process()), in
// milliseconds per each of n units of work (the benchmarks' cpu-ms metrics).
func MillisPer(since time.Duration, n int) float64 {
	return float64(Process()-since) / float64(time.Millisecond) / float64(n)
}
