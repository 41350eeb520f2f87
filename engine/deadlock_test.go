package engine_test

import (
	"slices"
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
// parallel op execution with its bounded worker pool ("go:ops_parallel", and simplego's default
// when one graph runs alone) deadlocked on this graph: every worker slot got taken by a
// DotGeneral node that then waited (WaitToStart) for a free slot for its batch split.
// NewBackend("go") runs ops in parallel with the pool unlimited (opsparallel.go), where
// WaitToStart never blocks.
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

// TestParallelOpsSameBits: "go" runs independent ops concurrently (ParallelOpsError is nil) and
// gives the same bits as "go:ops_sequential" on a wide graph of products, elementwise ops and
// reductions, run after run (a training run must not depend on the schedule).
func TestParallelOpsSameBits(t *testing.T) {
	if err := engine.ParallelOpsError(); err != nil {
		t.Fatal(err)
	}
	run := func(config string) []float32 {
		b, err := engine.NewBackend(config)
		if err != nil {
			t.Fatal(err)
		}
		defer b.Finalize()
		exec, err := NewExec(b, func(x *Node) *Node {
			var parts []*Node
			for i := range 16 {
				y := Einsum("bij,bjk->bik", Sigmoid(AddScalar(x, float64(i))), x)
				parts = append(parts, ReduceSum(Mul(y, y), 0))
			}
			return Concatenate(parts, 0)
		})
		if err != nil {
			t.Fatal(err)
		}
		x := tensors.FromShape(shapesF32(8, 64, 64))
		tensors.MutableFlatData(x, func(v []float32) {
			for i := range v {
				v[i] = float32(i%97)/97 - 0.5
			}
		})
		var out []float32
		for range 5 {
			flat, err := tensors.CopyFlatData[float32](exec.MustExec(x)[0])
			if err != nil {
				t.Fatal(err)
			}
			if out != nil && !slices.Equal(out, flat) {
				t.Fatalf("%s: two runs of the same graph differ", config)
			}
			out = flat
		}
		return out
	}
	par, seq := run("go"), run("go:ops_sequential")
	if !slices.Equal(par, seq) {
		t.Fatal(`"go" (parallel ops) and "go:ops_sequential" give different results`)
	}
}
