package export

import (
	"encoding/binary"
	"fmt"
	"math"
	"reflect"
	"slices"
	"sort"
	"strings"

	"github.com/gomlx/gomlx/backends"
	"github.com/gomlx/gomlx/pkg/core/dtypes"
	"github.com/gomlx/gomlx/pkg/core/tensors"
	"github.com/gomlx/gomlx/pkg/ml/context"

	"google.golang.org/protobuf/proto"

	"github.com/artnet/artnet/onnxpb"
)

// emitter translates two recordings of the same graph, made at batch sizes batchA and batchB,
// into one ONNX graph whose batch dimension is symbolic.
type emitter struct {
	ctx            *context.Context
	a, b           []*rec
	batchA, batchB int
	inputName      string

	nodes      []*onnxpb.NodeProto
	inits      []*onnxpb.TensorProto
	vals       map[int]string
	names      map[string]bool // every value name in use
	counter    int
	batchVec   string
	constInts  map[string]string
	initByName map[string]*onnxpb.TensorProto
	folded     map[string]string // (initializer, transform) → folded initializer, so each is made once
	fusions    []*lstmFusion     // planned subgraph replacements
	renamed    map[string]string // values renamed to graph output names
}

func newEmitter(ctx *context.Context, a, b *recorder, batchA, batchB int, inputName string) (*emitter, error) {
	e := &emitter{ctx: ctx, a: a.recs, b: b.recs, batchA: batchA, batchB: batchB, inputName: inputName,
		vals: map[int]string{}, names: map[string]bool{inputName: true}, constInts: map[string]string{},
		initByName: map[string]*onnxpb.TensorProto{}, folded: map[string]string{}}
	if len(a.recs) != len(b.recs) || len(a.outputs) != len(b.outputs) {
		return nil, fmt.Errorf("export: the graph's structure depends on the batch size (%d ops at batch %d, %d at batch %d)",
			len(a.recs), batchA, len(b.recs), batchB)
	}
	for i, x := range a.recs {
		y := b.recs[i]
		same := x.op == y.op && len(x.inputs) == len(y.inputs) && x.name == y.name
		for j := 0; same && j < len(x.inputs); j++ {
			same = x.inputs[j].id == y.inputs[j].id
		}
		if same {
			switch x.op {
			case backends.OpTypeReshape, backends.OpTypeSlice, backends.OpTypeBroadcastInDim, backends.OpTypeIota:
				// Shape-carrying ops: differences handled when emitting.
			case backends.OpTypeConstant:
				same = reflect.DeepEqual(x.flat, y.flat) && slices.Equal(x.shape.Dimensions, y.shape.Dimensions)
			default:
				same = reflect.DeepEqual(x.ints, y.ints) && reflect.DeepEqual(x.pairs, y.pairs) &&
					x.axis == y.axis && x.groups == y.groups && reflect.DeepEqual(x.conv, y.conv) &&
					reflect.DeepEqual(x.padAxes, y.padAxes)
			}
		}
		if !same {
			return nil, fmt.Errorf("export: op %s (#%d, scope %q) depends on the batch size in a way the exporter cannot express", x.op, i, x.scope)
		}
	}
	for i, o := range a.outputs {
		if o.id != b.outputs[i].id {
			return nil, fmt.Errorf("export: output #%d depends on the batch size", i)
		}
	}
	return e, nil
}

func (e *emitter) errf(x *rec, format string, args ...any) error {
	return fmt.Errorf("export: op %s (#%d, scope %q): %s", x.op, x.id, x.scope, fmt.Sprintf(format, args...))
}

// uniq returns a value/node name not used yet.
func (e *emitter) uniq(base string) string {
	name := base
	for e.names[name] {
		e.counter++
		name = fmt.Sprintf("%s_%d", base, e.counter)
	}
	e.names[name] = true
	return name
}

// node appends an ONNX node and returns the name of its (single) output.
func (e *emitter) node(scope, opType string, inputs []string, attrs ...*onnxpb.AttributeProto) string {
	e.counter++
	name := e.uniq(fmt.Sprintf("%s/%s_%d", scope, opType, e.counter))
	e.nodes = append(e.nodes, &onnxpb.NodeProto{
		Name: ptr(name), OpType: ptr(opType), Input: inputs, Output: []string{name}, Attribute: attrs,
	})
	return name
}

func (e *emitter) init(base string, dims []int, flat any) (string, error) {
	name := e.uniq(base)
	t, err := tensorProto(name, dims, flat)
	if err != nil {
		return "", err
	}
	e.inits = append(e.inits, t)
	e.initByName[name] = t
	return name, nil
}

// ints64 returns an int64 initializer (1-D of len(v), or scalar if scalar), shared between users.
func (e *emitter) ints64(v []int64, scalar bool) string {
	key := fmt.Sprint(scalar, v)
	if n, ok := e.constInts[key]; ok {
		return n
	}
	dims := []int{len(v)}
	if scalar {
		dims = nil
	}
	n, _ := e.init("const_i64", dims, slices.Clone(v))
	e.constInts[key] = n
	return n
}

// scalarLike returns a scalar initializer of dtype dt with value v.
func (e *emitter) scalarLike(dt dtypes.DType, v float64) (string, error) {
	var flat any
	switch dt {
	case dtypes.Float32:
		flat = []float32{float32(v)}
	case dtypes.Float64:
		flat = []float64{v}
	case dtypes.Int32:
		flat = []int32{int32(v)}
	case dtypes.Int64:
		flat = []int64{int64(v)}
	default:
		return "", fmt.Errorf("scalar of dtype %s not supported", dt)
	}
	return e.init("const", nil, flat)
}

// batchDim returns a 1-D int64 value holding the input's batch size.
func (e *emitter) batchDim() string {
	if e.batchVec == "" {
		e.batchVec = e.node("", "Shape", []string{e.inputName}, attrInt("start", 0), attrInt("end", 1))
	}
	return e.batchVec
}

// shapeTensor returns a 1-D int64 value with the dims recorded as da (at batchA) and db (at
// batchB). Dims that differ must be multiples of the batch size. With allowInfer, a single
// differing dim is written as -1 (for Reshape).
func (e *emitter) shapeTensor(x *rec, da, db []int, allowInfer bool) (string, error) {
	if len(da) != len(db) {
		return "", e.errf(x, "rank depends on the batch size")
	}
	var diff []int
	for i := range da {
		if da[i] != db[i] {
			diff = append(diff, i)
		}
	}
	if len(diff) == 0 {
		return e.ints64(toInt64s(da), false), nil
	}
	if allowInfer && len(diff) == 1 {
		v := toInt64s(da)
		v[diff[0]] = -1
		return e.ints64(v, false), nil
	}
	key := fmt.Sprint("dyn", da, db)
	if n, ok := e.constInts[key]; ok {
		return n, nil
	}
	var parts []string
	var run []int64
	flush := func() {
		if len(run) > 0 {
			parts = append(parts, e.ints64(run, false))
			run = nil
		}
	}
	for i := range da {
		if da[i] == db[i] {
			run = append(run, int64(da[i]))
			continue
		}
		k := da[i] / e.batchA
		if da[i]%e.batchA != 0 || db[i] != k*e.batchB || k == 0 {
			return "", e.errf(x, "dimension %d (%d at batch %d, %d at batch %d) is not a multiple of the batch size",
				i, da[i], e.batchA, db[i], e.batchB)
		}
		flush()
		if k == 1 {
			parts = append(parts, e.batchDim())
		} else {
			parts = append(parts, e.node(x.scope, "Mul", []string{e.batchDim(), e.ints64([]int64{int64(k)}, false)}))
		}
	}
	flush()
	out := parts[0]
	if len(parts) > 1 {
		out = e.node(x.scope, "Concat", parts, attrInt("axis", 0))
	}
	e.constInts[key] = out
	return out, nil
}

// value returns the ONNX value name of recorded op i, emitting what it needs.
func (e *emitter) value(i int) (string, error) {
	if v, ok := e.vals[i]; ok {
		return v, nil
	}
	v, err := e.emit(e.a[i], e.b[i])
	if err != nil {
		return "", err
	}
	e.vals[i] = v
	return v, nil
}

func (e *emitter) inputs(x *rec) ([]string, error) {
	out := make([]string, len(x.inputs))
	for j, in := range x.inputs {
		v, err := e.value(in.id)
		if err != nil {
			return nil, err
		}
		out[j] = v
	}
	return out, nil
}

var unaryOps = map[backends.OpType]string{
	backends.OpTypeAbs: "Abs", backends.OpTypeNeg: "Neg", backends.OpTypeExp: "Exp", backends.OpTypeLog: "Log",
	backends.OpTypeLogistic: "Sigmoid", backends.OpTypeTanh: "Tanh", backends.OpTypeSqrt: "Sqrt",
	backends.OpTypeErf: "Erf", backends.OpTypeFloor: "Floor", backends.OpTypeCeil: "Ceil",
	backends.OpTypeRound: "Round", backends.OpTypeSign: "Sign", backends.OpTypeSin: "Sin", backends.OpTypeCos: "Cos",
	backends.OpTypeLogicalNot: "Not", backends.OpTypeIsNaN: "IsNaN",
}

var binaryOps = map[backends.OpType]string{
	backends.OpTypeAdd: "Add", backends.OpTypeSub: "Sub", backends.OpTypeMul: "Mul", backends.OpTypeDiv: "Div",
	backends.OpTypeMax: "Max", backends.OpTypeMin: "Min", backends.OpTypePow: "Pow",
	backends.OpTypeLogicalAnd: "And", backends.OpTypeLogicalOr: "Or", backends.OpTypeLogicalXor: "Xor",
	backends.OpTypeEqual: "Equal", backends.OpTypeGreaterThan: "Greater", backends.OpTypeGreaterOrEqual: "GreaterOrEqual",
	backends.OpTypeLessThan: "Less", backends.OpTypeLessOrEqual: "LessOrEqual",
}

func (e *emitter) emit(a, b *rec) (string, error) {
	for _, f := range e.fusions {
		if a.id == f.outID {
			return e.emitLSTM(f)
		}
	}
	// Constant folding of small constant subgraphs.
	if flat, ok := e.constValue(a.id, 0); ok {
		return e.init(a.scope+"/const", a.shape.Dimensions, flat)
	}
	if name, ok, err := e.foldFloat(a); err != nil || ok {
		return name, err
	}
	if name, ok := unaryOps[a.op]; ok {
		in, err := e.inputs(a)
		if err != nil {
			return "", err
		}
		return e.node(a.scope, name, in), nil
	}
	if name, ok := binaryOps[a.op]; ok {
		in, err := e.elementwiseInputs(a)
		if err != nil {
			return "", err
		}
		return e.node(a.scope, name, in), nil
	}
	switch a.op {
	case backends.OpTypeParameter:
		return e.parameter(a)
	case backends.OpTypeConstant:
		return e.init(a.scope+"/const", a.shape.Dimensions, a.flat)
	case backends.OpTypeIdentity:
		return e.value(a.inputs[0].id)
	case backends.OpTypeRsqrt:
		in, err := e.inputs(a)
		if err != nil {
			return "", err
		}
		return e.node(a.scope, "Reciprocal", []string{e.node(a.scope, "Sqrt", in)}), nil
	case backends.OpTypeExpm1, backends.OpTypeLog1p:
		in, err := e.inputs(a)
		if err != nil {
			return "", err
		}
		one, err := e.scalarLike(a.shape.DType, 1)
		if err != nil {
			return "", e.errf(a, "%v", err)
		}
		if a.op == backends.OpTypeExpm1 {
			return e.node(a.scope, "Sub", []string{e.node(a.scope, "Exp", in), one}), nil
		}
		return e.node(a.scope, "Log", []string{e.node(a.scope, "Add", []string{in[0], one})}), nil
	case backends.OpTypeIsFinite:
		in, err := e.inputs(a)
		if err != nil {
			return "", err
		}
		bad := e.node(a.scope, "Or", []string{e.node(a.scope, "IsInf", in), e.node(a.scope, "IsNaN", in)})
		return e.node(a.scope, "Not", []string{bad}), nil
	case backends.OpTypeNotEqual:
		in, err := e.elementwiseInputs(a)
		if err != nil {
			return "", err
		}
		return e.node(a.scope, "Not", []string{e.node(a.scope, "Equal", in)}), nil
	case backends.OpTypeRem:
		in, err := e.elementwiseInputs(a)
		if err != nil {
			return "", err
		}
		return e.node(a.scope, "Mod", in, attrInt("fmod", 1)), nil
	case backends.OpTypeClamp:
		in, err := e.elementwiseInputs(a)
		if err != nil {
			return "", err
		}
		return e.node(a.scope, "Min", []string{e.node(a.scope, "Max", []string{in[1], in[0]}), in[2]}), nil
	case backends.OpTypeWhere:
		in, err := e.elementwiseInputs(a)
		if err != nil {
			return "", err
		}
		return e.node(a.scope, "Where", in), nil
	case backends.OpTypeConvertDType:
		in, err := e.inputs(a)
		if err != nil {
			return "", err
		}
		if a.inputs[0].shape.DType == a.dtype {
			return in[0], nil
		}
		dt, err := onnxDType(a.dtype)
		if err != nil {
			return "", e.errf(a, "%v", err)
		}
		return e.node(a.scope, "Cast", in, attrInt("to", int64(dt))), nil
	case backends.OpTypeReshape:
		in, err := e.inputs(a)
		if err != nil {
			return "", err
		}
		if slices.Equal(a.inputs[0].shape.Dimensions, a.shape.Dimensions) &&
			slices.Equal(b.inputs[0].shape.Dimensions, b.shape.Dimensions) {
			return in[0], nil
		}
		if t := e.initByName[in[0]]; t != nil && slices.Equal(a.shape.Dimensions, b.shape.Dimensions) {
			// Fold: the same data under new dims.
			key := fmt.Sprint(in[0], " R", a.shape.Dimensions)
			if name, ok := e.folded[key]; ok {
				return name, nil
			}
			t2 := proto.Clone(t).(*onnxpb.TensorProto)
			t2.Name, t2.Dims = ptr(e.uniq(in[0]+"_reshaped")), toInt64s(a.shape.Dimensions)
			e.inits = append(e.inits, t2)
			e.initByName[t2.GetName()] = t2
			e.folded[key] = t2.GetName()
			return t2.GetName(), nil
		}
		shape, err := e.shapeTensor(a, a.shape.Dimensions, b.shape.Dimensions, true)
		if err != nil {
			return "", err
		}
		return e.node(a.scope, "Reshape", []string{in[0], shape}), nil
	case backends.OpTypeTranspose:
		in, err := e.inputs(a)
		if err != nil {
			return "", err
		}
		return e.transpose(a.scope, in[0], a.ints[0]), nil
	case backends.OpTypeBroadcastInDim:
		return e.broadcast(a, b, false)
	case backends.OpTypeReduceSum, backends.OpTypeReduceMax, backends.OpTypeReduceMin, backends.OpTypeReduceProduct:
		return e.reduce(a)
	case backends.OpTypeArgMinMax:
		in, err := e.inputs(a)
		if err != nil {
			return "", err
		}
		op := "ArgMax"
		if a.flag {
			op = "ArgMin"
		}
		out := e.node(a.scope, op, in, attrInt("axis", int64(a.axis)), attrInt("keepdims", 0))
		if a.dtype != dtypes.Int64 {
			dt, err := onnxDType(a.dtype)
			if err != nil {
				return "", e.errf(a, "%v", err)
			}
			out = e.node(a.scope, "Cast", []string{out}, attrInt("to", int64(dt)))
		}
		return out, nil
	case backends.OpTypeSlice:
		return e.slice(a, b)
	case backends.OpTypeConcatenate:
		in, err := e.inputs(a)
		if err != nil {
			return "", err
		}
		if len(in) == 1 {
			return in[0], nil
		}
		return e.node(a.scope, "Concat", in, attrInt("axis", int64(a.axis))), nil
	case backends.OpTypeIota:
		if !slices.Equal(a.shape.Dimensions, b.shape.Dimensions) {
			return "", e.errf(a, "shape depends on the batch size")
		}
		flat, ok := iotaValues(a)
		if !ok {
			return "", e.errf(a, "dtype %s not supported", a.shape.DType)
		}
		return e.init(a.scope+"/iota", a.shape.Dimensions, flat)
	case backends.OpTypePad:
		return e.pad(a)
	case backends.OpTypeReverse:
		in, err := e.inputs(a)
		if err != nil {
			return "", err
		}
		axes := a.ints[0]
		if len(axes) == 0 {
			return in[0], nil
		}
		n := len(axes)
		starts, ends, steps := make([]int64, n), make([]int64, n), make([]int64, n)
		for i := range axes {
			starts[i], ends[i], steps[i] = -1, math.MinInt64, -1
		}
		return e.node(a.scope, "Slice", []string{in[0], e.ints64(starts, false), e.ints64(ends, false),
			e.ints64(toInt64s(axes), false), e.ints64(steps, false)}), nil
	case backends.OpTypeDot:
		in, err := e.inputs(a)
		if err != nil {
			return "", err
		}
		return e.node(a.scope, "MatMul", in), nil
	case backends.OpTypeDotGeneral:
		return e.dotGeneral(a)
	case backends.OpTypeConvGeneral:
		return e.conv(a)
	case backends.OpTypeBatchNormForInference:
		return e.batchNorm(a)
	}
	return "", &unsupportedError{op: a.op.String()}
}

func (e *emitter) parameter(a *rec) (string, error) {
	if a.name == e.inputName {
		return e.inputName, nil
	}
	scope, name := context.VariableScopeAndNameFromParameterName(a.name)
	if name == "" {
		return "", e.errf(a, "parameter %q is neither the input nor a variable", a.name)
	}
	v := e.ctx.GetVariableByScopeAndName(scope, name)
	if v == nil {
		return "", e.errf(a, "variable %s not found in the context", a.name)
	}
	t, err := v.Value()
	if err != nil || t == nil {
		return "", e.errf(a, "variable %s has no value (load a checkpoint or initialize the context first)", context.JoinScope(scope, name))
	}
	if !t.Shape().Equal(a.shape) {
		return "", e.errf(a, "variable %s has shape %s, the graph uses %s", context.JoinScope(scope, name), t.Shape(), a.shape)
	}
	flat, err := tensorFlat(t)
	if err != nil {
		return "", e.errf(a, "variable %s: %v", context.JoinScope(scope, name), err)
	}
	return e.init(strings.TrimPrefix(context.JoinScope(scope, name), "/"), a.shape.Dimensions, flat)
}

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
		out := make([]float32, n)
		for k := range out {
			out[k] = float32(idx(k))
		}
		return out, true
	case dtypes.Float64:
		out := make([]float64, n)
		for k := range out {
			out[k] = float64(idx(k))
		}
		return out, true
	case dtypes.Int32:
		out := make([]int32, n)
		for k := range out {
			out[k] = int32(idx(k))
		}
		return out, true
	case dtypes.Int64:
		out := make([]int64, n)
		for k := range out {
			out[k] = int64(idx(k))
		}
		return out, true
	}
	return nil, false
}

// elementwiseInputs returns the inputs of an elementwise op. An input that is a
// BroadcastInDim is passed without its Expand (ONNX broadcasts) when another, non-broadcast
// input already has the full output shape.
func (e *emitter) elementwiseInputs(a *rec) ([]string, error) {
	b := e.b[a.id]
	full := -1
	for j, in := range a.inputs {
		if in.op != backends.OpTypeBroadcastInDim && slices.Equal(in.shape.Dimensions, a.shape.Dimensions) &&
			slices.Equal(b.inputs[j].shape.Dimensions, b.shape.Dimensions) {
			full = j
			break
		}
	}
	out := make([]string, len(a.inputs))
	for j, in := range a.inputs {
		var err error
		if full >= 0 && j != full && in.op == backends.OpTypeBroadcastInDim {
			out[j], err = e.broadcast(in, e.b[in.id], true)
			if err != nil {
				return nil, err
			}
			continue
		}
		out[j], err = e.value(in.id)
		if err != nil {
			return nil, err
		}
	}
	return out, nil
}

func isIdentityPerm(p []int) bool {
	for i, v := range p {
		if i != v {
			return false
		}
	}
	return true
}

func (e *emitter) transpose(scope, in string, perm []int) string {
	if isIdentityPerm(perm) {
		return in
	}
	key := fmt.Sprint(in, " T", perm)
	if name, ok := e.folded[key]; ok {
		return name
	}
	if t := e.initByName[in]; t != nil && len(t.FloatData) > 0 {
		// Fold: transpose the float32 initializer's data now.
		dims := make([]int, len(t.Dims))
		for i, d := range t.Dims {
			dims[i] = int(d)
		}
		data, outDims := transposeFloats(t.FloatData, dims, perm)
		if name, err := e.init(in+"_T", outDims, data); err == nil {
			e.folded[key] = name
			return name
		}
	}
	return e.node(scope, "Transpose", []string{in}, attrInts("perm", perm))
}

// broadcast emits BroadcastInDim: (Transpose), Reshape to the output rank with 1s on the new
// axes, and (unless aligned) Expand to the output shape.
func (e *emitter) broadcast(a, b *rec, aligned bool) (string, error) {
	src, srcB := a.inputs[0], b.inputs[0]
	in, err := e.value(src.id)
	if err != nil {
		return "", err
	}
	axes := a.ints[0]
	rank := a.shape.Rank()
	// Operand axes sorted by their output axis.
	order := make([]int, len(axes))
	for i := range order {
		order[i] = i
	}
	sort.SliceStable(order, func(i, j int) bool { return axes[order[i]] < axes[order[j]] })
	in = e.transpose(a.scope, in, order)
	alA, alB := make([]int, rank), make([]int, rank)
	for j := range alA {
		alA[j], alB[j] = 1, 1
	}
	for p, j := range axes {
		alA[j], alB[j] = src.shape.Dimensions[p], srcB.shape.Dimensions[p]
	}
	if src.shape.Rank() != 0 && src.shape.Rank() != rank {
		shape, err := e.shapeTensor(a, alA, alB, true)
		if err != nil {
			return "", err
		}
		in = e.node(a.scope, "Reshape", []string{in, shape})
	}
	if aligned {
		return in, nil
	}
	tA, tB := slices.Clone(a.shape.Dimensions), slices.Clone(b.shape.Dimensions)
	same := true
	for j := range tA {
		if alA[j] == tA[j] && alB[j] == tB[j] && src.shape.Rank() != 0 {
			tA[j], tB[j] = 1, 1
		} else {
			same = false
		}
	}
	if same {
		return in, nil
	}
	shape, err := e.shapeTensor(a, tA, tB, false)
	if err != nil {
		return "", err
	}
	return e.node(a.scope, "Expand", []string{in, shape}), nil
}

func (e *emitter) reduce(a *rec) (string, error) {
	in, err := e.inputs(a)
	if err != nil {
		return "", err
	}
	axes := a.ints[0]
	if len(axes) == 0 {
		return in[0], nil
	}
	switch a.op {
	case backends.OpTypeReduceSum:
		return e.node(a.scope, "ReduceSum", []string{in[0], e.ints64(toInt64s(axes), false)}, attrInt("keepdims", 0)), nil
	case backends.OpTypeReduceMax:
		return e.node(a.scope, "ReduceMax", in, attrInts("axes", axes), attrInt("keepdims", 0)), nil
	case backends.OpTypeReduceMin:
		return e.node(a.scope, "ReduceMin", in, attrInts("axes", axes), attrInt("keepdims", 0)), nil
	default:
		return e.node(a.scope, "ReduceProd", in, attrInts("axes", axes), attrInt("keepdims", 0)), nil
	}
}

func (e *emitter) slice(a, b *rec) (string, error) {
	in, err := e.inputs(a)
	if err != nil {
		return "", err
	}
	dA, dB := a.inputs[0].shape.Dimensions, b.inputs[0].shape.Dimensions
	var starts, ends, axes, steps []int64
	for ax := range dA {
		sA, lA, stA := a.ints[0][ax], a.ints[1][ax], a.ints[2][ax]
		sB, lB, stB := b.ints[0][ax], b.ints[1][ax], b.ints[2][ax]
		fullA := sA == 0 && lA == dA[ax] && stA == 1
		fullB := sB == 0 && lB == dB[ax] && stB == 1
		switch {
		case fullA && fullB:
			continue
		case sA == sB && lA == lB && stA == stB:
			starts, ends = append(starts, int64(sA)), append(ends, int64(lA))
		case sA == sB && stA == stB && lA == dA[ax] && lB == dB[ax]:
			starts, ends = append(starts, int64(sA)), append(ends, math.MaxInt64)
		default:
			return "", e.errf(a, "slice of axis %d depends on the batch size", ax)
		}
		axes, steps = append(axes, int64(ax)), append(steps, int64(stA))
	}
	if len(axes) == 0 {
		return in[0], nil
	}
	return e.node(a.scope, "Slice", []string{in[0], e.ints64(starts, false), e.ints64(ends, false),
		e.ints64(axes, false), e.ints64(steps, false)}), nil
}

func (e *emitter) pad(a *rec) (string, error) {
	in, err := e.inputs(a)
	if err != nil {
		return "", err
	}
	n := len(a.padAxes)
	pads := make([]int64, 2*n)
	for i, p := range a.padAxes {
		if p.Interior != 0 || p.Start < 0 || p.End < 0 {
			return "", e.errf(a, "interior or negative padding not supported")
		}
		pads[i], pads[n+i] = int64(p.Start), int64(p.End)
	}
	return e.node(a.scope, "Pad", []string{in[0], e.ints64(pads, false), in[1]}, attrString("mode", "constant")), nil
}

func (e *emitter) dotGeneral(a *rec) (string, error) {
	in, err := e.inputs(a)
	if err != nil {
		return "", err
	}
	lc, lb, rc, rb := a.ints[0], a.ints[1], a.ints[2], a.ints[3]
	rl, rr := a.inputs[0].shape.Rank(), a.inputs[1].shape.Rank()
	nb := len(lb)
	leading := func(v []int) bool {
		for i, x := range v {
			if x != i {
				return false
			}
		}
		return true
	}
	if len(lc) == 1 && lc[0] == rl-1 && leading(lb) && leading(rb) {
		if nb == 0 && ((rr == 2 && rc[0] == 0) || (rr == 1 && rc[0] == 0)) {
			return e.node(a.scope, "MatMul", in), nil
		}
		if nb == 0 && rr == 2 && rc[0] == 1 {
			// x · Wᵀ (a Linear layer): the transpose of a weight is folded into its initializer.
			return e.node(a.scope, "MatMul", []string{in[0], e.transpose(a.scope, in[1], []int{1, 0})}), nil
		}
		if nb > 0 && rl == nb+2 && rr == nb+2 && rc[0] == nb {
			// Batched matmul: ONNX MatMul broadcasts the batch axes, so an operand that is only
			// broadcast along them (e.g. a weight shared by the batch) needs no Expand.
			for j, other := range []int{1, 0} {
				src, dst := a.inputs[j], a.inputs[other]
				if src.op != backends.OpTypeBroadcastInDim || dst.op == backends.OpTypeBroadcastInDim {
					continue
				}
				if al, ok, err := e.batchOnlyBroadcast(src, nb); err != nil {
					return "", err
				} else if ok {
					in[j] = al
				}
				break
			}
			return e.node(a.scope, "MatMul", in), nil
		}
	}
	if nb == 0 && len(lc) == 1 && rr == 2 {
		// Contracting a middle axis of lhs with a matrix (e.g. a 1×1 projection of [B, C, T]):
		// move it last, then MatMul.
		var perm []int
		for i := 0; i < rl; i++ {
			if i != lc[0] {
				perm = append(perm, i)
			}
		}
		x := e.transpose(a.scope, in[0], append(perm, lc[0]))
		w := in[1]
		if rc[0] == 1 {
			w = e.transpose(a.scope, w, []int{1, 0})
		}
		return e.node(a.scope, "MatMul", []string{x, w}), nil
	}
	if nb > 0 && leading(lb) && leading(rb) && len(lc) == 1 && rl == nb+1 && lc[0] == nb && rr == nb+2 && rc[0] == nb {
		// Batched vector × matrix (e.g. attention pooling [B,T]·[B,T,D]): [b…,1,k]·[b…,k,n].
		ax := e.ints64([]int64{int64(nb)}, false)
		x := e.node(a.scope, "Unsqueeze", []string{in[0], ax})
		y := e.node(a.scope, "MatMul", []string{x, in[1]})
		return e.node(a.scope, "Squeeze", []string{y, ax}), nil
	}
	// General case: Einsum.
	letter := 0
	next := func() byte { l := byte('a' + letter); letter++; return l }
	lhs, rhs := make([]byte, rl), make([]byte, rr)
	var out []byte
	for i := range lb {
		l := next()
		lhs[lb[i]], rhs[rb[i]] = l, l
		out = append(out, l)
	}
	for i := range lc {
		l := next()
		lhs[lc[i]], rhs[rc[i]] = l, l
	}
	for i := range lhs {
		if lhs[i] == 0 {
			lhs[i] = next()
			out = append(out, lhs[i])
		}
	}
	for i := range rhs {
		if rhs[i] == 0 {
			rhs[i] = next()
			out = append(out, rhs[i])
		}
	}
	if letter > 26 {
		return "", e.errf(a, "too many axes for Einsum")
	}
	eq := string(lhs) + "," + string(rhs) + "->" + string(out)
	return e.node(a.scope, "Einsum", in, attrString("equation", eq)), nil
}

// batchOnlyBroadcast returns the BroadcastInDim src without its Expand when the broadcast
// leaves the last rank-nb axes unchanged (so MatMul's own broadcasting does the rest).
func (e *emitter) batchOnlyBroadcast(src *rec, nb int) (string, bool, error) {
	in := src.inputs[0]
	axes := src.ints[0]
	rank := src.shape.Rank()
	if in.shape.Rank() != rank || !isIdentityPerm(axes) {
		return "", false, nil
	}
	for j := nb; j < rank; j++ {
		if in.shape.Dimensions[j] != src.shape.Dimensions[j] {
			return "", false, nil
		}
	}
	v, err := e.value(in.id)
	return v, err == nil, err
}

func (e *emitter) conv(a *rec) (string, error) {
	in, err := e.inputs(a)
	if err != nil {
		return "", err
	}
	c := a.conv
	strides, inDil, kDil := a.ints[0], a.ints[1], a.ints[2]
	for _, d := range inDil {
		if d != 1 {
			return "", e.errf(a, "input dilations %v not supported", inDil)
		}
	}
	if a.axis > 1 {
		return "", e.errf(a, "batch group count %d not supported", a.axis)
	}
	ns := len(c.InputSpatial)
	inPerm := append([]int{c.InputBatch, c.InputChannels}, c.InputSpatial...)
	kPerm := append([]int{c.KernelOutputChannels, c.KernelInputChannels}, c.KernelSpatial...)
	outPerm := make([]int, ns+2)
	outPerm[c.OutputBatch], outPerm[c.OutputChannels] = 0, 1
	for i, p := range c.OutputSpatial {
		outPerm[p] = 2 + i
	}
	x := e.transpose(a.scope, in[0], inPerm)
	k := in[1]
	if !isIdentityPerm(kPerm) {
		k = e.transpose(a.scope, k, kPerm)
	}
	kshape := make([]int, ns)
	for i, ax := range c.KernelSpatial {
		kshape[i] = a.inputs[1].shape.Dimensions[ax]
	}
	pads := make([]int, 2*ns)
	for i, p := range a.pairs {
		pads[i], pads[ns+i] = p[0], p[1]
	}
	y := e.node(a.scope, "Conv", []string{x, k},
		attrInts("kernel_shape", kshape), attrInts("strides", strides), attrInts("dilations", kDil),
		attrInts("pads", pads), attrInt("group", int64(a.groups)))
	return e.transpose(a.scope, y, outPerm), nil
}

func (e *emitter) batchNorm(a *rec) (string, error) {
	in, err := e.inputs(a)
	if err != nil {
		return "", err
	}
	rank := a.shape.Rank()
	if a.axis == 1 && rank >= 2 {
		return e.node(a.scope, "BatchNormalization", in, attrFloat("epsilon", a.eps), attrInt("training_mode", 0)), nil
	}
	// Composite: (x - mean) * scale / sqrt(var + eps) + offset, parameters reshaped to broadcast.
	shape := make([]int64, rank)
	for i := range shape {
		shape[i] = 1
	}
	shape[a.axis] = -1
	sh := e.ints64(shape, false)
	r := func(v string) string { return e.node(a.scope, "Reshape", []string{v, sh}) }
	eps, err := e.scalarLike(a.shape.DType, float64(a.eps))
	if err != nil {
		return "", e.errf(a, "%v", err)
	}
	inv := e.node(a.scope, "Div", []string{in[1], e.node(a.scope, "Sqrt", []string{e.node(a.scope, "Add", []string{in[4], eps})})})
	y := e.node(a.scope, "Mul", []string{e.node(a.scope, "Sub", []string{in[0], r(in[3])}), r(inv)})
	return e.node(a.scope, "Add", []string{y, r(in[2])}), nil
}

// transposeFloats returns data (row-major with dims) transposed by perm (ONNX semantics:
// output axis i is input axis perm[i]).
func transposeFloats(data []float32, dims, perm []int) ([]float32, []int) {
	rank := len(dims)
	outDims := make([]int, rank)
	for i, p := range perm {
		outDims[i] = dims[p]
	}
	inStrides := make([]int, rank)
	st := 1
	for i := rank - 1; i >= 0; i-- {
		inStrides[i] = st
		st *= dims[i]
	}
	out := make([]float32, len(data))
	idx := make([]int, rank) // index in the output
	for k := range out {
		off := 0
		for i := range idx {
			off += idx[i] * inStrides[perm[i]]
		}
		out[k] = data[off]
		for i := rank - 1; i >= 0; i-- {
			idx[i]++
			if idx[i] < outDims[i] {
				break
			}
			idx[i] = 0
		}
	}
	return out, outDims
}

// prune drops nodes whose outputs nothing uses and initializers no node uses (left behind by
// folding), given the graph's output names. Nodes are in topological order.
func (e *emitter) prune(outputs []string) {
	needed := map[string]bool{}
	for _, o := range outputs {
		needed[o] = true
	}
	var kept []*onnxpb.NodeProto
	for i := len(e.nodes) - 1; i >= 0; i-- {
		n := e.nodes[i]
		if !needed[n.Output[0]] {
			continue
		}
		for _, in := range n.Input {
			needed[in] = true
		}
		kept = append(kept, n)
	}
	slices.Reverse(kept)
	e.nodes = kept
	var inits []*onnxpb.TensorProto
	for _, t := range e.inits {
		if needed[t.GetName()] {
			inits = append(inits, t)
		}
	}
	e.inits = inits
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
