package export

import (
	"fmt"
	"math"
	"reflect"
	"slices"
	"strings"

	"github.com/gomlx/gomlx/backends"
	"github.com/gomlx/gomlx/pkg/core/dtypes"
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
