package export

import (
	"encoding/binary"
	"fmt"
	"math"

	"github.com/x448/float16"
	"google.golang.org/protobuf/proto"

	"github.com/artnet/artnet/models/spec"
	"github.com/artnet/artnet/onnxpb"
)

// Float16 returns a copy of the float32 model m that computes in float16 — the file TensorRT and
// ONNX Runtime's CUDA provider want — while its inputs and outputs stay float32, so that clients
// do not change: a Cast to float16 follows each float input and a Cast back to float32 precedes
// each float output. Every float32 initializer, Constant and ConstantOfShape value becomes
// float16 (round to nearest even; magnitudes beyond 65504 are an error naming the tensor), every
// Cast to float32 a Cast to float16, and the metadata gets spec.MetaPrecision = "fp16". The
// CPU provider runs such a file too (ONNX Runtime casts around the ops it has no float16 kernel
// for), which is how the tests compare it with the float32 model.
func Float16(m *onnxpb.ModelProto) (*onnxpb.ModelProto, error) {
	if m.GetGraph() == nil {
		return nil, fmt.Errorf("export: fp16: model without a graph")
	}
	for _, p := range m.GetMetadataProps() {
		if p.GetKey() == spec.MetaPrecision || p.GetKey() == spec.MetaQuantization {
			return nil, fmt.Errorf("export: fp16: the model is already converted (metadata key %q present)", p.GetKey())
		}
	}
	m = proto.Clone(m).(*onnxpb.ModelProto)
	g := m.GetGraph()
	const f32, f16 = int32(onnxpb.TensorProto_FLOAT), int32(onnxpb.TensorProto_FLOAT16)
	for _, t := range g.GetInitializer() {
		if err := tensorToFloat16(t); err != nil {
			return nil, err
		}
	}
	rename := map[string]string{}
	var head, tail []*onnxpb.NodeProto
	for _, in := range g.GetInput() {
		if in.GetType().GetTensorType().GetElemType() == f32 {
			h := in.GetName() + "_fp16"
			rename[in.GetName()] = h
			head = append(head, &onnxpb.NodeProto{OpType: ptr("Cast"), Name: ptr(in.GetName() + "/CastToFloat16"),
				Input: []string{in.GetName()}, Output: []string{h}, Attribute: []*onnxpb.AttributeProto{attrInt("to", int64(f16))}})
		}
	}
	for _, out := range g.GetOutput() {
		if out.GetType().GetTensorType().GetElemType() == f32 {
			h := out.GetName() + "_fp16"
			rename[out.GetName()] = h
			tail = append(tail, &onnxpb.NodeProto{OpType: ptr("Cast"), Name: ptr(out.GetName() + "/CastToFloat32"),
				Input: []string{h}, Output: []string{out.GetName()}, Attribute: []*onnxpb.AttributeProto{attrInt("to", int64(f32))}})
		}
	}
	for _, n := range g.GetNode() {
		if n.GetDomain() != "" || len(n.GetAttribute()) > 0 && hasSubgraph(n) {
			return nil, fmt.Errorf("export: fp16: node %q (%s %s): op not supported", n.GetName(), n.GetDomain(), n.GetOpType())
		}
		for i, s := range n.Input {
			if r, ok := rename[s]; ok {
				n.Input[i] = r
			}
		}
		for i, s := range n.Output {
			if r, ok := rename[s]; ok {
				n.Output[i] = r
			}
		}
		for _, a := range n.GetAttribute() {
			switch {
			case n.GetOpType() == "Cast" && a.GetName() == "to" && int32(a.GetI()) == f32:
				a.I = ptr(int64(f16))
			case (n.GetOpType() == "Constant" || n.GetOpType() == "ConstantOfShape") && a.GetT() != nil:
				if err := tensorToFloat16(a.GetT()); err != nil {
					return nil, fmt.Errorf("export: fp16: node %q: %w", n.GetName(), err)
				}
			}
		}
	}
	g.Node = append(append(head, g.Node...), tail...)
	for _, vi := range g.GetValueInfo() {
		if tt := vi.GetType().GetTensorType(); tt != nil && tt.GetElemType() == f32 {
			tt.ElemType = ptr(f16)
		}
	}
	m.MetadataProps = append(m.MetadataProps, &onnxpb.StringStringEntryProto{Key: ptr(spec.MetaPrecision), Value: ptr("fp16")})
	return m, nil
}

func hasSubgraph(n *onnxpb.NodeProto) bool {
	for _, a := range n.GetAttribute() {
		if a.GetG() != nil || len(a.GetGraphs()) > 0 {
			return true
		}
	}
	return false
}

// tensorToFloat16 converts a float32 tensor (float_data or raw_data) to float16 raw data in
// place; other types are left alone.
func tensorToFloat16(t *onnxpb.TensorProto) error {
	if t.GetDataType() != int32(onnxpb.TensorProto_FLOAT) {
		return nil
	}
	vals, err := onnxpb.Floats(t)
	if err != nil {
		return fmt.Errorf("export: fp16: %w", err)
	}
	out := make([]byte, 2*len(vals))
	for i, v := range vals {
		h := float16.Fromfloat32(v)
		if h.IsInf(0) && !math.IsInf(float64(v), 0) {
			return fmt.Errorf("export: fp16: tensor %q: value %g is beyond float16's range (±65504)", t.GetName(), v)
		}
		binary.LittleEndian.PutUint16(out[2*i:], h.Bits())
	}
	t.FloatData, t.RawData = nil, out
	t.DataType = ptr(int32(onnxpb.TensorProto_FLOAT16))
	return nil
}
