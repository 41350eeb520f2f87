package engine

import (
	"fmt"
	"reflect"
	"sync"
	"sync/atomic"
	"unsafe"

	"github.com/gomlx/gomlx/backends/simplego"

	"github.com/artnet/artnet/internal/layout"
)

// Parallel op execution. simplego runs the ready nodes of a graph concurrently on its worker
// pool ("ops_parallel"), and its own executors (DotGeneral, Erf, …) split their work over the
// same pool with WaitToStart, which blocks while the pool is full: when every slot holds a node
// that waits for a slot for its own chunks, the run deadlocks (TestNoDeadlock's graph did, with
// the pool at its default size of one slot per CPU). artnet's kernels do not use the pool (they
// split work over goroutines of their own, by shape), so "go" runs ops in parallel with the pool
// unlimited: WaitToStart then never blocks, no deadlock is possible, and the number of running
// goroutines is bounded by the graph's width. Measured: b0 at 128 px, batch 8, training step
// 1.51–1.55 → 1.74 cores busy, 10–15 % less wall time (bench/README.md). Results do not depend
// on the schedule: every kernel's split depends on shapes only.
//
// simplego sets an unlimited pool only through its "parallelism=-1" option, which prints a line
// on standard output (breaking `artnet bench --json`, `predict --json`); artnet sets the field
// through a mirror of the first fields of simplego.Backend instead, checked like the others.

// sgBackendPrefix mirrors the first fields of simplego.Backend (v0.26.0).
type sgBackendPrefix struct {
	bufferPools sync.Map
	workers     sgWorkersPool
}

// sgWorkersPool mirrors simplego.workersPool (v0.26.0).
type sgWorkersPool struct {
	maxParallelism   int
	mu               sync.Mutex
	cond             sync.Cond
	numRunning       int
	extraParallelism atomic.Int32
}

var (
	sgBackendFields = []string{"bufferPools sync.Map", "workers simplego.workersPool"}
	sgWorkersFields = []string{
		"maxParallelism int", "mu sync.Mutex", "cond sync.Cond", "numRunning int", "extraParallelism atomic.Int32",
	}
)

// unlimitedWorkersErr is why the worker pool can't be made unlimited (then "go" runs ops
// sequentially, as before); nil when it can.
var unlimitedWorkersErr = func() error {
	real := reflect.TypeFor[simplego.Backend]()
	if err := layout.CheckPrefix(real, reflect.TypeFor[sgBackendPrefix](), sgBackendFields); err != nil {
		return fmt.Errorf("parallel op execution disabled: GoMLX simplego layout changed (artnet is pinned to gomlx v0.26.0): %w", err)
	}
	if err := layout.Check(real.Field(1).Type, reflect.TypeFor[sgWorkersPool](), sgWorkersFields); err != nil {
		return fmt.Errorf("parallel op execution disabled: GoMLX simplego layout changed (artnet is pinned to gomlx v0.26.0): %w", err)
	}
	return nil
}()

// ParallelOpsError returns nil when "go" runs independent ops concurrently, or why it runs them
// one after another.
func ParallelOpsError() error { return unlimitedWorkersErr }

// setUnlimitedWorkers makes b's worker pool unlimited; b must not have run anything yet.
func setUnlimitedWorkers(b *simplego.Backend) {
	(*sgBackendPrefix)(unsafe.Pointer(b)).workers.maxParallelism = -1
}
