package export

// Constant folding: evaluating small constant subgraphs and initializer-only arithmetic at
// export time, and the raw_data form of the initializers written.

import (
	"encoding/binary"
	"math"
	"reflect"
	"slices"

	"github.com/gomlx/gomlx/backends"
	"github.com/gomlx/gomlx/pkg/core/dtypes"
	"github.com/gomlx/gomlx/pkg/core/tensors"
)

func tensorFlat(t *tensors.Tensor) (any, error) {
	var out any
	var cerr error
	err := t.ConstFlatData(func(flat any) {
		_, _, out, cerr = copyFlat(flat)
	})
	if err != nil {
		return nil, err
	}
	return out, cerr
}

// constValue evaluates small constant subgraphs whose shape does not depend on the batch size:
// Constant, Iota, and Reshape/Identity/BroadcastInDim of those. It returns false for anything
// else, or for results larger than maxFold elements.
func (e *emitter) constValue(i, depth int) (any, bool) {
	const maxFold = 4096
	a, b := e.a[i], e.b[i]
	if depth > 16 || !slices.Equal(a.shape.Dimensions, b.shape.Dimensions) || a.shape.Size() > maxFold {
		return nil, false
	}
	switch a.op {
	case backends.OpTypeIota:
		return iotaValues(a)
	case backends.OpTypeReshape, backends.OpTypeIdentity:
		if depth == 0 && e.a[a.inputs[0].id].op == backends.OpTypeConstant {
			return nil, false // the constant itself will be emitted; a Reshape is cheaper than a copy
		}
		return e.constValue(a.inputs[0].id, depth+1)
	case backends.OpTypeBroadcastInDim:
		in := a.inputs[0]
		if in.shape.Size() != 1 {
			return nil, false
		}
		v, ok := e.constValue(in.id, depth+1)
		if !ok {
			return nil, false
		}
		rv := reflect.ValueOf(v)
		out := reflect.MakeSlice(rv.Type(), a.shape.Size(), a.shape.Size())
		for k := 0; k < out.Len(); k++ {
			out.Index(k).Set(rv.Index(0))
		}
		return out.Interface(), true
	case backends.OpTypeConstant:
		if depth == 0 {
			return nil, false
		}
		return a.flat, true
	}
	return nil, false
}

func iotaValues(a *rec) (any, bool) {
	dims := a.shape.Dimensions
	n := a.shape.Size()
	inner := 1
	for _, d := range dims[a.axis+1:] {
		inner *= d
	}
	idx := func(k int) int { return (k / inner) % dims[a.axis] }
	switch a.shape.DType {
	case dtypes.Float32:
		return iotaOf[float32](n, idx), true
	case dtypes.Float64:
		return iotaOf[float64](n, idx), true
	case dtypes.Int32:
		return iotaOf[int32](n, idx), true
	case dtypes.Int64:
		return iotaOf[int64](n, idx), true
	}
	return nil, false
}

// iotaOf returns the n values idx(0), …, idx(n-1) as T.
func iotaOf[T float32 | float64 | int32 | int64](n int, idx func(int) int) []T {
	out := make([]T, n)
	for k := range out {
		out[k] = T(idx(k))
	}
	return out
}

// rawFloats moves float32 initializer data into raw_data (little-endian), the form ONNX
// Runtime loads fastest and other exporters write.
func (e *emitter) rawFloats() {
	for _, t := range e.inits {
		if len(t.FloatData) == 0 {
			continue
		}
		raw := make([]byte, 4*len(t.FloatData))
		for i, f := range t.FloatData {
			binary.LittleEndian.PutUint32(raw[4*i:], math.Float32bits(f))
		}
		t.RawData, t.FloatData = raw, nil
	}
}

// foldFloat evaluates a float32 elementwise op (Add, Sub, Mul, Div, Max, Min, Sqrt, Rsqrt, Neg)
// whose inputs are all initializers — e.g. batch-norm scale = weight/√(var+ε) — into a new
// initializer. Operands must have the output's shape or be scalars.
func (e *emitter) foldFloat(a *rec) (string, bool, error) {
	switch a.op {
	case backends.OpTypeAdd, backends.OpTypeSub, backends.OpTypeMul, backends.OpTypeDiv, backends.OpTypeMax,
		backends.OpTypeMin, backends.OpTypeSqrt, backends.OpTypeRsqrt, backends.OpTypeNeg:
	default:
		return "", false, nil
	}
	if a.shape.DType != dtypes.Float32 {
		return "", false, nil
	}
	n := a.shape.Size()
	vals := make([][]float32, len(a.inputs))
	for j, in := range a.inputs {
		if in.shape.Size() != n && in.shape.Size() != 1 {
			return "", false, nil
		}
		name, err := e.value(in.id)
		if err != nil {
			return "", false, err
		}
		t := e.initByName[name]
		if t == nil || len(t.FloatData) == 0 {
			return "", false, nil
		}
		vals[j] = t.FloatData
	}
	at := func(v []float32, i int) float32 {
		if len(v) == 1 {
			return v[0]
		}
		return v[i]
	}
	out := make([]float32, n)
	for i := range out {
		x := at(vals[0], i)
		switch a.op {
		case backends.OpTypeSqrt:
			out[i] = float32(math.Sqrt(float64(x)))
		case backends.OpTypeRsqrt:
			out[i] = 1 / float32(math.Sqrt(float64(x)))
		case backends.OpTypeNeg:
			out[i] = -x
		default:
			y := at(vals[1], i)
			switch a.op {
			case backends.OpTypeAdd:
				out[i] = x + y
			case backends.OpTypeSub:
				out[i] = x - y
			case backends.OpTypeMul:
				out[i] = x * y
			case backends.OpTypeDiv:
				out[i] = x / y
			case backends.OpTypeMax:
				out[i] = max(x, y)
			case backends.OpTypeMin:
				out[i] = min(x, y)
			}
		}
	}
	name, err := e.init(a.scope[min(1, len(a.scope)):]+"/folded", a.shape.Dimensions, out)
	return name, err == nil, err
}
