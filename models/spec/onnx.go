package spec

// The ONNX contract of an artnet model, in one place: the input and output names and their
// order, and the check that a file (its metadata_props, written by Config.Metadata, and its
// graph interface) is an artnet model. The exporter checks its own file with ValidateONNX before
// installing it; the runtime checks every file with it before loading it into ONNX Runtime;
// neither needs ONNX Runtime for it.

import (
	"errors"
	"fmt"
	"strings"

	"google.golang.org/protobuf/encoding/protowire"

	"github.com/artnet/artnet/internal/errtext"
)

// Names of an artnet model's ONNX input and outputs.
const (
	InputName       = "image"     // float32 [batch,3,H,W], normalized
	OutputAttention = "attention" // float32 [batch,tokens], the attention weights
)

// OutputNames are the ONNX outputs of an artnet model in order: one softmax per task (Tasks:
// style, genre, artist), then OutputAttention. The slice is new on every call.
func OutputNames() []string {
	return append(append(make([]string, 0, len(Tasks)+1), Tasks...), OutputAttention)
}

// ONNX tensor element types (TensorProto.DataType) that the interface check names.
const (
	elemFloat = 1
)

var elemNames = map[int64]string{
	0: "undefined", 1: "float32", 2: "uint8", 3: "int8", 4: "uint16", 5: "int16", 6: "int32",
	7: "int64", 8: "string", 9: "bool", 10: "float16", 11: "float64", 12: "uint32",
	13: "uint64", 14: "complex64", 15: "complex128", 16: "bfloat16",
}

// ElemTypeName returns a readable name of an ONNX tensor element type.
func ElemTypeName(t int64) string {
	if s, ok := elemNames[t]; ok {
		return s
	}
	return fmt.Sprintf("type %d", t)
}

// Dim is one dimension of a declared tensor shape: a fixed Value, or a symbolic Param
// (Value = -1), or unknown (Value = -1, Param = "").
type Dim struct {
	Value int64
	Param string
}

func (d Dim) String() string {
	switch {
	case d.Value >= 0:
		return fmt.Sprint(d.Value)
	case d.Param != "":
		return d.Param
	}
	return "?"
}

// TensorInfo is a graph input or output as declared in the ONNX file.
type TensorInfo struct {
	Name     string
	Tensor   bool  // false for sequences, maps, … (then ElemType and Shape are unset)
	ElemType int64 // ONNX TensorProto.DataType
	HasShape bool
	Shape    []Dim
}

// ShapeString formats the shape as [batch,3,64,64].
func (t TensorInfo) ShapeString() string {
	if !t.HasShape {
		return "[unknown rank]"
	}
	s := make([]string, len(t.Shape))
	for i, d := range t.Shape {
		s[i] = d.String()
	}
	return "[" + strings.Join(s, ",") + "]"
}

// ModelInfo is what Inspect reads from an ONNX file without loading it into ONNX Runtime.
type ModelInfo struct {
	IRVersion int64
	Opsets    map[string]int64 // domain ("" = ai.onnx) → version
	Producer  string
	Metadata  map[string]string
	Inputs    []TensorInfo // graph inputs that are not initializers
	Outputs   []TensorInfo
}

// Inspect reads an ONNX ModelProto's version, opsets, metadata_props and graph interface.
// It decodes the protobuf wire format directly and skips node and weight payloads, so it is
// cheap even for large models. The error says why the bytes are not an ONNX model.
func Inspect(onnx []byte) (*ModelInfo, error) {
	if len(onnx) == 0 {
		return nil, errors.New("not an ONNX model: empty file")
	}
	mi := &ModelInfo{Opsets: map[string]int64{}, Metadata: map[string]string{}}
	var graph []byte
	haveGraph := false
	err := scan(onnx, func(num protowire.Number, typ protowire.Type, v uint64, b []byte) error {
		switch {
		case num == 1 && typ == protowire.VarintType:
			mi.IRVersion = int64(v)
		case num == 2 && typ == protowire.BytesType:
			mi.Producer = string(b)
		case num == 7 && typ == protowire.BytesType:
			graph, haveGraph = b, true
		case num == 8 && typ == protowire.BytesType:
			var dom string
			var ver int64
			if err := scan(b, func(n protowire.Number, t protowire.Type, v uint64, b []byte) error {
				if n == 1 && t == protowire.BytesType {
					dom = string(b)
				} else if n == 2 && t == protowire.VarintType {
					ver = int64(v)
				}
				return nil
			}); err != nil {
				return fmt.Errorf("opset_import: %w", err)
			}
			mi.Opsets[dom] = ver
		case num == 14 && typ == protowire.BytesType:
			var k, val string
			if err := scan(b, func(n protowire.Number, t protowire.Type, v uint64, b []byte) error {
				if n == 1 && t == protowire.BytesType {
					k = string(b)
				} else if n == 2 && t == protowire.BytesType {
					val = string(b)
				}
				return nil
			}); err != nil {
				return fmt.Errorf("metadata_props: %w", err)
			}
			mi.Metadata[k] = val
		}
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("not an ONNX model: %w", err)
	}
	if !haveGraph || mi.IRVersion == 0 {
		return nil, errors.New("not an ONNX model: no graph or ir_version")
	}
	inits := map[string]bool{}
	var ins, outs [][]byte
	err = scan(graph, func(num protowire.Number, typ protowire.Type, v uint64, b []byte) error {
		if typ != protowire.BytesType {
			return nil
		}
		switch num {
		case 5: // initializer: TensorProto, name = 8
			return scan(b, func(n protowire.Number, t protowire.Type, v uint64, b []byte) error {
				if n == 8 && t == protowire.BytesType {
					inits[string(b)] = true
				}
				return nil
			})
		case 11:
			ins = append(ins, b)
		case 12:
			outs = append(outs, b)
		}
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("not an ONNX model: graph: %w", err)
	}
	for _, b := range ins {
		ti, err := valueInfo(b)
		if err != nil {
			return nil, fmt.Errorf("not an ONNX model: graph input: %w", err)
		}
		if !inits[ti.Name] {
			mi.Inputs = append(mi.Inputs, ti)
		}
	}
	for _, b := range outs {
		ti, err := valueInfo(b)
		if err != nil {
			return nil, fmt.Errorf("not an ONNX model: graph output: %w", err)
		}
		mi.Outputs = append(mi.Outputs, ti)
	}
	return mi, nil
}

// valueInfo decodes a ValueInfoProto (name = 1, type = 2 → TypeProto.tensor_type = 1 →
// elem_type = 1, shape = 2 → dim = 1 → dim_value = 1 | dim_param = 2).
func valueInfo(b []byte) (TensorInfo, error) {
	var ti TensorInfo
	err := scan(b, func(n protowire.Number, t protowire.Type, v uint64, b []byte) error {
		if t != protowire.BytesType {
			return nil
		}
		switch n {
		case 1:
			ti.Name = string(b)
		case 2:
			return scan(b, func(n protowire.Number, t protowire.Type, v uint64, b []byte) error {
				if n != 1 || t != protowire.BytesType {
					return nil
				}
				ti.Tensor = true
				return scan(b, func(n protowire.Number, t protowire.Type, v uint64, b []byte) error {
					switch {
					case n == 1 && t == protowire.VarintType:
						ti.ElemType = int64(v)
					case n == 2 && t == protowire.BytesType:
						ti.HasShape = true
						return scan(b, func(n protowire.Number, t protowire.Type, v uint64, b []byte) error {
							if n != 1 || t != protowire.BytesType {
								return nil
							}
							d := Dim{Value: -1}
							err := scan(b, func(n protowire.Number, t protowire.Type, v uint64, b []byte) error {
								if n == 1 && t == protowire.VarintType {
									d.Value = int64(v)
								} else if n == 2 && t == protowire.BytesType {
									d.Param = string(b)
								}
								return nil
							})
							ti.Shape = append(ti.Shape, d)
							return err
						})
					}
					return nil
				})
			})
		}
		return nil
	})
	return ti, err
}

// scan calls f for every field of a protobuf message. For varint fields v is the value, for
// length-delimited fields b is the payload; other wire types are skipped.
func scan(msg []byte, f func(num protowire.Number, typ protowire.Type, v uint64, b []byte) error) error {
	for len(msg) > 0 {
		num, typ, n := protowire.ConsumeTag(msg)
		if n < 0 {
			return fmt.Errorf("bad protobuf tag: %w", protowire.ParseError(n))
		}
		msg = msg[n:]
		var v uint64
		var b []byte
		switch typ {
		case protowire.VarintType:
			v, n = protowire.ConsumeVarint(msg)
		case protowire.BytesType:
			b, n = protowire.ConsumeBytes(msg)
		default:
			n = protowire.ConsumeFieldValue(num, typ, msg)
		}
		if n < 0 {
			return fmt.Errorf("bad protobuf field %d: %w", num, protowire.ParseError(n))
		}
		msg = msg[n:]
		if err := f(num, typ, v, b); err != nil {
			return err
		}
	}
	return nil
}

// Interface is the validated ONNX interface of an artnet model.
type Interface struct {
	Config  Config
	Height  int
	Width   int
	Classes map[string]int // task → class count (= output width)
	Tokens  int            // attention length = tokens grid H'×W'
	GridH   int
	GridW   int
}

// Validate checks that an inspected ONNX model is an artnet model: artnet metadata readable
// by FromMetadata, input InputName float32 [batch,3,H,W] with H×W the metadata's input size, and
// float32 outputs OutputNames: the tasks [batch,N] with N the class counts, and attention
// [batch,tokens] with tokens from the metadata's tokens grid. The error is one line naming the
// offending key, input or output.
func (mi *ModelInfo) Validate() (*Interface, error) {
	cfg, err := FromMetadata(mi.Metadata)
	if err != nil {
		return nil, fmt.Errorf("not an artnet model: %s", errtext.OneLine(err))
	}
	// FromMetadata checked the readable keys against the config: sizes come from the config,
	// the one source of truth (Postprocess slices attention rows by cfg.Tokens() too).
	it := &Interface{Config: cfg, Classes: map[string]int{}, Height: cfg.ImageSize, Width: cfg.ImageSize}
	it.GridH, it.GridW = cfg.Grid()
	it.Tokens = cfg.Tokens()

	if len(mi.Inputs) != 1 {
		names := make([]string, len(mi.Inputs))
		for i, in := range mi.Inputs {
			names[i] = in.Name
		}
		return nil, fmt.Errorf("model inputs: want exactly one input %q, got %d %q", InputName, len(mi.Inputs), names)
	}
	in := mi.Inputs[0]
	want := []int64{-1, 3, int64(it.Height), int64(it.Width)}
	if err := checkTensor("input", in, InputName, want); err != nil {
		return nil, err
	}
	if in.HasShape && in.Shape[0].Value >= 0 {
		return nil, fmt.Errorf("input %q: shape %s has a fixed batch dimension, want a symbolic one", InputName, in.ShapeString())
	}
	outs := map[string]TensorInfo{}
	for _, o := range mi.Outputs {
		outs[o.Name] = o
	}
	wantOut := map[string]int{OutputAttention: it.Tokens}
	for _, t := range Tasks {
		it.Classes[t] = cfg.NumClasses(t)
		wantOut[t] = cfg.NumClasses(t)
	}
	for _, name := range OutputNames() {
		o, ok := outs[name]
		if !ok {
			have := make([]string, len(mi.Outputs))
			for i, o := range mi.Outputs {
				have[i] = o.Name
			}
			return nil, fmt.Errorf("output %q missing (model outputs %q)", name, have)
		}
		if err := checkTensor("output", o, name, []int64{-1, int64(wantOut[name])}); err != nil {
			return nil, err
		}
	}
	return it, nil
}

// ValidateONNX is Inspect followed by Validate, without ONNX Runtime; the error is one line
// starting "model <name>:". export.WriteModel checks the file it wrote with it before
// installing it; runtime.Open makes the same two steps before it creates a session.
func ValidateONNX(name string, onnx []byte) (*Interface, error) {
	mi, err := Inspect(onnx)
	if err == nil {
		var it *Interface
		if it, err = mi.Validate(); err == nil {
			return it, nil
		}
	}
	return nil, fmt.Errorf("model %s: %w", name, errtext.Flat(err))
}

// checkTensor compares a declared tensor with the wanted float32 shape; -1 in want accepts any
// dimension (the symbolic batch). Unknown declared dimensions are accepted: ORT checks them at
// run time.
func checkTensor(kind string, t TensorInfo, name string, want []int64) error {
	if t.Name != name {
		return fmt.Errorf("%s %q: want name %q", kind, t.Name, name)
	}
	if !t.Tensor {
		return fmt.Errorf("%s %q: not a tensor", kind, name)
	}
	if t.ElemType != elemFloat {
		return fmt.Errorf("%s %q: element type %s, want float32", kind, name, ElemTypeName(t.ElemType))
	}
	if !t.HasShape {
		return nil
	}
	ws := make([]string, len(want))
	for i, w := range want {
		ws[i] = fmt.Sprint(w)
		if w < 0 {
			ws[i] = "batch"
		}
	}
	wantStr := "[" + strings.Join(ws, ",") + "]"
	if len(t.Shape) != len(want) {
		return fmt.Errorf("%s %q: shape %s has rank %d, want %s", kind, name, t.ShapeString(), len(t.Shape), wantStr)
	}
	for i, w := range want {
		if w >= 0 && t.Shape[i].Value >= 0 && t.Shape[i].Value != w {
			return fmt.Errorf("%s %q: shape %s, want %s", kind, name, t.ShapeString(), wantStr)
		}
	}
	return nil
}
