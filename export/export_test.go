package export_test

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/gomlx/gomlx/backends"
	"github.com/gomlx/gomlx/pkg/core/dtypes"
	. "github.com/gomlx/gomlx/pkg/core/graph"
	"github.com/gomlx/gomlx/pkg/core/shapes"
	"github.com/gomlx/gomlx/pkg/core/tensors/images"
	"github.com/gomlx/gomlx/pkg/ml/context"
	"github.com/gomlx/gomlx/pkg/ml/layers"
	"github.com/gomlx/gomlx/pkg/ml/layers/activations"
	"github.com/gomlx/gomlx/pkg/ml/layers/batchnorm"
	"google.golang.org/protobuf/proto"

	"github.com/artnet/artnet/export"
	"github.com/artnet/artnet/onnxpb"
)

var testBatches = []int{1, 3, 32}

// cnnModel: NCHW convs (stride 1 "same", stride 2 explicit padding, depthwise), bias, batch-norm
// written as elementwise ops with non-trivial running statistics, SiLU, ReLU, global mean pool,
// dense layers, softmax, tanh.
func cnnModel(ctx *context.Context, x *Node) []*Node {
	g := x.Graph()
	k1 := ctx.In("conv1").VariableWithShape("weights", shapes.Make(dtypes.Float32, 8, 3, 3, 3)).ValueGraph(g)
	b1 := ctx.In("conv1").VariableWithShape("bias", shapes.Make(dtypes.Float32, 8)).ValueGraph(g)
	y := Convolve(x, k1).ChannelsAxis(images.ChannelsFirst).PadSame().Done()
	y = Add(y, Reshape(b1, 1, 8, 1, 1))
	// Batch norm, inference mode, as elementwise ops.
	bn := ctx.In("bn1")
	mean := bn.VariableWithValue("mean", []float32{0.1, -0.2, 0.3, 0, 0.5, -0.1, 0.2, 0.05}).ValueGraph(g)
	variance := bn.VariableWithValue("var", []float32{0.5, 1.5, 2, 0.8, 1.1, 0.3, 0.9, 1.7}).ValueGraph(g)
	scale := bn.VariableWithValue("scale", []float32{1.1, 0.9, 1.2, 0.7, 1, 1.3, 0.8, 1.05}).ValueGraph(g)
	offset := bn.VariableWithValue("offset", []float32{0.01, -0.1, 0.2, 0, 0.3, -0.05, 0.1, 0.02}).ValueGraph(g)
	r := func(v *Node) *Node { return Reshape(v, 1, 8, 1, 1) }
	y = Add(Mul(Sub(y, r(mean)), r(Mul(scale, Rsqrt(AddScalar(variance, 1e-5))))), r(offset))
	y = Mul(y, Sigmoid(y)) // SiLU
	// Stride-2 conv with explicit padding.
	k2 := ctx.In("conv2").VariableWithShape("weights", shapes.Make(dtypes.Float32, 8, 8, 3, 3)).ValueGraph(g)
	y = Convolve(y, k2).ChannelsAxis(images.ChannelsFirst).Strides(2).PaddingPerDim([][2]int{{1, 1}, {0, 1}}).Done()
	y = activations.Relu(y)
	// Depthwise 3×3 stride 2 (kernel [out=8, in/groups=1, 3, 3]).
	kd := ctx.In("dw").VariableWithShape("weights", shapes.Make(dtypes.Float32, 8, 1, 3, 3)).ValueGraph(g)
	y = Convolve(y, kd).ChannelsAxis(images.ChannelsFirst).ChannelGroupCount(8).Strides(2).PadSame().Done()
	y = Tanh(y)
	pooled := ReduceMean(y, 2, 3) // [B, 8]
	h := activations.Relu(layers.Dense(ctx.In("fc1"), pooled, true, 6))
	logits := layers.Dense(ctx.In("fc2"), h, true, 5)
	return []*Node{Softmax(logits, -1), Sqrt(Add(Exp(pooled), ReduceMax(y, 2, 3)))}
}

func TestCNNParity(t *testing.T) {
	ctx := newContext()
	m := checkParity(t, ctx, cnnModel, []int{3, 16, 16}, []string{"probs", "feat"}, testBatches, 1e-5)
	t.Logf("nodes %d: %s", len(m.GetGraph().GetNode()), opCounts(m))
	onnxCheck(t, m)
}

// seqModel: a hand-written LSTM cell unrolled over T tokens (Slice, Reshape, Dot,
// Concatenate, zeros broadcast to the batch), a transposed copy read time-major, additive
// attention with Einsum/DotGeneral, softmax over tokens and Where.
func seqModel(ctx *context.Context, x *Node) []*Node {
	g := x.Graph()
	const T, F, H = 4, 6, 5
	B := x.Shape().Dimensions[0]
	wx := ctx.In("lstm").VariableWithShape("wx", shapes.Make(dtypes.Float32, F, 4*H)).ValueGraph(g)
	wh := ctx.In("lstm").VariableWithShape("wh", shapes.Make(dtypes.Float32, H, 4*H)).ValueGraph(g)
	bias := ctx.In("lstm").VariableWithValue("b", make([]float32, 4*H)).ValueGraph(g)
	h := Zeros(g, shapes.Make(dtypes.Float32, B, H))
	c := Zeros(g, shapes.Make(dtypes.Float32, B, H))
	xt := TransposeAllDims(x, 1, 0, 2) // [T, B, F]
	var hs []*Node
	for t := 0; t < T; t++ {
		var in *Node
		if t%2 == 0 {
			in = Reshape(Slice(x, AxisRange(), AxisRange(t, t+1)), B, F)
		} else {
			in = Reshape(Slice(xt, AxisRange(t, t+1)), B, F)
		}
		gates := Add(Add(Dot(in, wx), Dot(h, wh)), Reshape(bias, 1, 4*H))
		i := Sigmoid(Slice(gates, AxisRange(), AxisRange(0, H)))
		f := Sigmoid(Slice(gates, AxisRange(), AxisRange(H, 2*H)))
		gg := Tanh(Slice(gates, AxisRange(), AxisRange(2*H, 3*H)))
		o := Sigmoid(Slice(gates, AxisRange(), AxisRange(3*H, 4*H)))
		c = Add(Mul(f, c), Mul(i, gg))
		h = Mul(o, Tanh(c))
		hs = append(hs, Reshape(h, B, 1, H))
	}
	seq := Concatenate(hs, 1) // [B, T, H]
	wa := ctx.In("attn").VariableWithShape("w", shapes.Make(dtypes.Float32, H, 3)).ValueGraph(g)
	va := ctx.In("attn").VariableWithShape("v", shapes.Make(dtypes.Float32, 3)).ValueGraph(g)
	score := Einsum("bta,a->bt", Tanh(Einsum("bth,ha->bta", seq, wa)), va)
	score = Where(GreaterThan(score, ScalarZero(g, dtypes.Float32)), score, MulScalar(score, 0.1))
	alpha := Softmax(score, -1)                 // [B, T]
	context := Einsum("bt,bth->bh", alpha, seq) // [B, H]
	out := Div(context, Reshape(AddScalar(ReduceSum(Abs(context), -1), 1), B, 1))
	return []*Node{alpha, out}
}

func TestSeqParity(t *testing.T) {
	ctx := newContext()
	m := checkParity(t, ctx, seqModel, []int{4, 6}, []string{"alpha", "out"}, testBatches, 1e-5)
	t.Logf("nodes %d: %s", len(m.GetGraph().GetNode()), opCounts(m))
	onnxCheck(t, m)
	// The batch must be symbolic on input and outputs.
	for _, vi := range append(m.GetGraph().GetInput(), m.GetGraph().GetOutput()...) {
		d := vi.GetType().GetTensorType().GetShape().GetDim()[0]
		if d.GetDimParam() != export.BatchDimName {
			t.Errorf("%s: first dim %v, want dim_param %q", vi.GetName(), d, export.BatchDimName)
		}
	}
}

func TestUnsupportedOpNamed(t *testing.T) {
	ctx := newContext()
	fn := func(ctx *context.Context, x *Node) []*Node {
		return []*Node{MaxPool(x).ChannelsAxis(images.ChannelsFirst).Window(2).Done()}
	}
	_, err := export.Graph(ctx, "x", []int{2, 4, 4}, fn, []string{"y"}, nil)
	if err == nil {
		t.Fatal("export of MaxPool succeeded, want an error naming ReduceWindow")
	}
	want := "export: op ReduceWindow not supported by the ONNX exporter"
	if err.Error() != want {
		t.Errorf("error %q, want %q", err, want)
	}
}

func TestBadArguments(t *testing.T) {
	ctx := newContext()
	id := func(ctx *context.Context, x *Node) []*Node { return []*Node{x} }
	cases := map[string]func() error{
		"empty input name": func() error { _, err := export.Graph(ctx, "", []int{2}, id, []string{"y"}, nil); return err },
		"zero dim":         func() error { _, err := export.Graph(ctx, "x", []int{0}, id, []string{"y"}, nil); return err },
		"no outputs":       func() error { _, err := export.Graph(ctx, "x", []int{2}, id, nil, nil); return err },
		"output count": func() error {
			_, err := export.Graph(ctx, "x", []int{2}, id, []string{"a", "b"}, nil)
			return err
		},
		"missing variable": func() error {
			fn := func(ctx *context.Context, x *Node) []*Node { return []*Node{layers.Dense(ctx, x, true, 2)} }
			_, err := export.Graph(newContext(), "x", []int{2}, fn, []string{"y"}, nil)
			return err
		},
	}
	for name, f := range cases {
		err := f()
		if err == nil {
			t.Errorf("%s: no error", name)
			continue
		}
		if strings.Contains(err.Error(), "\n") || !strings.HasPrefix(err.Error(), "export: ") {
			t.Errorf("%s: error not one line starting with 'export: ': %q", name, err)
		}
		t.Logf("%s: %v", name, err)
	}
}

// TestIdentityOutput: an output that is the input itself, and two outputs of the same value.
func TestIdentityOutput(t *testing.T) {
	ctx := newContext()
	fn := func(ctx *context.Context, x *Node) []*Node { y := Neg(x); return []*Node{x, y, y} }
	m, err := export.Graph(ctx, "x", []int{2}, fn, []string{"a", "b", "c"}, nil)
	if err != nil {
		t.Fatal(err)
	}
	onnxCheck(t, m)
	x := []float32{1, -2, 3, 4}
	got, _ := ortRun(t, m, x, []int{2, 2})
	if maxAbsDiff(got[0], x) != 0 || maxAbsDiff(got[1], []float32{-1, 2, -3, -4}) != 0 || maxAbsDiff(got[2], got[1]) != 0 {
		t.Errorf("outputs %v", got)
	}
}

func TestWriteFileAtomic(t *testing.T) {
	m := &onnxpb.ModelProto{IrVersion: proto.Int64(8), ProducerName: proto.String("artnet")}
	dir := t.TempDir()
	path := filepath.Join(dir, "m.onnx")
	if err := os.WriteFile(path, []byte("old"), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := export.WriteFile(path, m); err != nil {
		t.Fatal(err)
	}
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	var back onnxpb.ModelProto
	if err := proto.Unmarshal(data, &back); err != nil || back.GetProducerName() != "artnet" {
		t.Errorf("read back: %v %v", err, back.GetProducerName())
	}
	entries, _ := os.ReadDir(dir)
	if len(entries) != 1 {
		t.Errorf("temp files left: %v", entries)
	}
	if err := export.WriteFile(filepath.Join(dir, "missing", "m.onnx"), m); err == nil || !strings.Contains(err.Error(), "missing") {
		t.Errorf("write into a missing folder: %v", err)
	}
}

// miscModel covers the remaining translations: BatchNormForInference on the channel axis
// (ONNX BatchNormalization) and on the last axis (composed), a channels-last convolution
// (Transposes around Conv), Reverse, Pad, Iota, ConvertDType, ArgMax, Clamp, Pow, Log1p, Expm1,
// Rem, Min, Neg, Sign, Erf, Floor, Ceil, Round, IsFinite, NotEqual, LogicalAnd, ReduceMin,
// ReduceProduct and an Einsum that needs ONNX Einsum. (Round avoids exact halves: simplego
// rounds them away from zero, GoMLX documents and ONNX does half to even.)
func miscModel(ctx *context.Context, x *Node) []*Node {
	g := x.Graph()
	B := x.Shape().Dimensions[0]
	y := batchnorm.New(ctx.In("bn1"), x, 1).Done() // [B,4,6,6]
	nhwc := TransposeAllDims(y, 0, 2, 3, 1)
	k := ctx.In("conv").VariableWithShape("weights", shapes.Make(dtypes.Float32, 3, 3, 4, 5)).ValueGraph(g)
	y = Convolve(nhwc, k).PadSame().Done()        // [B,6,6,5] channels-last
	y = batchnorm.New(ctx.In("bn2"), y, 3).Done() // feature axis 3
	y = Reverse(y, 1, 2)
	y = Pad(y, ScalarZero(g, dtypes.Float32), backends.PadAxis{}, backends.PadAxis{Start: 1}, backends.PadAxis{End: 2}) // [B,7,8,5]
	pos := ConvertDType(Iota(g, shapes.Make(dtypes.Int32, 1, 1, 1, 5), 3), dtypes.Float32)
	y = Add(y, MulScalar(pos, 0.1))
	am := ConvertDType(ArgMax(y, 3, dtypes.Int32), dtypes.Float32) // [B,7,8]
	a := ClipScalar(y, -0.5, 0.5)
	a = Add(a, PowScalar(AddScalar(Abs(y), 1), 1.5))
	a = Add(a, Log1p(Abs(y)))
	a = Add(a, Expm1(MulScalar(y, 0.1)))
	a = Add(a, Rem(y, Scalar(g, dtypes.Float32, 0.7)))
	a = Add(a, Min(Neg(y), Sign(y)))
	a = Add(a, Erf(y))
	a = Add(a, Add(Floor(MulScalar(y, 3)), Add(Ceil(MulScalar(y, 2)), Round(MulScalar(y, 5.3)))))
	ok := LogicalAnd(IsFinite(y), NotEqual(y, ScalarZero(g, dtypes.Float32)))
	a = Where(ok, a, ZerosLike(a))
	s1 := ReduceMin(a, 1, 2)                                          // [B,5]
	s2 := ReduceMultiply(AddScalar(MulScalar(Tanh(a), 0.1), 1), 1, 3) // [B,8]
	a = MulScalar(a, 0.05)                                            // keeps the Einsum's sums of products O(1)
	e := Einsum("bhc,bwc->bhw", Reshape(a, B, 56, 5), Reshape(Slice(a, AxisRange(), AxisRange(0, 6), AxisRange(0, 6)), B, 36, 5))
	return []*Node{Concatenate([]*Node{s1, s2}, 1), am, e}
}

func TestMiscOpsParity(t *testing.T) {
	ctx := newContext()
	gomlxRun(t, ctx, miscModel, randInput(1, 4*36), []int{1, 4, 6, 6})
	randomizeRank1(t, ctx)
	m := checkParity(t, ctx, miscModel, []int{4, 6, 6}, []string{"s", "argmax", "einsum"}, testBatches, 2e-5)
	t.Logf("nodes %d: %s", len(m.GetGraph().GetNode()), opCounts(m))
	onnxCheck(t, m)
}

// TestBatchMultiples: dims that are multiples of the batch (a Reshape merging batch and
// tokens, a broadcast to [2·batch, 3]) are written batch-agnostic; a constant computed from the
// batch size cannot be, and is reported.
func TestBatchMultiples(t *testing.T) {
	fn := func(ctx *context.Context, x *Node) []*Node {
		g := x.Graph()
		B := x.Shape().Dimensions[0]
		y := Reshape(Tanh(Reshape(x, B*4, 6)), B, 4, 6)
		z := AddScalar(Zeros(g, shapes.Make(dtypes.Float32, 2*B, 3)), 1)
		return []*Node{y, z}
	}
	m, err := export.Graph(newContext(), "x", []int{4, 6}, fn, []string{"y", "z"}, nil)
	if err != nil {
		t.Fatal(err)
	}
	onnxCheck(t, m)
	if c := opCounts(m); !strings.Contains(c, "Expand:1") || !strings.Contains(c, "Shape:1") {
		t.Errorf("ops %s: want the broadcast as Expand to a shape computed from Shape(x)", c)
	}
	for _, b := range []int{1, 7} {
		x := randInput(uint64(b), b*24)
		want := gomlxRun(t, newContext(), fn, x, []int{b, 4, 6})
		got, shp := ortRun(t, m, x, []int{b, 4, 6})
		if shp[1][0] != int64(2*b) || shp[1][1] != 3 {
			t.Errorf("batch %d: z shape %v, want [%d 3]", b, shp[1], 2*b)
		}
		for i := range want {
			if d := maxAbsDiff(want[i], got[i]); !(d <= 1e-6) {
				t.Errorf("batch %d output %d: max abs diff %.3g", b, i, d)
			}
		}
	}

	bad := func(ctx *context.Context, x *Node) []*Node {
		return []*Node{MulScalar(x, float64(x.Shape().Dimensions[0]))}
	}
	_, err = export.Graph(newContext(), "x", []int{2}, bad, []string{"y"}, nil)
	if err == nil || !strings.Contains(err.Error(), "depends on the batch size") {
		t.Errorf("batch-size constant: error %v, want one saying it depends on the batch size", err)
	}
	t.Log(err)
}
