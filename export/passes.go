package export

import (
	"slices"

	"github.com/artnet/artnet/onnxpb"
)

// A pass is one rewrite of an exported graph. exportGraph runs the list passes returns, in that
// order: the passes on the recording (subgraph replacements planned before any ONNX node is
// written: the LSTM fusion) first, then the ONNX nodes are emitted, then the passes on the
// emitted nodes — graph-level rewrites that ONNX Runtime cannot do itself (it fuses
// Conv+BatchNormalization and Conv+Add(bias), but not a MatMul written for a 1×1 convolution,
// nor per-channel Mul/Add after a Conv). Every rewrite checks its pattern exactly — values,
// shapes, initializer dims and consumers — and leaves the graph as it is otherwise. One file per
// rewrite: lstm.go, pass_pointwise.go, pass_tokens.go, pass_pooled.go, pass_affine.go,
// pass_relu.go.
type pass interface {
	name() string
	// onRecording says the pass runs on the recording, before emission.
	onRecording() bool
	run(x *exportRun)
}

// exportRun is what the passes of one export read and rewrite.
type exportRun struct {
	e       *emitter
	rec     *recorder             // batch-A recording (passes on the recording)
	outputs []string              // the graph's output names (values that keep their producer)
	shapes  map[string]valueShape // recorded shapes of emitted values (node passes)
}

// passes is the order of the rewrites: the model's LSTM fusions, then on the emitted nodes
// 1×1 convolutions (pointwise, then the token projection), squeeze-excitation's pooled layers
// (before affine folding, so that their biases fold into their Convs), affine folding into
// Convs, and Relu.
func passes(lstm []*lstmFusion) []pass {
	ps := make([]pass, 0, len(lstm)+5)
	for _, f := range lstm {
		ps = append(ps, f)
	}
	return append(ps, pointwisePass, tokensPass, pooledPass, affinePass, reluPass)
}

// nodePass applies a rewrite to every emitted node of one op type (in node order, nodes the
// rewrite bypassed skipped), then drops the nodes it removed, and with prune the nodes no output
// needs any more.
type nodePass struct {
	label string
	op    string
	apply func(e *emitter, g *nodeGraph, shapes map[string]valueShape, n *onnxpb.NodeProto)
	prune bool
}

func (p nodePass) name() string      { return p.label }
func (p nodePass) onRecording() bool { return false }

func (p nodePass) run(x *exportRun) {
	g := newNodeGraph(x.e.nodes, x.outputs)
	for _, n := range slices.Clone(x.e.nodes) {
		if n.GetOpType() == p.op && !g.removed[n] {
			p.apply(x.e, g, x.shapes, n)
		}
	}
	x.e.dropRemoved(g)
	if p.prune {
		x.e.prune(x.outputs)
	}
}
