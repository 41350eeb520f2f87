package export

import (
	"testing"

	"github.com/gomlx/gomlx/pkg/core/graph"
	"github.com/gomlx/gomlx/pkg/ml/context"
)

// A fusion whose scope matches nothing (or the wrong shapes) leaves the graph unfused.
func TestLSTMFusionFallsBack(t *testing.T) {
	fn := func(ctx *context.Context, x *graph.Node) []*graph.Node { return []*graph.Node{graph.Tanh(x)} }
	f := &lstmFusion{scope: "/encoder/lstm", hidden: 4, layers: 1}
	m, err := exportGraph(context.New(), "x", []int{3, 5}, fn, []string{"y"}, nil, []*lstmFusion{f})
	if err != nil {
		t.Fatal(err)
	}
	if f.ok {
		t.Error("fusion planned on a graph without its scope")
	}
	if n := m.GetGraph().GetNode(); len(n) != 1 || n[0].GetOpType() != "Tanh" {
		t.Errorf("nodes %v, want one Tanh", n)
	}
}
