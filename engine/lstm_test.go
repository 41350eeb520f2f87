package engine_test

import (
	"testing"

	. "github.com/gomlx/gomlx/pkg/core/graph"
	"github.com/gomlx/gomlx/pkg/ml/context"
	"github.com/gomlx/gomlx/pkg/ml/layers/lstm"
)

// TestBiLSTMGradient checks the gradient of a bidirectional LSTM (its unrolled steps use Slice,
// whose gradient is a Pad) with respect to its input.
func TestBiLSTMGradient(t *testing.T) {
	ctx := context.New()
	x := randArr(50, 2, 3, 2) // [batch, sequence, features]
	fn := func(xs []*Node) *Node {
		all, _, _ := lstm.New(ctx.In("lstm"), xs[0], 3).Direction(lstm.DirBidirectional).Done()
		return all
	}
	// Create the variables once, then reuse them.
	run, done := ctxExec(t, ctx, true)(func(xs []*Node) []*Node { return []*Node{fn(xs)} })
	if _, err := run(x.tensor()); err != nil {
		t.Fatalf("forward: %v", err)
	}
	done()
	ctx = ctx.Reuse()
	checkGradWith(t, ctxExec(t, ctx, true), []arr{x}, fn)
}
