// Package export writes GoMLX graphs — DeepArtNet in particular — as ONNX models (opset 17,
// IR version 8).
//
// The exporter is a recording GoMLX backend: building a graph with it calls one Builder method per
// op, and each call is recorded (with its shape, computed by backends/shapeinference or by hand)
// instead of computed. The recording is then translated op by op into ONNX nodes; variables of
// the context become initializers.
//
// The batch size is a number inside a recorded graph (Reshape dims, Slice limits, broadcast
// shapes). The graph is therefore recorded twice, at batch sizes 3 and 5, and compared op by op:
// where a number differs, the batch-agnostic ONNX form is written (Reshape with -1, full-range
// Slice axes left out, Expand to a shape computed from Shape(input)), so that the input's first
// dimension is the symbolic "batch".
//
// Trivial constants are folded at export time: transposes and reshapes of weights, float32
// elementwise ops on weights (batch-norm scale and shift), small constant broadcasts; dead nodes
// and unused initializers are dropped.
//
// Rewrites are an ordered list of passes (passes.go, one file per rewrite): on the recording,
// Model replaces DeepArtNet's unrolled BiLSTM by one ONNX LSTM node per layer (lstm.go); on the
// emitted nodes, each 1×1 convolution recorded as a batched matrix product (Reshape → MatMul →
// Reshape) becomes one ONNX Conv, the token projection Conv → Reshape → Transpose,
// squeeze-excitation (a spatial mean, dense layers on [B,C], a Reshape to [B,C,1,1])
// GlobalAveragePool and 1×1 Convs, per-channel constant Mul/Add/Sub chains after any Conv
// (inference batch norms, biases) fold into its weight and bias, and Max(x, 0) becomes Relu — so
// that ONNX Runtime runs the backbone as Convs as it would PyTorch's export. Each rewrite matches
// its pattern exactly (shapes, initializer dims, sole consumers) and otherwise leaves the nodes.
//
// ONNX node names keep the GoMLX scope of the most recent variable used when the op was
// recorded (a heuristic: the backend does not see scopes), e.g. "/backbone/features/0/0/Conv_21"
// for the stem's convolution (torchvision's features.0.0; TestNodeNamesAsDocumented).
package export

import (
	"errors"
	"fmt"
	"slices"
	"sort"

	"github.com/gomlx/gomlx/pkg/core/dtypes"
	"github.com/gomlx/gomlx/pkg/core/graph"
	"github.com/gomlx/gomlx/pkg/core/shapes"
	"github.com/gomlx/gomlx/pkg/ml/context"
	"google.golang.org/protobuf/proto"

	"github.com/artnet/artnet/internal/atomicfile"
	"github.com/artnet/artnet/internal/errtext"
	"github.com/artnet/artnet/models/spec"
	"github.com/artnet/artnet/onnxpb"
)

// Batch sizes at which graphs are recorded; chosen unlikely to coincide with other dimensions.
const (
	recordBatchA = 3
	recordBatchB = 5
)

// BatchDimName is the symbolic name of the batch dimension of inputs and outputs.
const BatchDimName = "batch"

// Graph records fn — which builds outputs from one input node — and returns the ONNX model with
// input `inputName` of shape [batch, inputShape...] (batch symbolic), the given output names,
// variables of ctx as initializers, and the metadata props.
//
// Variables must already hold values in ctx (loaded from a checkpoint or initialized); fn is
// called with ctx.Reuse(), so it cannot create new ones. The input is float32.
func Graph(ctx *context.Context, inputName string, inputShape []int,
	fn func(ctx *context.Context, x *graph.Node) []*graph.Node,
	outputNames []string, meta map[string]string) (*onnxpb.ModelProto, error) {
	return exportGraph(ctx, inputName, inputShape, fn, outputNames, meta, nil)
}

// exportGraph is Graph with optional LSTM fusions (see lstmFusion).
func exportGraph(ctx *context.Context, inputName string, inputShape []int,
	fn func(ctx *context.Context, x *graph.Node) []*graph.Node,
	outputNames []string, meta map[string]string, fusions []*lstmFusion) (*onnxpb.ModelProto, error) {
	if ctx == nil || fn == nil {
		return nil, errors.New("export: nil context or model function")
	}
	if inputName == "" {
		return nil, errors.New("export: empty input name")
	}
	for i, d := range inputShape {
		if d <= 0 {
			return nil, fmt.Errorf("export: input %q: dimension %d is %d, must be > 0", inputName, i+1, d)
		}
	}
	if len(outputNames) == 0 {
		return nil, errors.New("export: no output names")
	}
	seen := map[string]bool{inputName: true}
	for _, n := range outputNames {
		if n == "" || seen[n] {
			return nil, fmt.Errorf("export: output name %q empty or repeated (or equal to the input name)", n)
		}
		seen[n] = true
	}

	ra, err := record(ctx, recordBatchA, inputName, inputShape, fn, len(outputNames))
	if err != nil {
		return nil, err
	}
	rb, err := record(ctx, recordBatchB, inputName, inputShape, fn, len(outputNames))
	if err != nil {
		return nil, err
	}
	e, err := newEmitter(ctx, ra, rb, recordBatchA, recordBatchB, inputName)
	if err != nil {
		return nil, err
	}
	x := &exportRun{e: e, rec: ra, outputs: outputNames}
	ps := passes(fusions)
	for _, p := range ps {
		if p.onRecording() {
			p.run(x)
		}
	}
	outVals := make([]string, len(outputNames))
	for i, o := range ra.outputs {
		if outVals[i], err = e.value(o.id); err != nil {
			return nil, err
		}
	}
	g := &onnxpb.GraphProto{Name: ptr("artnet")}
	g.Input = []*onnxpb.ValueInfoProto{valueInfo(inputName, onnxpb.TensorProto_FLOAT,
		append([]int{-1}, inputShape...), append([]string{BatchDimName}, make([]string, len(inputShape))...))}

	// Name outputs: rename the producing node's output when possible, else add an Identity.
	produced := map[string]*onnxpb.NodeProto{}
	for _, n := range e.nodes {
		produced[n.Output[0]] = n
	}
	renamed := map[string]string{}
	used := map[string]bool{}
	for i, v := range outVals {
		n, ok := produced[v]
		if ok && !used[v] {
			renamed[v] = outputNames[i]
			n.Output[0] = outputNames[i]
		} else {
			e.nodes = append(e.nodes, &onnxpb.NodeProto{Name: ptr(outputNames[i] + "/Identity"), OpType: ptr("Identity"),
				Input: []string{v}, Output: []string{outputNames[i]}})
		}
		used[v] = true
	}
	for _, n := range e.nodes {
		for j, in := range n.Input {
			if r, ok := renamed[in]; ok {
				n.Input[j] = r
			}
		}
	}
	for i, o := range ra.outputs {
		ob := rb.outputs[i]
		dt, err := onnxDType(o.shape.DType)
		if err != nil {
			return nil, fmt.Errorf("export: output %q: %v", outputNames[i], err)
		}
		dims := slices.Clone(o.shape.Dimensions)
		params := make([]string, len(dims))
		for j := range dims {
			if dims[j] != ob.shape.Dimensions[j] {
				if dims[j] == recordBatchA && ob.shape.Dimensions[j] == recordBatchB {
					params[j] = BatchDimName
				}
				dims[j] = -1
			}
		}
		g.Output = append(g.Output, valueInfo(outputNames[i], dt, dims, params))
	}
	e.prune(outputNames)
	e.renamed = renamed
	x.shapes = e.valueShapes()
	for _, p := range ps {
		if !p.onRecording() {
			p.run(x)
		}
	}
	e.prune(outputNames)
	e.rawFloats()
	g.Node, g.Initializer = e.nodes, e.inits

	m := &onnxpb.ModelProto{
		IrVersion:       ptr(int64(IRVersion)),
		OpsetImport:     []*onnxpb.OperatorSetIdProto{{Domain: ptr(""), Version: ptr(int64(OpsetVersion))}},
		ProducerName:    ptr("artnet"),
		ProducerVersion: ptr(spec.Version),
		Graph:           g,
	}
	keys := make([]string, 0, len(meta))
	for k := range meta {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	for _, k := range keys {
		m.MetadataProps = append(m.MetadataProps, &onnxpb.StringStringEntryProto{Key: ptr(k), Value: ptr(meta[k])})
	}
	return m, nil
}

// record builds the graph on the recording backend at the given batch size.
func record(ctx *context.Context, batch int, inputName string, inputShape []int,
	fn func(ctx *context.Context, x *graph.Node) []*graph.Node, numOutputs int) (r *recorder, err error) {
	be := &recBackend{}
	defer func() {
		if p := recover(); p != nil {
			if be.last != nil && be.last.err != nil {
				err = be.last.err
				return
			}
			err = fmt.Errorf("export: building the graph at batch %d: %s", batch, errtext.Fold(fmt.Sprint(p)))
		}
	}()
	g := graph.NewGraph(be, "export")
	x := graph.Parameter(g, inputName, shapes.Make(dtypes.Float32, append([]int{batch}, inputShape...)...))
	outs := fn(ctx.Reuse(), x)
	if len(outs) != numOutputs {
		return nil, fmt.Errorf("export: the model function returned %d outputs, %d output names given", len(outs), numOutputs)
	}
	for i, o := range outs {
		if o == nil {
			return nil, fmt.Errorf("export: output #%d is nil", i)
		}
	}
	g.Compile(outs...)
	if be.last == nil {
		return nil, errors.New("export: the graph recorded nothing")
	}
	if be.last.err != nil {
		return nil, be.last.err
	}
	return be.last, nil
}

// WriteFile writes any ONNX model m to path atomically (internal/atomicfile, mode 0644). An
// artnet model goes through WriteModel, which also checks it.
func WriteFile(path string, m *onnxpb.ModelProto) error {
	data, err := marshal(path, m)
	if err != nil {
		return err
	}
	if err := atomicfile.WriteFile(path, data, 0o644); err != nil {
		return fmt.Errorf("export: %w", err)
	}
	return nil
}

func marshal(path string, m *onnxpb.ModelProto) ([]byte, error) {
	if m == nil {
		return nil, fmt.Errorf("export: write %s: nil model", path)
	}
	data, err := proto.Marshal(m)
	if err != nil {
		return nil, fmt.Errorf("export: write %s: %v", path, err)
	}
	return data, nil
}
