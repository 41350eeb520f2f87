package export

import (
	"fmt"

	"github.com/gomlx/gomlx/pkg/core/dtypes"

	"github.com/artnet/artnet/onnxpb"
)

// ONNX versions written by the exporter.
const (
	OpsetVersion = 17
	IRVersion    = 8
)

func onnxDType(dt dtypes.DType) (onnxpb.TensorProto_DataType, error) {
	switch dt {
	case dtypes.Float32:
		return onnxpb.TensorProto_FLOAT, nil
	case dtypes.Float64:
		return onnxpb.TensorProto_DOUBLE, nil
	case dtypes.Int32:
		return onnxpb.TensorProto_INT32, nil
	case dtypes.Int64:
		return onnxpb.TensorProto_INT64, nil
	case dtypes.Bool:
		return onnxpb.TensorProto_BOOL, nil
	case dtypes.Uint8:
		return onnxpb.TensorProto_UINT8, nil
	case dtypes.Int8:
		return onnxpb.TensorProto_INT8, nil
	}
	return onnxpb.TensorProto_UNDEFINED, fmt.Errorf("dtype %s not supported", dt)
}

func ptr[T any](v T) *T { return &v }

func attrInt(name string, v int64) *onnxpb.AttributeProto {
	return &onnxpb.AttributeProto{Name: ptr(name), Type: ptr(onnxpb.AttributeProto_INT), I: ptr(v)}
}

func attrFloat(name string, v float32) *onnxpb.AttributeProto {
	return &onnxpb.AttributeProto{Name: ptr(name), Type: ptr(onnxpb.AttributeProto_FLOAT), F: ptr(v)}
}

func attrString(name, v string) *onnxpb.AttributeProto {
	return &onnxpb.AttributeProto{Name: ptr(name), Type: ptr(onnxpb.AttributeProto_STRING), S: []byte(v)}
}

func attrInts(name string, v []int) *onnxpb.AttributeProto {
	return &onnxpb.AttributeProto{Name: ptr(name), Type: ptr(onnxpb.AttributeProto_INTS), Ints: toInt64s(v)}
}

func toInt64s(v []int) []int64 {
	out := make([]int64, len(v))
	for i, x := range v {
		out[i] = int64(x)
	}
	return out
}

// tensorProto builds an initializer from flat Go data.
func tensorProto(name string, dims []int, flat any) (*onnxpb.TensorProto, error) {
	t := &onnxpb.TensorProto{Name: ptr(name), Dims: toInt64s(dims)}
	var dt onnxpb.TensorProto_DataType
	switch v := flat.(type) {
	case []float32:
		dt, t.FloatData = onnxpb.TensorProto_FLOAT, v
	case []float64:
		dt, t.DoubleData = onnxpb.TensorProto_DOUBLE, v
	case []int32:
		dt, t.Int32Data = onnxpb.TensorProto_INT32, v
	case []int64:
		dt, t.Int64Data = onnxpb.TensorProto_INT64, v
	case []bool:
		dt = onnxpb.TensorProto_BOOL
		t.Int32Data = make([]int32, len(v))
		for i, b := range v {
			if b {
				t.Int32Data[i] = 1
			}
		}
	case []uint8:
		dt = onnxpb.TensorProto_UINT8
		t.Int32Data = make([]int32, len(v))
		for i, b := range v {
			t.Int32Data[i] = int32(b)
		}
	case []int8:
		dt = onnxpb.TensorProto_INT8
		t.Int32Data = make([]int32, len(v))
		for i, b := range v {
			t.Int32Data[i] = int32(b)
		}
	default:
		return nil, fmt.Errorf("initializer %q: Go type %T not supported", name, flat)
	}
	t.DataType = ptr(int32(dt))
	return t, nil
}

// valueInfo describes a graph input/output; dims < 0 are written as the symbolic dim params[i].
func valueInfo(name string, dt onnxpb.TensorProto_DataType, dims []int, params []string) *onnxpb.ValueInfoProto {
	shape := &onnxpb.TensorShapeProto{}
	for i, d := range dims {
		dim := &onnxpb.TensorShapeProto_Dimension{}
		switch {
		case d >= 0:
			dim.Value = &onnxpb.TensorShapeProto_Dimension_DimValue{DimValue: int64(d)}
		case params != nil && params[i] != "":
			dim.Value = &onnxpb.TensorShapeProto_Dimension_DimParam{DimParam: params[i]}
		}
		shape.Dim = append(shape.Dim, dim)
	}
	return &onnxpb.ValueInfoProto{
		Name: ptr(name),
		Type: &onnxpb.TypeProto{Value: &onnxpb.TypeProto_TensorType{TensorType: &onnxpb.TypeProto_Tensor{
			ElemType: ptr(int32(dt)),
			Shape:    shape,
		}}},
	}
}
