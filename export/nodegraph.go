package export

import (
	"slices"

	"github.com/artnet/artnet/onnxpb"
)

// The index of emitted ONNX nodes and the pattern and initializer readers the node passes share.

func (e *emitter) dropRemoved(g *nodeGraph) {
	var kept []*onnxpb.NodeProto
	for _, n := range e.nodes {
		if !g.removed[n] {
			kept = append(kept, n)
		}
	}
	e.nodes = kept
}

// nodeGraph indexes nodes by the values they produce and consume.
type nodeGraph struct {
	producer  map[string]*onnxpb.NodeProto
	uses      map[string]int // consumers of each value (a graph output counts as one)
	consumer  map[string]*onnxpb.NodeProto
	consumers map[string][]*onnxpb.NodeProto
	removed   map[*onnxpb.NodeProto]bool
}

func newNodeGraph(nodes []*onnxpb.NodeProto, outputs []string) *nodeGraph {
	g := &nodeGraph{producer: map[string]*onnxpb.NodeProto{}, uses: map[string]int{},
		consumer: map[string]*onnxpb.NodeProto{}, consumers: map[string][]*onnxpb.NodeProto{}, removed: map[*onnxpb.NodeProto]bool{}}
	for _, n := range nodes {
		for _, o := range n.Output {
			g.producer[o] = n
		}
		for _, in := range n.Input {
			g.uses[in]++
			g.consumer[in] = n
			g.consumers[in] = append(g.consumers[in], n)
		}
	}
	for _, o := range outputs {
		g.uses[o]++
		delete(g.consumer, o)
	}
	return g
}

// soleConsumer returns the only consumer of v (nil if v has none, several, or is an output).
func (g *nodeGraph) soleConsumer(v string) *onnxpb.NodeProto {
	if g.uses[v] != 1 {
		return nil
	}
	return g.consumer[v]
}

// soleProducer returns the node producing v when it is an op node whose only consumer is into
// (nil otherwise).
func (g *nodeGraph) soleProducer(v, op string, into *onnxpb.NodeProto) *onnxpb.NodeProto {
	n := g.producer[v]
	if n == nil || n.GetOpType() != op || g.soleConsumer(n.Output[0]) != into {
		return nil
	}
	return n
}

// imageShape returns the recorded shape of x when it is an image batch [B,C,H,W] (the batch
// dimension the only one that differs between the two recordings).
func (e *emitter) imageShape(shapes map[string]valueShape, x string) (valueShape, bool) {
	xs, ok := shapes[x]
	if !ok || len(xs.a) != 4 || len(xs.b) != 4 || xs.a[0] != e.batchA || xs.b[0] != e.batchB ||
		!slices.Equal(xs.a[1:], xs.b[1:]) {
		return xs, false
	}
	return xs, true
}

// valueShape is a value's recorded dims at the two batch sizes.
type valueShape struct{ a, b []int }

// valueShapes returns the recorded shapes of the values that stand for recorded ops.
func (e *emitter) valueShapes() map[string]valueShape {
	out := map[string]valueShape{}
	for id, name := range e.vals {
		if r, ok := e.renamed[name]; ok {
			name = r
		}
		out[name] = valueShape{e.a[id].shape.Dimensions, e.b[id].shape.Dimensions}
	}
	return out
}

// floatInit returns the float32 data and dims of initializer name (not yet moved to raw_data).
func (e *emitter) floatInit(name string) ([]float32, []int64, bool) {
	t := e.initByName[name]
	if t == nil || t.GetDataType() != int32(onnxpb.TensorProto_FLOAT) || len(t.RawData) > 0 {
		return nil, nil, false
	}
	n := int64(1)
	for _, d := range t.Dims {
		n *= d
	}
	if int64(len(t.FloatData)) != n {
		return nil, nil, false
	}
	return t.FloatData, t.Dims, true
}

// intsInit returns the data of a 1-D int64 initializer.
func (e *emitter) intsInit(name string) ([]int64, bool) {
	t := e.initByName[name]
	if t == nil || t.GetDataType() != int32(onnxpb.TensorProto_INT64) || len(t.RawData) > 0 ||
		len(t.Dims) != 1 || int64(len(t.Int64Data)) != t.Dims[0] {
		return nil, false
	}
	return t.Int64Data, true
}

func attrOf(n *onnxpb.NodeProto, name string) *onnxpb.AttributeProto {
	for _, a := range n.Attribute {
		if a.GetName() == name {
			return a
		}
	}
	return nil
}
