package models

import (
	"fmt"
	"math"

	"github.com/gomlx/gomlx/pkg/core/graph"
	"github.com/gomlx/gomlx/pkg/ml/context"
)

// BiLSTM is PyTorch's nn.LSTM(F, hidden, num_layers=layers, batch_first=True,
// bidirectional=True) with zero initial state, on x [B, T, F]; it returns [B, T, 2·hidden]
// (forward then backward output at each step). ctx is the LSTM module's scope; its variables
// are PyTorch's: weight_ih_l{k}[_reverse] [4H, in], weight_hh_l{k}[_reverse] [4H, H],
// bias_ih_l{k}[_reverse] [4H], bias_hh_l{k}[_reverse] [4H], gate order i, f, g, o, all
// initialized U(±1/√H). The recurrence is unrolled over T.
func BiLSTM(ctx *context.Context, x *Node, hidden, layers int) *Node {
	for k := 0; k < layers; k++ {
		fwd := lstmDirection(ctx, x, hidden, fmt.Sprintf("_l%d", k), false)
		bwd := lstmDirection(ctx, x, hidden, fmt.Sprintf("_l%d_reverse", k), true)
		x = graph.Concatenate([]*Node{fwd, bwd}, 2)
	}
	return x
}

// lstmDirection runs one direction of one layer: x [B, T, F] → [B, T, H].
func lstmDirection(ctx *context.Context, x *Node, hidden int, suffix string, reverse bool) *Node {
	g := x.Graph()
	d := x.Shape().Dimensions
	bsz, steps, in := d[0], d[1], d[2]
	init := uniformInit(ctx, 1/math.Sqrt(float64(hidden)))
	wih := param(ctx, g, "weight_ih"+suffix, init, 4*hidden, in)
	whh := param(ctx, g, "weight_hh"+suffix, init, 4*hidden, hidden)
	bih := param(ctx, g, "bias_ih"+suffix, init, 4*hidden)
	bhh := param(ctx, g, "bias_hh"+suffix, init, 4*hidden)

	// Input contributions of all steps at once: [B, T, 4H].
	xw := graph.DotGeneral(x, []int{2}, nil, wih, []int{1}, nil)
	xw = addLast(xw, graph.Add(bih, bhh))

	outs := make([]*Node, steps)
	var h, c *Node
	for i := 0; i < steps; i++ {
		t := i
		if reverse {
			t = steps - 1 - i
		}
		gates := graph.Reshape(graph.SliceAxis(xw, 1, graph.AxisRange(t, t+1)), bsz, 4*hidden)
		if h != nil {
			gates = graph.Add(gates, graph.DotGeneral(h, []int{1}, nil, whh, []int{1}, nil))
		}
		gate := func(j int) *Node { return graph.SliceAxis(gates, 1, graph.AxisRange(j*hidden, (j+1)*hidden)) }
		ig, fg := graph.Logistic(gate(0)), graph.Logistic(gate(1))
		gg, og := graph.Tanh(gate(2)), graph.Logistic(gate(3))
		if c == nil {
			c = graph.Mul(ig, gg)
		} else {
			c = graph.Add(graph.Mul(fg, c), graph.Mul(ig, gg))
		}
		h = graph.Mul(og, graph.Tanh(c))
		outs[t] = h
	}
	return graph.Stack(outs, 1)
}
