package engine_test

import (
	"testing"
	"time"

	"github.com/artnet/artnet/engine"
	"github.com/gomlx/gomlx/backends"
	. "github.com/gomlx/gomlx/pkg/core/graph"
	"github.com/gomlx/gomlx/pkg/core/tensors"
)

// manyDots is a graph of many independent batched matmuls (the simplego "small" DotGeneral
// path, which splits its batch over the worker pool), summed.
func manyDots(x *Node) *Node {
	var sum *Node
	for i := range 24 {
		y := Einsum("bij,bjk->bik", AddScalar(x, float64(i)), x)
		s := ReduceAllSum(y)
		if sum == nil {
			sum = s
		} else {
			sum = Add(sum, s)
		}
	}
	return sum
}

// runWithin runs exec repeatedly and reports whether it finished within d (a stuck run's
// goroutine is left behind).
func runWithin(t *testing.T, b backends.Backend, repeats int, d time.Duration) bool {
	t.Helper()
	exec, err := NewExec(b, manyDots)
	if err != nil {
		t.Fatal(err)
	}
	x := tensors.FromShape(shapesF32(8, 16, 16))
	done := make(chan error, 1)
	go func() {
		for range repeats {
			if _, err := exec.Exec(x); err != nil {
				done <- err
				return
			}
		}
		done <- nil
	}()
	select {
	case err := <-done:
		if err != nil {
			t.Fatal(err)
		}
		return true
	case <-time.After(d):
		return false
	}
}

// TestNoDeadlock runs many independent batched matmuls on the default "go" backend. simplego's
// parallel op execution ("go:ops_parallel", and simplego's default when one graph runs alone)
// deadlocks on this graph: every worker slot gets taken by a DotGeneral node that then waits
// (WaitToStart) for a free slot for its batch split. NewBackend("go") therefore runs ops
// sequentially (each op still uses the worker pool inside).
func TestNoDeadlock(t *testing.T) {
	b, err := engine.NewBackend("go")
	if err != nil {
		t.Fatal(err)
	}
	defer b.Finalize()
	start := time.Now()
	if !runWithin(t, b, 100, 60*time.Second) {
		t.Fatalf("100 runs of 24 independent batched matmuls did not finish in 60 s: deadlock in parallel op execution")
	}
	t.Logf("100 runs in %s", time.Since(start))
}
