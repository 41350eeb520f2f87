package export

import (
	"fmt"
	"slices"
	"strings"

	"github.com/gomlx/gomlx/backends"
	"github.com/gomlx/gomlx/backends/notimplemented"
	"github.com/gomlx/gomlx/backends/shapeinference"
	"github.com/gomlx/gomlx/pkg/core/dtypes"
	"github.com/gomlx/gomlx/pkg/core/shapes"
	"github.com/gomlx/gomlx/pkg/ml/context"

	"github.com/artnet/artnet/internal/errtext"
)

// rec is one recorded backend op. It is what the recording Builder returns as backends.Op.
type rec struct {
	id     int
	op     backends.OpType
	inputs []*rec
	shape  shapes.Shape
	scope  string // GoMLX variable scope in effect when the op was recorded (heuristic)

	// Attributes; which ones are used depends on op.
	name    string // Parameter name
	ints    [][]int
	pairs   [][2]int
	axis    int
	eps     float32
	dtype   dtypes.DType
	flag    bool
	conv    *backends.ConvolveAxesConfig
	groups  int
	flat    any // Constant data (a copy)
	padAxes []backends.PadAxis
}

// unsupportedError is returned for ops the exporter cannot translate.
type unsupportedError struct{ op string }

func (e *unsupportedError) Error() string {
	return fmt.Sprintf("export: op %s not supported by the ONNX exporter", e.op)
}

// recorder is a backends.Builder that records every op instead of computing anything.
type recorder struct {
	notimplemented.Builder
	name    string
	recs    []*rec
	outputs []*rec
	scope   string
	err     error // first error returned to the graph (GoMLX panics with it, possibly wrapped)
}

// recBackend is the recording backends.Backend: one Builder per graph.
type recBackend struct {
	notimplemented.Backend
	last *recorder
}

func (b *recBackend) Name() string { return "onnx-export" }

func (b *recBackend) Builder(name string) backends.Builder {
	r := &recorder{name: name}
	r.ErrFn = func(op backends.OpType) error { return r.fail(&unsupportedError{op: op.String()}) }
	b.last = r
	return r
}

var (
	_ backends.Builder = (*recorder)(nil)
	_ backends.Backend = (*recBackend)(nil)
)

func (r *recorder) fail(err error) error {
	if r.err == nil {
		r.err = err
	}
	return err
}

func (r *recorder) Name() string { return r.name }

func (r *recorder) Compile(outputs []backends.Op, _ []*backends.ShardingSpec) (backends.Executable, error) {
	for i, o := range outputs {
		x, ok := o.(*rec)
		if !ok {
			return nil, r.fail(fmt.Errorf("export: output #%d is not a recorded op", i))
		}
		r.outputs = append(r.outputs, x)
	}
	return nil, nil
}

func (r *recorder) OpShape(op backends.Op) (shapes.Shape, error) {
	x, ok := op.(*rec)
	if !ok {
		return shapes.Invalid(), r.fail(fmt.Errorf("export: OpShape of a foreign op %T", op))
	}
	return x.shape, nil
}

func (r *recorder) DeviceAssignment(devices ...backends.DeviceNum) error {
	for _, d := range devices {
		if d != 0 {
			return r.fail(fmt.Errorf("export: device %d not supported", d))
		}
	}
	return nil
}

// add appends a new record with the given inputs; it checks that all inputs are recorded ops.
func (r *recorder) add(op backends.OpType, shape shapes.Shape, inputs ...backends.Op) (*rec, error) {
	x := &rec{id: len(r.recs), op: op, shape: shape, scope: r.scope}
	for i, in := range inputs {
		ri, ok := in.(*rec)
		if !ok || ri == nil {
			return nil, r.fail(fmt.Errorf("export: op %s: input #%d is not a recorded op", op, i))
		}
		x.inputs = append(x.inputs, ri)
	}
	r.recs = append(r.recs, x)
	return x, nil
}

func (r *recorder) opErr(op backends.OpType, err error) error {
	return r.fail(fmt.Errorf("export: op %s: %v", op, errtext.OneLine(err)))
}

func shapeOf(op backends.Op) shapes.Shape {
	if x, ok := op.(*rec); ok && x != nil {
		return x.shape
	}
	return shapes.Invalid()
}

// ---- Parameters and constants ----

func (r *recorder) Parameter(name string, shape shapes.Shape, _ *backends.ShardingSpec) (backends.Op, error) {
	if scope, vname := context.VariableScopeAndNameFromParameterName(name); vname != "" {
		r.scope = strings.TrimRight(scope, "/")
	}
	x, err := r.add(backends.OpTypeParameter, shape.Clone())
	if err != nil {
		return nil, err
	}
	x.name = name
	return x, nil
}

func (r *recorder) Constant(flat any, dims ...int) (backends.Op, error) {
	dt, n, cp, err := copyFlat(flat)
	if err != nil {
		return nil, r.opErr(backends.OpTypeConstant, err)
	}
	shape := shapes.Make(dt, dims...)
	if shape.Size() != n {
		return nil, r.opErr(backends.OpTypeConstant, fmt.Errorf("%d values for shape %s", n, shape))
	}
	x, err := r.add(backends.OpTypeConstant, shape)
	if err != nil {
		return nil, err
	}
	x.flat = cp
	return x, nil
}

func copyFlat(flat any) (dtypes.DType, int, any, error) {
	switch v := flat.(type) {
	case []float32:
		return dtypes.Float32, len(v), slices.Clone(v), nil
	case []float64:
		return dtypes.Float64, len(v), slices.Clone(v), nil
	case []int32:
		return dtypes.Int32, len(v), slices.Clone(v), nil
	case []int64:
		return dtypes.Int64, len(v), slices.Clone(v), nil
	case []bool:
		return dtypes.Bool, len(v), slices.Clone(v), nil
	case []uint8:
		return dtypes.Uint8, len(v), slices.Clone(v), nil
	case []int8:
		return dtypes.Int8, len(v), slices.Clone(v), nil
	}
	return dtypes.InvalidDType, 0, nil, fmt.Errorf("constant of Go type %T not supported", flat)
}

// ---- Elementwise ----

func (r *recorder) unary(op backends.OpType, x backends.Op) (backends.Op, error) {
	s, err := shapeinference.UnaryOp(op, shapeOf(x))
	if err != nil {
		return nil, r.opErr(op, err)
	}
	return r.add(op, s, x)
}

func (r *recorder) binary(op backends.OpType, lhs, rhs backends.Op) (backends.Op, error) {
	s, err := shapeinference.BinaryOp(op, shapeOf(lhs), shapeOf(rhs))
	if err != nil {
		return nil, r.opErr(op, err)
	}
	return r.add(op, s, lhs, rhs)
}

func (r *recorder) compare(op backends.OpType, lhs, rhs backends.Op) (backends.Op, error) {
	s, err := shapeinference.ComparisonOp(op, shapeOf(lhs), shapeOf(rhs))
	if err != nil {
		return nil, r.opErr(op, err)
	}
	return r.add(op, s, lhs, rhs)
}

func (r *recorder) Abs(x backends.Op) (backends.Op, error)   { return r.unary(backends.OpTypeAbs, x) }
func (r *recorder) Neg(x backends.Op) (backends.Op, error)   { return r.unary(backends.OpTypeNeg, x) }
func (r *recorder) Exp(x backends.Op) (backends.Op, error)   { return r.unary(backends.OpTypeExp, x) }
func (r *recorder) Expm1(x backends.Op) (backends.Op, error) { return r.unary(backends.OpTypeExpm1, x) }
func (r *recorder) Log(x backends.Op) (backends.Op, error)   { return r.unary(backends.OpTypeLog, x) }
func (r *recorder) Log1p(x backends.Op) (backends.Op, error) { return r.unary(backends.OpTypeLog1p, x) }
func (r *recorder) Logistic(x backends.Op) (backends.Op, error) {
	return r.unary(backends.OpTypeLogistic, x)
}
func (r *recorder) Tanh(x backends.Op) (backends.Op, error)  { return r.unary(backends.OpTypeTanh, x) }
func (r *recorder) Sqrt(x backends.Op) (backends.Op, error)  { return r.unary(backends.OpTypeSqrt, x) }
func (r *recorder) Rsqrt(x backends.Op) (backends.Op, error) { return r.unary(backends.OpTypeRsqrt, x) }
func (r *recorder) Erf(x backends.Op) (backends.Op, error)   { return r.unary(backends.OpTypeErf, x) }
func (r *recorder) Floor(x backends.Op) (backends.Op, error) { return r.unary(backends.OpTypeFloor, x) }
func (r *recorder) Ceil(x backends.Op) (backends.Op, error)  { return r.unary(backends.OpTypeCeil, x) }
func (r *recorder) Round(x backends.Op) (backends.Op, error) { return r.unary(backends.OpTypeRound, x) }
func (r *recorder) Sign(x backends.Op) (backends.Op, error)  { return r.unary(backends.OpTypeSign, x) }
func (r *recorder) Sin(x backends.Op) (backends.Op, error)   { return r.unary(backends.OpTypeSin, x) }
func (r *recorder) Cos(x backends.Op) (backends.Op, error)   { return r.unary(backends.OpTypeCos, x) }
func (r *recorder) IsNaN(x backends.Op) (backends.Op, error) {
	s := shapeOf(x).Clone()
	s.DType = dtypes.Bool
	return r.add(backends.OpTypeIsNaN, s, x)
}
func (r *recorder) IsFinite(x backends.Op) (backends.Op, error) {
	s := shapeOf(x).Clone()
	s.DType = dtypes.Bool
	return r.add(backends.OpTypeIsFinite, s, x)
}
func (r *recorder) LogicalNot(x backends.Op) (backends.Op, error) {
	return r.unary(backends.OpTypeLogicalNot, x)
}
func (r *recorder) Identity(x backends.Op) (backends.Op, error) {
	return r.add(backends.OpTypeIdentity, shapeOf(x).Clone(), x)
}

func (r *recorder) Add(a, b backends.Op) (backends.Op, error) {
	return r.binary(backends.OpTypeAdd, a, b)
}
func (r *recorder) Sub(a, b backends.Op) (backends.Op, error) {
	return r.binary(backends.OpTypeSub, a, b)
}
func (r *recorder) Mul(a, b backends.Op) (backends.Op, error) {
	return r.binary(backends.OpTypeMul, a, b)
}
func (r *recorder) Div(a, b backends.Op) (backends.Op, error) {
	return r.binary(backends.OpTypeDiv, a, b)
}
func (r *recorder) Max(a, b backends.Op) (backends.Op, error) {
	return r.binary(backends.OpTypeMax, a, b)
}
func (r *recorder) Min(a, b backends.Op) (backends.Op, error) {
	return r.binary(backends.OpTypeMin, a, b)
}
func (r *recorder) Pow(a, b backends.Op) (backends.Op, error) {
	return r.binary(backends.OpTypePow, a, b)
}
func (r *recorder) Rem(a, b backends.Op) (backends.Op, error) {
	return r.binary(backends.OpTypeRem, a, b)
}
func (r *recorder) LogicalAnd(a, b backends.Op) (backends.Op, error) {
	return r.binary(backends.OpTypeLogicalAnd, a, b)
}
func (r *recorder) LogicalOr(a, b backends.Op) (backends.Op, error) {
	return r.binary(backends.OpTypeLogicalOr, a, b)
}
func (r *recorder) LogicalXor(a, b backends.Op) (backends.Op, error) {
	return r.binary(backends.OpTypeLogicalXor, a, b)
}
func (r *recorder) Equal(a, b backends.Op) (backends.Op, error) {
	return r.compare(backends.OpTypeEqual, a, b)
}
func (r *recorder) NotEqual(a, b backends.Op) (backends.Op, error) {
	return r.compare(backends.OpTypeNotEqual, a, b)
}
func (r *recorder) GreaterThan(a, b backends.Op) (backends.Op, error) {
	return r.compare(backends.OpTypeGreaterThan, a, b)
}
func (r *recorder) GreaterOrEqual(a, b backends.Op) (backends.Op, error) {
	return r.compare(backends.OpTypeGreaterOrEqual, a, b)
}
func (r *recorder) LessThan(a, b backends.Op) (backends.Op, error) {
	return r.compare(backends.OpTypeLessThan, a, b)
}
func (r *recorder) LessOrEqual(a, b backends.Op) (backends.Op, error) {
	return r.compare(backends.OpTypeLessOrEqual, a, b)
}

func (r *recorder) Clamp(lo, x, hi backends.Op) (backends.Op, error) {
	return r.add(backends.OpTypeClamp, shapeOf(x).Clone(), lo, x, hi)
}

func (r *recorder) Where(cond, onTrue, onFalse backends.Op) (backends.Op, error) {
	s, err := shapeinference.WhereOp(shapeOf(cond), shapeOf(onTrue), shapeOf(onFalse))
	if err != nil {
		return nil, r.opErr(backends.OpTypeWhere, err)
	}
	return r.add(backends.OpTypeWhere, s, cond, onTrue, onFalse)
}

func (r *recorder) ConvertDType(x backends.Op, dtype dtypes.DType) (backends.Op, error) {
	s := shapeOf(x).Clone()
	if _, err := onnxDType(dtype); err != nil {
		return nil, r.opErr(backends.OpTypeConvertDType, err)
	}
	s.DType = dtype
	y, err := r.add(backends.OpTypeConvertDType, s, x)
	if err != nil {
		return nil, err
	}
	y.dtype = dtype
	return y, nil
}

// ---- Shape ops ----

func (r *recorder) Reshape(x backends.Op, dims ...int) (backends.Op, error) {
	s, err := shapeinference.ReshapeOp(shapeOf(x), dims)
	if err != nil {
		return nil, r.opErr(backends.OpTypeReshape, err)
	}
	return r.add(backends.OpTypeReshape, s, x)
}

func (r *recorder) Transpose(x backends.Op, perm ...int) (backends.Op, error) {
	s, err := shapeinference.TransposeOp(shapeOf(x), perm)
	if err != nil {
		return nil, r.opErr(backends.OpTypeTranspose, err)
	}
	y, err := r.add(backends.OpTypeTranspose, s, x)
	if err != nil {
		return nil, err
	}
	y.ints = [][]int{slices.Clone(perm)}
	return y, nil
}

func (r *recorder) BroadcastInDim(x backends.Op, outputShape shapes.Shape, axes []int) (backends.Op, error) {
	if err := shapeinference.BroadcastInDimOp(shapeOf(x), outputShape, axes); err != nil {
		return nil, r.opErr(backends.OpTypeBroadcastInDim, err)
	}
	y, err := r.add(backends.OpTypeBroadcastInDim, outputShape.Clone(), x)
	if err != nil {
		return nil, err
	}
	y.ints = [][]int{slices.Clone(axes)}
	return y, nil
}

func (r *recorder) reduce(op backends.OpType, x backends.Op, axes []int) (backends.Op, error) {
	xs := shapeOf(x)
	if len(axes) == 0 {
		axes = make([]int, xs.Rank())
		for i := range axes {
			axes[i] = i
		}
	}
	s, err := shapeinference.ReduceOp(xs, axes)
	if err != nil {
		return nil, r.opErr(op, err)
	}
	y, err := r.add(op, s, x)
	if err != nil {
		return nil, err
	}
	y.ints = [][]int{slices.Clone(axes)}
	return y, nil
}

func (r *recorder) ReduceSum(x backends.Op, axes ...int) (backends.Op, error) {
	return r.reduce(backends.OpTypeReduceSum, x, axes)
}
func (r *recorder) ReduceMax(x backends.Op, axes ...int) (backends.Op, error) {
	return r.reduce(backends.OpTypeReduceMax, x, axes)
}
func (r *recorder) ReduceMin(x backends.Op, axes ...int) (backends.Op, error) {
	return r.reduce(backends.OpTypeReduceMin, x, axes)
}
func (r *recorder) ReduceProduct(x backends.Op, axes ...int) (backends.Op, error) {
	return r.reduce(backends.OpTypeReduceProduct, x, axes)
}

func (r *recorder) ArgMinMax(x backends.Op, axis int, outputDType dtypes.DType, isMin bool) (backends.Op, error) {
	s, err := shapeinference.ArgMinMaxOp(shapeOf(x), axis, outputDType)
	if err != nil {
		return nil, r.opErr(backends.OpTypeArgMinMax, err)
	}
	y, err := r.add(backends.OpTypeArgMinMax, s, x)
	if err != nil {
		return nil, err
	}
	y.axis, y.dtype, y.flag = axis, outputDType, isMin
	return y, nil
}

func (r *recorder) Slice(x backends.Op, starts, limits, strides []int) (backends.Op, error) {
	xs := shapeOf(x)
	if len(strides) == 0 {
		strides = make([]int, xs.Rank())
		for i := range strides {
			strides[i] = 1
		}
	}
	s, err := shapeinference.SliceOp(xs, starts, limits, strides)
	if err != nil {
		return nil, r.opErr(backends.OpTypeSlice, err)
	}
	y, err := r.add(backends.OpTypeSlice, s, x)
	if err != nil {
		return nil, err
	}
	y.ints = [][]int{slices.Clone(starts), slices.Clone(limits), slices.Clone(strides)}
	return y, nil
}

func (r *recorder) Concatenate(axis int, operands ...backends.Op) (backends.Op, error) {
	ss := make([]shapes.Shape, len(operands))
	for i, o := range operands {
		ss[i] = shapeOf(o)
	}
	s, err := shapeinference.ConcatenateOp(ss, axis)
	if err != nil {
		return nil, r.opErr(backends.OpTypeConcatenate, err)
	}
	y, err := r.add(backends.OpTypeConcatenate, s, operands...)
	if err != nil {
		return nil, err
	}
	y.axis = axis
	return y, nil
}

func (r *recorder) Iota(shape shapes.Shape, axis int) (backends.Op, error) {
	if axis < 0 || axis >= shape.Rank() {
		return nil, r.opErr(backends.OpTypeIota, fmt.Errorf("axis %d out of range for shape %s", axis, shape))
	}
	y, err := r.add(backends.OpTypeIota, shape.Clone())
	if err != nil {
		return nil, err
	}
	y.axis = axis
	return y, nil
}

func (r *recorder) Pad(x, fill backends.Op, axes ...backends.PadAxis) (backends.Op, error) {
	xs := shapeOf(x)
	if len(axes) > xs.Rank() {
		return nil, r.opErr(backends.OpTypePad, fmt.Errorf("%d pad axes for rank %d", len(axes), xs.Rank()))
	}
	s := xs.Clone()
	full := make([]backends.PadAxis, xs.Rank())
	copy(full, axes)
	for i, p := range full {
		d := s.Dimensions[i]
		if d > 0 {
			d += (d - 1) * p.Interior
		}
		s.Dimensions[i] = d + p.Start + p.End
		if s.Dimensions[i] < 0 {
			return nil, r.opErr(backends.OpTypePad, fmt.Errorf("axis %d: negative size", i))
		}
	}
	y, err := r.add(backends.OpTypePad, s, x, fill)
	if err != nil {
		return nil, err
	}
	y.padAxes = full
	return y, nil
}

func (r *recorder) Reverse(x backends.Op, axes ...int) (backends.Op, error) {
	xs := shapeOf(x)
	for _, a := range axes {
		if a < 0 || a >= xs.Rank() {
			return nil, r.opErr(backends.OpTypeReverse, fmt.Errorf("axis %d out of range for %s", a, xs))
		}
	}
	y, err := r.add(backends.OpTypeReverse, xs.Clone(), x)
	if err != nil {
		return nil, err
	}
	y.ints = [][]int{slices.Clone(axes)}
	return y, nil
}

// ---- Linear algebra ----

func (r *recorder) Dot(lhs, rhs backends.Op) (backends.Op, error) {
	ls, rs := shapeOf(lhs), shapeOf(rhs)
	var dims []int
	switch {
	case ls.Rank() == 1 && rs.Rank() == 1 && ls.Dimensions[0] == rs.Dimensions[0]:
	case ls.Rank() == 2 && rs.Rank() == 1 && ls.Dimensions[1] == rs.Dimensions[0]:
		dims = []int{ls.Dimensions[0]}
	case ls.Rank() == 2 && rs.Rank() == 2 && ls.Dimensions[1] == rs.Dimensions[0]:
		dims = []int{ls.Dimensions[0], rs.Dimensions[1]}
	default:
		return nil, r.opErr(backends.OpTypeDot, fmt.Errorf("incompatible shapes %s and %s", ls, rs))
	}
	if ls.DType != rs.DType {
		return nil, r.opErr(backends.OpTypeDot, fmt.Errorf("dtypes differ: %s and %s", ls, rs))
	}
	return r.add(backends.OpTypeDot, shapes.Make(ls.DType, dims...), lhs, rhs)
}

func (r *recorder) DotGeneral(lhs backends.Op, lhsContracting, lhsBatch []int, rhs backends.Op, rhsContracting, rhsBatch []int) (backends.Op, error) {
	op := backends.OpTypeDotGeneral
	ls, rs := shapeOf(lhs), shapeOf(rhs)
	if ls.DType != rs.DType {
		return nil, r.opErr(op, fmt.Errorf("dtypes differ: %s and %s", ls, rs))
	}
	if len(lhsContracting) != len(rhsContracting) || len(lhsBatch) != len(rhsBatch) {
		return nil, r.opErr(op, fmt.Errorf("contracting/batch axes counts differ"))
	}
	used := func(rank int, groups ...[]int) ([]bool, error) {
		u := make([]bool, rank)
		for _, g := range groups {
			for _, a := range g {
				if a < 0 || a >= rank || u[a] {
					return nil, fmt.Errorf("axis %d invalid or repeated (rank %d)", a, rank)
				}
				u[a] = true
			}
		}
		return u, nil
	}
	lu, err := used(ls.Rank(), lhsContracting, lhsBatch)
	if err != nil {
		return nil, r.opErr(op, err)
	}
	ru, err := used(rs.Rank(), rhsContracting, rhsBatch)
	if err != nil {
		return nil, r.opErr(op, err)
	}
	var dims []int
	for i, a := range lhsBatch {
		if ls.Dimensions[a] != rs.Dimensions[rhsBatch[i]] {
			return nil, r.opErr(op, fmt.Errorf("batch axes sizes differ: %s vs %s", ls, rs))
		}
		dims = append(dims, ls.Dimensions[a])
	}
	for i, a := range lhsContracting {
		if ls.Dimensions[a] != rs.Dimensions[rhsContracting[i]] {
			return nil, r.opErr(op, fmt.Errorf("contracting axes sizes differ: %s vs %s", ls, rs))
		}
	}
	for a, u := range lu {
		if !u {
			dims = append(dims, ls.Dimensions[a])
		}
	}
	for a, u := range ru {
		if !u {
			dims = append(dims, rs.Dimensions[a])
		}
	}
	y, err := r.add(op, shapes.Make(ls.DType, dims...), lhs, rhs)
	if err != nil {
		return nil, err
	}
	y.ints = [][]int{slices.Clone(lhsContracting), slices.Clone(lhsBatch), slices.Clone(rhsContracting), slices.Clone(rhsBatch)}
	return y, nil
}

func (r *recorder) ConvGeneral(input, kernel backends.Op, axes backends.ConvolveAxesConfig,
	strides []int, paddings [][2]int, inputDilations, kernelDilations []int,
	channelGroupCount, batchGroupCount int) (backends.Op, error) {
	op := backends.OpTypeConvGeneral
	is := shapeOf(input)
	ns := is.Rank() - 2
	if ns < 1 {
		return nil, r.opErr(op, fmt.Errorf("input %s needs rank >= 3", is))
	}
	ones := func(v []int) []int {
		if len(v) == 0 {
			v = make([]int, ns)
			for i := range v {
				v[i] = 1
			}
		}
		return slices.Clone(v)
	}
	strides, inputDilations, kernelDilations = ones(strides), ones(inputDilations), ones(kernelDilations)
	if len(paddings) == 0 {
		paddings = make([][2]int, ns)
	}
	channelGroupCount, batchGroupCount = max(channelGroupCount, 1), max(batchGroupCount, 1)
	s, err := shapeinference.ConvGeneralOp(is, shapeOf(kernel), axes, strides, paddings, inputDilations, kernelDilations, channelGroupCount, batchGroupCount)
	if err != nil {
		return nil, r.opErr(op, err)
	}
	y, err := r.add(op, s, input, kernel)
	if err != nil {
		return nil, err
	}
	c := axes.Clone()
	y.conv = &c
	y.ints = [][]int{strides, inputDilations, kernelDilations}
	y.pairs = slices.Clone(paddings)
	y.groups = channelGroupCount
	y.axis = batchGroupCount
	return y, nil
}

func (r *recorder) BatchNormForInference(operand, scale, offset, mean, variance backends.Op, epsilon float32, axis int) (backends.Op, error) {
	op := backends.OpTypeBatchNormForInference
	xs := shapeOf(operand)
	if axis < 0 || axis >= xs.Rank() {
		return nil, r.opErr(op, fmt.Errorf("feature axis %d out of range for %s", axis, xs))
	}
	c := xs.Dimensions[axis]
	for i, p := range []backends.Op{scale, offset, mean, variance} {
		ps := shapeOf(p)
		if ps.Rank() != 1 || ps.Dimensions[0] != c || ps.DType != xs.DType {
			return nil, r.opErr(op, fmt.Errorf("parameter #%d has shape %s, want [%d] %s", i+1, ps, c, xs.DType))
		}
	}
	y, err := r.add(op, xs.Clone(), operand, scale, offset, mean, variance)
	if err != nil {
		return nil, err
	}
	y.eps, y.axis = epsilon, axis
	return y, nil
}
