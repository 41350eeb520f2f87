package calibrate

import (
	"fmt"
	"maps"
	"math"
	"slices"

	"google.golang.org/protobuf/proto"

	"github.com/artnet/artnet/models/spec"
	"github.com/artnet/artnet/onnxpb"
)

// Name suffixes of what Apply adds to a task's output (e.g. "style/uncalibrated").
const (
	suffixRaw   = "/uncalibrated"
	suffixLog   = "/calibration/log"
	suffixScale = "/calibration/inv_temperature"
	suffixMul   = "/calibration/scaled"
)

// Apply scales the outputs of an artnet ONNX model by the temperatures (task → T; tasks not
// named keep theirs) and returns the new model. In the graph each scaled task's softmax output
// p becomes Softmax(Log(p) · 1/T); a model calibrated before keeps one such chain whose
// constant becomes 1/(T_before·T), and the metadata records the product
// (spec.Config.Temperature, spec.MetaTemperature). The result is validated against the artnet
// contract (spec.ValidateONNX) before it is returned.
func Apply(name string, model []byte, temps map[string]float64) ([]byte, error) {
	var m onnxpb.ModelProto
	if err := proto.Unmarshal(model, &m); err != nil {
		return nil, fmt.Errorf("calibrate: %s: not an ONNX model: %v", name, err)
	}
	meta := map[string]string{}
	for _, p := range m.MetadataProps {
		meta[p.GetKey()] = p.GetValue()
	}
	cfg, err := spec.FromMetadata(meta)
	if err != nil {
		return nil, fmt.Errorf("calibrate: %s: %v", name, err)
	}
	g := m.Graph
	if g == nil {
		return nil, fmt.Errorf("calibrate: %s: the model has no graph", name)
	}
	total := maps.Clone(cfg.Temperature)
	if total == nil {
		total = map[string]float64{}
	}
	for _, task := range spec.Tasks {
		t, ok := temps[task]
		if !ok {
			continue
		}
		if !(t > 0) || math.IsInf(t, 0) {
			return nil, fmt.Errorf("calibrate: temperature of %s: must be a finite number > 0, got %g", task, t)
		}
		before, had := total[task]
		if !had {
			before = 1
		}
		total[task] = before * t
		inv := float32(1 / total[task])
		if init := initializer(g, task+suffixScale); init != nil {
			init.FloatData, init.RawData = []float32{inv}, nil
			continue
		}
		var producer *onnxpb.NodeProto
		for _, n := range g.Node {
			for k, o := range n.Output {
				if o == task {
					producer = n
					n.Output[k] = task + suffixRaw
				}
			}
		}
		if producer == nil {
			return nil, fmt.Errorf("calibrate: %s: no node produces the output %q", name, task)
		}
		g.Initializer = append(g.Initializer, &onnxpb.TensorProto{Name: proto.String(task + suffixScale),
			DataType: proto.Int32(int32(onnxpb.TensorProto_FLOAT)), FloatData: []float32{inv}})
		node := func(name, op string, in []string, out string) *onnxpb.NodeProto {
			return &onnxpb.NodeProto{Name: proto.String(name), OpType: proto.String(op), Input: in, Output: []string{out}}
		}
		softmax := node(task+"/calibration/softmax", "Softmax", []string{task + suffixMul}, task)
		softmax.Attribute = []*onnxpb.AttributeProto{{Name: proto.String("axis"), Type: onnxpb.AttributeProto_INT.Enum(), I: proto.Int64(-1)}}
		g.Node = append(g.Node,
			node(task+suffixLog, "Log", []string{task + suffixRaw}, task+suffixLog),
			node(task+suffixMul, "Mul", []string{task + suffixLog, task + suffixScale}, task+suffixMul),
			softmax)
	}
	cfg.Temperature = total
	if len(total) == 0 {
		cfg.Temperature = nil
	}
	want := cfg.Metadata()
	kept := m.MetadataProps[:0]
	for _, p := range m.MetadataProps {
		if _, ours := want[p.GetKey()]; !ours && p.GetKey() != spec.MetaTemperature {
			kept = append(kept, p)
		}
	}
	m.MetadataProps = kept
	for _, k := range slices.Sorted(maps.Keys(want)) {
		m.MetadataProps = append(m.MetadataProps, &onnxpb.StringStringEntryProto{Key: proto.String(k), Value: proto.String(want[k])})
	}
	out, err := proto.Marshal(&m)
	if err != nil {
		return nil, fmt.Errorf("calibrate: %s: %v", name, err)
	}
	if _, err := spec.ValidateONNX(name, out); err != nil {
		return nil, fmt.Errorf("calibrate: %s after calibration: %v", name, err)
	}
	return out, nil
}

func initializer(g *onnxpb.GraphProto, name string) *onnxpb.TensorProto {
	for _, t := range g.Initializer {
		if t.GetName() == name {
			return t
		}
	}
	return nil
}
